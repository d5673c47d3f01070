"""GET /api/people: the people a signed webhook may name (admin).
POST /api/people: register a person by stable id and email (admin).

A webhook approver is named by email and resolved to one person's stable id
(Supabase's auth.users where it exists, else this record of who signed in or
was registered here); a name that resolves to nobody is never a vote.
"""

from lib.web import people
from lib.web.endpoint import Endpoint

app = Endpoint("/api/people", tags=["approvals"])


@app.get(role="admin", response=people.PeopleList)
def read(ctx):
    """Everyone recorded: signed in, or registered by an admin."""
    return people.listing(ctx.conn)


@app.post(role="admin", body=people.NewPerson, response=people.Person, status=201, problems=(422,))
def register(ctx):
    """Register (or update) a person; audited."""
    return people.register(ctx.conn, ctx.body, ctx.principal)
