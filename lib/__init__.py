"""NOFX control plane: the shared package behind every `api/*.py` function.

Pure core (planner, gates) and a thin shell (database, storage, providers,
events). Modules import their heavy dependencies where they need them so a
serverless function only pays for what its request uses.
"""
