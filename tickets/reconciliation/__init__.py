"""The weekly reconciliation with the agencies: each agency confirms or disputes the
list of tickets forwarded to it that week; supervisors see where each agency stands."""
