"""GET /api/console (served at /): the admin console's page, with a
Content-Security-Policy that names only this origin and the configured
Supabase project."""

from lib.web import console
from lib.web.endpoint import Endpoint, Reply

app = Endpoint("/api/console", tags=["console"])


@app.get(public=True, query=console.PageQuery)
def page(ctx):
    """The console's HTML page."""
    return Reply(200, console.page(), console.page_headers(), content_type="text/html; charset=utf-8")
