"""Running the service: the cron tick, health, metrics, feature flags and the
smoke test.
"""
