"""The database side: connections and transactions (db), migrations (migrate),
the embedded PostgreSQL (embedded_db), SQL text helpers (sqltext), object
storage for snapshots and artifacts (storage) and the outbox that uploads them
after their transaction commits (uploads).
"""
