"""The trail a plan leaves: the hash-chained audit log (audit), how far each
chain is verified (checkpoints), its report (audit_report), the snapshots for
forensic replay (snapshots), the events clients follow (events), and the
notifications people get (notify: the outbox; channels: Slack and Zig Todo;
messages: what they say).
"""
