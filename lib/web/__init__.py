"""The HTTP side: the Endpoint behind every api/ file, the request and reply types,
the Idempotency-Key protocol, signed webhooks in, auth, problem documents, routes,
the OpenAPI document and the local dev server.
"""
