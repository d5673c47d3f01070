"""Act as a Supabase client would: the `authenticated` (or `anon`) role with
JWT claims in request.jwt.claims, inside a transaction that is rolled back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


def claims_for(role: str) -> dict[str, Any] | None:
    if role == "anon":
        return {"role": "anon"}
    if role == "service_role":
        return {"role": "service_role"}
    return {"sub": "9f6a1c2e-0000-4000-8000-000000000001", "role": "authenticated", "app_metadata": {"nofx_role": role}}


def db_role(role: str) -> str:
    return role if role in ("anon", "service_role") else "authenticated"


@contextmanager
def acting_as(url: str, role: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(url) as conn:
        conn.execute(f"SET LOCAL ROLE {db_role(role)}")
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims_for(role)),))
        try:
            yield conn
        finally:
            conn.rollback()


# Refusals: a missing grant or a refusing trigger (insufficient_privilege), or
# a row a policy's WITH CHECK rejects. Anything else is a broken test, raised.
REFUSED = (psycopg.errors.InsufficientPrivilege,)


def attempt(url: str, role: str, sql: str, params: tuple | None = None) -> tuple[bool, int]:
    """(allowed, rows affected or returned): a policy hides rows (0 rows), a
    missing grant, a WITH CHECK or a refusing trigger raises (not allowed)."""
    with acting_as(url, role) as conn:
        try:
            cur = conn.execute(sql, params)
            rows = cur.rowcount if cur.description is None else len(cur.fetchall())
            return True, rows
        except REFUSED:
            return False, 0
