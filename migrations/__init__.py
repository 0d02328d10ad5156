"""Alembic migrations of the hotline database (SQLite and PostgreSQL)."""
