"""The web panel: agents, supervisors, admins and agency officers."""
