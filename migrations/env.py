"""Alembic environment: the URL comes from the caller, the env or the settings."""

from __future__ import annotations

import logging.config
import os

from alembic import context
from sqlalchemy import create_engine, pool

import accounts.apikeys  # noqa: F401  (registers the tables)
import accounts.models  # noqa: F401
import callcenter.models  # noqa: F401
import inbox.models  # noqa: F401
import notify.models  # noqa: F401
import open311.models  # noqa: F401
import qa.models  # noqa: F401
import queue_stats.congestion  # noqa: F401
import queue_stats.models  # noqa: F401
import recordings.audit  # noqa: F401
import recordings.models  # noqa: F401
import tickets.audit  # noqa: F401
import tickets.models  # noqa: F401
from core.db import Base, install_sqlite_pragmas, sync_url

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("HOTLINE_DATABASE_URL")
    if not url:
        from core.settings import load_settings

        url = load_settings().database
    return sync_url(url)


def run() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    install_sqlite_pragmas(engine)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
