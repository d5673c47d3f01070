"""GET, PUT /api/config/flags: read (viewer) and switch (admin) the feature flags."""

from lib.ops import flags
from lib.web.endpoint import Endpoint

app = Endpoint("/api/config/flags", tags=["config"])


@app.get(role="viewer", response=flags.FlagList)
def read(ctx):
    """Every feature flag, with who switched it last and when."""
    return flags.list_flags(ctx.conn)


@app.put(role="admin", body=flags.FlagSwitch, response=flags.FlagList)
def switch(ctx):
    """Switch flags on or off; each change is audited and emitted as flag.changed."""
    return flags.switch(ctx.conn, ctx.body, ctx.principal)
