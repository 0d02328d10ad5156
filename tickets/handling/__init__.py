"""Several agencies on one ticket, and delegation down the agency tree (see service.py)."""
