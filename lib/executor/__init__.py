"""The step executor: runs a plan's steps in dependency order, pausing at
approvals, resumable across invocations."""
