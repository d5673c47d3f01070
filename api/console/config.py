"""GET /api/console/config (served at /config.json): the Supabase settings the
console may use (URL and anon key, public by design), from this deployment's
environment; the console takes them from here only, never from a link."""

from lib.web import console
from lib.web.endpoint import Endpoint

app = Endpoint("/api/console/config", tags=["console"])


@app.get(public=True, query=console.PageQuery, response=console.ConsoleSettings)
def read(ctx):
    """The console's Supabase settings (null when none are configured)."""
    return console.console_settings()
