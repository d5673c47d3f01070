"""Human approvals, after HumanLayer's `require_approval`.

A sensitive step (its tool has an approval_policy) or a plan whose verdict is
warn waits for people. The request is a row in `approvals`, created once per
thing-to-approve and digest; decisions lock that row (SELECT ... FOR UPDATE)
so concurrent deciders line up and exactly one decision wins; every request,
vote, expiry and cancellation is a row in the append-only `approval_events`.

Where each rule lives:
- policy: the digest of what is approved, who asked (and so may not approve),
  who may decide and with which role
- asking: `require_approval`, the executor's check, making a request
- deciding: one vote under the row lock; 409 decided, 410 expired
- outcomes: what a grant, a refusal or a cancellation does to step and plan
- expiry: overdue requests count as denials
- views: the queue (paged, filtered, in natural order) and one approval as
  the API shows them
- context: what an approver sees beside a request: its past, the overrides,
  what rollback would do, and what a plan approval releases
- store: the tables' columns, reads and the history
"""
