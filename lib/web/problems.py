"""RFC 9457 problem documents: the one shape every error takes."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://nofx.dev/problems/"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raised anywhere below an endpoint; the endpoint turns it into a response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = PROBLEM_BASE + type if type and "://" not in type else (type or "about:blank")
        self.title = title or TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            doc["errors"] = self.errors
        doc.update(self.extra)
        return doc


def field_error(status: int, loc: list[str | int], msg: str, *, type: str = "invalid-input") -> Problem:
    """A 4xx that names the offending field, in the `errors` list and the detail."""
    return invalid_input([{"loc": loc, "msg": msg}], status=status, type=type)


# A reply lists this many errors at most, with the total beside them: 100,000
# unknown ids once made a 10 MB reply, over Vercel's 4.5 MB response limit.
MAX_ERRORS = 100


def invalid_input(errors: list[dict[str, Any]], *, status: int = 422, type: str = "invalid-input") -> Problem:
    """A 4xx naming the offending fields in `errors` ({loc, msg} each, the
    first MAX_ERRORS of them, `error_count` saying how many in all); the
    detail spells out the first five."""
    shown = "; ".join(".".join(map(str, e["loc"])) + ": " + str(e["msg"]) for e in errors[:5])
    if len(errors) > 5:
        shown += f" (and {len(errors) - 5} more)"
    extra = {"error_count": len(errors)}
    return Problem(status, shown, type=type, errors=errors[:MAX_ERRORS], extra=extra)


def not_found(what: str, ident: object) -> Problem:
    return Problem(404, f"{what} {ident} does not exist", type="not-found")
