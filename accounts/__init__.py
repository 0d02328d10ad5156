"""Accounts of the people who use the panel: agents, supervisors, admins, agency officers."""
