"""The step executor: runs a plan's steps in dependency order, pausing at
approvals, resumable across invocations.

- execution: the execute story as the endpoints tell it
- starting: the execute request's checks and first transition
- runner: advance a plan within a time budget (claim, run, record, settle)
- claiming: which steps may run now, and their leases
- running: one tool call, behind require_approval when its tool needs one
- recording: a step's result, its metrics, and the plan's settled status
- rollback: undoing succeeded steps, resumable by the tick
- tools: the tools themselves (builtins and webhooks)
- store: the reads and audit entries the parts above share
"""
