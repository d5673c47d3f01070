"""PostgreSQL array literals, built once in C-speed string joins.

psycopg's array dumper inspects every element in Python; for the 100,000
step ids of a large plan that costs more than the COPY itself. Values here
are quoted the way PostgreSQL's array input expects, so any text is safe.
"""

from __future__ import annotations

from collections.abc import Iterable


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable[object]) -> str:
    """'{"a","b"}' for any iterable of values (None is not allowed)."""
    return "{" + ",".join(_quote(str(v)) for v in values) + "}"


def uuid_array_literal(values: Iterable[str]) -> str:
    """'{u1,u2}' for values already known to be UUID strings (no quoting needed)."""
    return "{" + ",".join(values) + "}"
