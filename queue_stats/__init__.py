"""Queue statistics.

Every queue event ingested into live state and an append-only table; the
figures, reports and congestion alarms built on them.
"""
