"""The compliance gate: policies as code, in Rego, evaluated in-process (regopy).

Policies live in lib/gates/policies/*.rego; a row in the `policies` table
with the same name replaces a file, a new name adds one, a disabled row drops
one. Two packages, in the style of Conftest (rules iterate over resources):

- `nofx.step`: `deny` and `warn` sets of {step, code, msg, remediation}; the
  rules iterate `some step in input.steps` and name the step's `key`.
- `nofx.plan`: `deny` and `warn` sets of {code, msg, remediation} over
  `input.plan` (a summary), `input.config` and `input.now_ns`.

`deny` blocks, `warn` warns. `input.steps` holds one entry per distinct set of
step facts (a 10,000-step plan has a few dozen kinds of step), and everything
is one query: the interpreter's cost follows the plan's variety, not its size.

A policy that does not compile is a PolicyError naming the policy at load;
the gate turns it into a blocking finding. It is never a silent allow.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lib.gates.models import GateResult, result
from lib.planner.models import Finding, PlanDraft, PlanStep, Tool

POLICY_DIR = Path(__file__).resolve().parent / "policies"
PACKAGES = {"step": "data.nofx.step", "plan": "data.nofx.plan"}
POLICY_FIX = "fix or disable the policy (lib/gates/policies or the policies table), then re-evaluate"


class PolicyError(RuntimeError):
    """A policy that cannot be used: it does not compile, or it answers nonsense."""


@dataclass(frozen=True)
class PolicySet:
    sources: dict[str, str]  # policy name -> Rego source
    version: str

    @staticmethod
    def of(sources: Mapping[str, str]) -> PolicySet:
        digest = hashlib.sha256()
        for name in sorted(sources):
            digest.update(f"{name}\n{sources[name]}\n".encode())
        return PolicySet(dict(sources), "sha256:" + digest.hexdigest()[:16])


@functools.cache
def shipped_policies() -> PolicySet:
    """The files, read and hashed once per process (they change only with a deploy)."""
    return PolicySet.of({path.stem: path.read_text() for path in sorted(POLICY_DIR.glob("*.rego"))})


def load_policy_set(overrides: Iterable[Mapping[str, Any]] = ()) -> PolicySet:
    """Files, then database rows on top: {name, source, enabled}."""
    shipped = shipped_policies()
    rows = list(overrides)
    if not rows:
        return shipped
    sources = dict(shipped.sources)
    for row in rows:
        if row.get("enabled", True):
            sources[row["name"]] = row["source"]
        else:
            sources.pop(row["name"], None)
    return PolicySet.of(sources)


@dataclass
class Engine:
    """A compiled policy set. The interpreter is not thread-safe: one caller at a time."""

    policies: PolicySet
    _interpreter: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        import regopy

        for name, source in self.policies.sources.items():
            _compile_alone(name, source)
        interpreter = regopy.Interpreter()
        for name, source in self.policies.sources.items():
            interpreter.add_module(name, source)
        self._interpreter = interpreter
        self._query(PACKAGES["step"], {"steps": []})  # surface cross-module errors now, not mid-plan

    def _query(self, package: str, document: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            self._interpreter.set_input(document)
            output = self._interpreter.query(f"x := {package}")
        text = str(output)
        if text.startswith("Error") or "rego-errorseq" in text:
            raise PolicyError(f"policies failed to evaluate: {text.strip()[:500]}")
        answer = json.loads(text) if text and text != "undefined" else {}
        value = (answer.get("bindings") or {}).get("x", {}) if isinstance(answer, dict) else {}
        return {"deny": list(value.get("deny", [])), "warn": list(value.get("warn", []))}

    def answer(self, document: Mapping[str, Any]) -> tuple[dict[str, list], dict[str, list]]:
        """(step findings, plan findings) for one input."""
        return self._query(PACKAGES["step"], document), self._query(PACKAGES["plan"], document)


def _compile_alone(name: str, source: str) -> None:
    import regopy

    interpreter = regopy.Interpreter()
    try:
        interpreter.add_module(name, source)
        package = _package_of(source)
        output = str(interpreter.query(f"x := data.{package}" if package else "x := data"))
    except Exception as exc:
        raise PolicyError(f"policy {name!r} does not compile: {exc}") from exc
    if "rego-errorseq" in output or output.startswith("Error"):
        raise PolicyError(f"policy {name!r} does not compile: {output.strip()[:500]}")


def _package_of(source: str) -> str | None:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("package "):
            return stripped.removeprefix("package ").strip()
    return None


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(policies: PolicySet) -> Engine:
    """Compile once per policy version per process."""
    with _engines_lock:
        engine = _engines.get(policies.version)
        if engine is None:
            engine = _engines[policies.version] = Engine(policies)
        return engine


# --------------------------------------------------------------- the gate ----


def step_facts(step: PlanStep, tool: Tool | None) -> dict[str, Any]:
    """What a step policy may see (and what makes two steps alike for it)."""
    return {
        "tool_id": step.tool_id,
        "category": tool.category if tool else "unknown",
        "mutating": bool(tool and tool.mutating),
        "sensitive": bool(tool and tool.sensitive),
        "environment": step.environment,
        "tags": sorted(step.tags),
        "requires_approval": step.requires_approval,
        "has_rollback": bool(step.rollback and step.rollback.get("action") in ("run_tool", "none")),
        "pack_id": step.pack_id,
    }


def plan_summary(draft: PlanDraft, tools: Mapping[str, Tool], options: Any) -> dict[str, Any]:
    # counted per (tool, environment): a plan of 100,000 steps has a few dozen
    kinds = Counter((s.tool_id, s.environment) for s in draft.steps)
    mutating = production = 0
    environments, categories = set(), set()
    for (tool_id, environment), count in kinds.items():
        tool = tools.get(tool_id)
        if tool is not None:
            categories.add(tool.category)
            mutating += count if tool.mutating else 0
        production += count if environment == "production" else 0
        if environment:
            environments.add(environment)
    return {
        "steps": len(draft.steps),
        "mutating_steps": mutating,
        "production_steps": production,
        "environments": sorted(environments),
        "categories": sorted(categories),
        "packs": draft.pack_ids,
        "rollback_on_failure": bool(getattr(options, "rollback_on_failure", False)),
        "budget_usd": getattr(options, "budget_usd", None),
    }


def policy_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    windows = []
    for window in settings.get("gates.compliance.freeze_windows") or []:
        start, end = datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])
        windows.append({**window, "start_ns": int(start.timestamp() * 1e9), "end_ns": int(end.timestamp() * 1e9)})
    return {"freeze_windows": windows}


def _finding(raw: Mapping[str, Any], severity: str, step: PlanStep | None) -> Finding:
    prefix = f"{step.item_key}: " if step is not None else ""
    return Finding(
        code=str(raw.get("code") or "compliance.policy"),
        message=prefix + str(raw.get("msg") or raw.get("message") or "policy violation"),
        remediation=str(raw.get("remediation") or "see the policy that raised this"),
        severity="block" if severity == "deny" else "warn",
        step_id=step.id if step is not None else None,
        item_key=step.item_key if step is not None else None,
    )


def _policy_failed(exc: PolicyError) -> GateResult:
    """A policy that does not compile or evaluate blocks: never a silent allow."""
    return result(
        "compliance",
        [Finding(code="compliance.policy_error", severity="block", message=str(exc), remediation=POLICY_FIX)],
    )


def evaluate(
    draft: PlanDraft,
    tools: Mapping[str, Tool],
    options: Any,
    settings: Mapping[str, Any],
    now: datetime,
    policies: PolicySet,
) -> GateResult:
    try:
        engine = engine_for(policies)
    except PolicyError as exc:
        return _policy_failed(exc)
    summary = plan_summary(draft, tools, options)
    config = policy_config(settings)
    kinds: dict[str, dict[str, Any]] = {}
    steps_of_kind: dict[str, list[PlanStep]] = {}
    kind_of: dict[tuple[Any, ...], str] = {}
    for step in draft.steps:
        # what makes two steps alike for a policy, as a cheap tuple (a plan of
        # 100,000 steps has a few dozen kinds); the facts dict only once per kind
        rollback = step.rollback.get("action") if step.rollback else None
        shape = (
            step.tool_id,
            step.environment,
            tuple(sorted(step.tags)) if step.tags else (),
            step.requires_approval,
            rollback,
            step.pack_id,
        )
        name = kind_of.get(shape)
        if name is None:
            name = kind_of[shape] = str(len(kind_of))
            kinds[name] = {**step_facts(step, tools.get(step.tool_id)), "key": name}
            steps_of_kind[name] = []
        steps_of_kind[name].append(step)
    document = {"steps": list(kinds.values()), "plan": summary, "config": config, "now_ns": int(now.timestamp() * 1e9)}
    try:
        step_answer, plan_answer = engine.answer(document)
    except PolicyError as exc:
        return _policy_failed(exc)
    findings: list[Finding] = []
    for severity in ("deny", "warn"):
        for raw in step_answer[severity]:
            targets = steps_of_kind.get(str(raw.get("step")))
            if targets is None:  # a step rule that did not say which step: it speaks for the plan
                findings.append(_finding(raw, severity, None))
            else:
                findings.extend(_finding(raw, severity, step) for step in targets)
        findings.extend(_finding(raw, severity, None) for raw in plan_answer[severity])
    return result("compliance", findings)
