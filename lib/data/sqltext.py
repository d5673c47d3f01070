"""PostgreSQL array literals and COPY text-format values, built in C-speed
string operations.

psycopg's dumpers inspect every value in Python; for the 100,000 steps of a
large plan that costs more than the COPY itself. Values here are quoted the
way PostgreSQL's array input and COPY's text format expect, so any text is safe.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from pydantic_core import to_json


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Iterable[object]) -> str:
    """'{"a","b"}' for any iterable of values (None is not allowed)."""
    return "{" + ",".join(_quote(str(v)) for v in values) + "}"


def uuid_array_literal(values: Iterable[str]) -> str:
    """'{u1,u2}' for values already known to be UUID strings (no quoting needed)."""
    return "{" + ",".join(values) + "}"


NULL = "\\N"  # COPY's text format for NULL
# Rows a write: the server parses one write while the next is built (whole
# megabytes at a time would leave one side idle while the other works).
ROWS_PER_WRITE = 200


def write_lines(copy: Any, lines: Iterable[str]) -> None:
    """COPY text-format lines, each ending in a newline, ~200 to a write."""
    rows = iter(lines)
    while chunk := "".join(itertools.islice(rows, ROWS_PER_WRITE)):
        copy.write(chunk)


def copy_text(value: str) -> str:
    """A value as COPY's text format reads it: backslash, tab, newline and
    carriage return escaped (rarely present: checked before replacing)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def copy_json(value: Any) -> str:
    """JSON for a jsonb column, in COPY's text format. pydantic-core encodes a
    small dict four times faster than json.dumps (and never writes a raw
    control character, so only backslashes need escaping); NaN stays NaN, which
    PostgreSQL refuses, as it did from json.dumps."""
    text = to_json(value, inf_nan_mode="constants").decode()
    return text.replace("\\", "\\\\") if "\\" in text else text
