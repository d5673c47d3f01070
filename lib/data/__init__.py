"""The database side: connections and transactions, migrations, the embedded
PostgreSQL, SQL text helpers, and object storage (snapshots and artifacts).
"""
