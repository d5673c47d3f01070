"""Running the service: the cron tick (cron), health, metrics (metrics and
work_metrics), the Supabase footprint measured on this project (usage),
feature flags (flags) and the smoke test (smoke).
"""
