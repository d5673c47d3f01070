"""What every track shares about a stored plan: its status transitions, the
admins' overrides, and the plan lists.
"""
