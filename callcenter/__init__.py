"""The call centre: hotlines, teams, shifts, agents, calls and their queues."""
