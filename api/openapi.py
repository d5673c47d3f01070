"""GET /api/openapi: the OpenAPI 3.1 document, generated from the endpoints' models."""

from lib.web.endpoint import Endpoint

app = Endpoint("/api/openapi", tags=["system"])
_document = None


@app.get(public=True)
def read(ctx):
    """The OpenAPI 3.1 document of every endpoint."""
    global _document
    if _document is None:  # built once per warm instance
        from lib.web import openapi

        _document = openapi.document()
    return _document
