"""Model references as a planner writes them: "openai:gpt-4.1-mini"."""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("openai", "anthropic")
MAX_MODEL_CHARS = 100


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model_refs(values: list[str]) -> tuple[list[ModelRef], list[tuple[int, str]]]:
    """The references, and (index, message) for each one that is not usable:
    an unknown provider prefix, no model name, or the same model twice."""
    refs: list[ModelRef] = []
    errors: list[tuple[int, str]] = []
    seen: set[ModelRef] = set()
    for index, value in enumerate(values):
        provider, sep, model = value.partition(":")
        provider, model = provider.strip().lower(), model.strip()
        if not sep:
            errors.append((index, f"{value!r} is not PROVIDER:MODEL (providers: {', '.join(PROVIDERS)})"))
        elif provider not in PROVIDERS:
            errors.append((index, f"unknown provider {provider!r} in {value!r}; known: {', '.join(PROVIDERS)}"))
        elif not model or any(c.isspace() for c in model):
            errors.append((index, f"{value!r} names no model after {provider}:"))
        elif len(model) > MAX_MODEL_CHARS:
            errors.append((index, f"the model name is longer than {MAX_MODEL_CHARS} characters"))
        else:
            ref = ModelRef(provider, model)
            if ref in seen:
                errors.append((index, f"{ref.name} is listed twice"))
            else:
                seen.add(ref)
                refs.append(ref)
    return refs, errors


def require_model_refs(values: list[str]) -> list[ModelRef]:
    """The references, or a 422 naming each bad one as body.options.compare_models.N."""
    refs, errors = parse_model_refs(values)
    if errors:
        from lib.web.problems import invalid_input

        raise invalid_input([{"loc": ["body", "options", "compare_models", i], "msg": msg} for i, msg in errors])
    return refs
