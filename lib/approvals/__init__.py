"""Human approvals, after HumanLayer's `require_approval`: who may decide,
asking, deciding under a row lock, the queue's views and expiry.
"""
