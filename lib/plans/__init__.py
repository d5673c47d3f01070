"""What every track shares about a stored plan: its status transitions, the
admins' overrides, planners' requests for them, and the plan lists.
"""
