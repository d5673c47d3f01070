"""The people behind the tokens: one stable id each (the JWT `sub`).

A vote, a plan, an execution and a backlog item belong to a person by that id,
never by a display string: an email changes (Supabase lets a user change it),
letter case varies, and a webhook's free text can name anyone. A signed
webhook names its approver by email; `resolve` turns it into the person's id
through Supabase's auth.users where it exists, else through the project's own
record (`public.people`): who has signed in (remembered after any
authenticated request, at most once per SEEN_TTL per instance, after the
answer is sent) and whom an admin registered.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lib.web.problems import Problem, field_error

log = logging.getLogger("nofx.people")

EMAIL = r"^[^@\s]{1,200}@[^@\s]{1,200}$"
# A warm instance writes a person's last sign-in at most this often.
SEEN_TTL = 600.0

_seen_lock = threading.Lock()
# (database, person) -> (the email last recorded, when)
_seen: dict[tuple[str, str], tuple[str | None, float]] = {}


class Person(BaseModel):
    id: str
    email: str | None
    display_name: str | None
    source: str
    registered_by: str | None
    first_seen_at: datetime
    last_seen_at: datetime


class NewPerson(BaseModel):
    """An admin registers a person: their stable id (the Supabase user id, the
    JWT `sub`) and the email a webhook will name them by."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:@-]+$")
    email: str = Field(max_length=320, pattern=EMAIL)
    display_name: str | None = Field(default=None, max_length=200)


class PeopleList(BaseModel):
    people: list[Person]


# An email belongs to the person who now shows it: a stale holder loses it
# first (people_email is unique), then the person is inserted or refreshed.
RELEASE_EMAIL = """
UPDATE public.people SET email = NULL
 WHERE %(email)s::text IS NOT NULL AND lower(email) = lower(%(email)s) AND id <> %(id)s
"""
REMEMBER = """
INSERT INTO public.people AS p (id, email, display_name, source, registered_by)
VALUES (%(id)s, %(email)s, %(display_name)s, %(source)s, %(registered_by)s)
ON CONFLICT (id) DO UPDATE
   SET email = coalesce(EXCLUDED.email, p.email),
       display_name = coalesce(EXCLUDED.display_name, p.display_name),
       source = CASE WHEN EXCLUDED.source = 'registered' THEN 'registered' ELSE p.source END,
       registered_by = coalesce(EXCLUDED.registered_by, p.registered_by),
       last_seen_at = now()
RETURNING id, email, display_name, source, registered_by, first_seen_at, last_seen_at
"""


def is_person(principal: Any) -> bool:
    """A signed-in user (not the service_role key, not a webhook, not the tick)."""
    return principal is not None and principal.source == "api" and principal.subject != "service_role"


def _upsert(conn: Any, params: dict[str, Any]) -> dict[str, Any]:
    conn.execute(RELEASE_EMAIL, params)
    row: dict[str, Any] = conn.execute(REMEMBER, params).fetchone()
    return row


def remember(conn: Any, principal: Any) -> None:
    """Record who signed in (in the caller's transaction)."""
    params = {"id": principal.subject, "email": principal.email, "display_name": None}
    _upsert(conn, {**params, "source": "signed_in", "registered_by": None})


def remember_after_send(principal: Any) -> None:
    """After the answer: remember a signed-in person, at most once per
    SEEN_TTL on this instance; a failure costs nothing but the record."""
    if not is_person(principal):
        return
    from lib.data import db

    key = (db.resolve_url(), principal.subject)
    now = time.monotonic()
    with _seen_lock:
        email, when = _seen.get(key, (None, -SEEN_TTL))
        if email == principal.email and now - when < SEEN_TTL:
            return  # recorded a moment ago, with this email
        _seen[key] = (principal.email, now)
    try:
        with db.transaction() as conn:
            remember(conn, principal)
    except Exception:
        with _seen_lock:
            _seen.pop(key, None)
        log.warning("could not record person %s", principal.subject, exc_info=True)


def register(conn: Any, person: NewPerson, principal: Any) -> Person:
    from lib.trail import audit

    params = {"id": person.id, "email": person.email, "display_name": person.display_name}
    row = _upsert(conn, {**params, "source": "registered", "registered_by": principal.name})
    audit.record(conn, actor=principal, action="person.registered", details={"id": person.id, "email": person.email})
    return Person.model_validate(row)


def listing(conn: Any) -> PeopleList:
    rows = conn.execute(
        "SELECT id, email, display_name, source, registered_by, first_seen_at, last_seen_at FROM public.people "
        "ORDER BY lower(email) NULLS LAST, id"
    ).fetchall()
    return PeopleList(people=[Person.model_validate(r) for r in rows])


def resolve(conn: Any, email: str, loc: list[str | int]) -> str:
    """The stable id of the one person this email names (case-insensitive);
    a 422 naming `loc` when it names nobody, or more than one person."""
    import re

    if not re.match(EMAIL, email):
        raise field_error(422, loc, "name the person by their email address")
    ids = [r["id"] for r in conn.execute("SELECT nofx.people_by_email(%s) AS id", (email,)).fetchall()]
    if not ids:
        raise field_error(422, loc, f"{email} names no known person (people sign in once, or an admin registers them)")
    if len(ids) > 1:
        raise Problem(
            422,
            f"{email} names {len(ids)} people; an admin must tell them apart",
            type="invalid-input",
            errors=[{"loc": loc, "msg": "names more than one person"}],
        )
    return str(ids[0])
