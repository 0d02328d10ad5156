"""Log lines as text for a person, or as JSON for a log collector.

``HOTLINE_LOG_FORMAT=json`` (or ``hotline --log-json``) makes every record
one JSON object a line: time (UTC, ISO 8601), level, logger, message, and the
traceback when there is one. Loki, Elasticsearch or journald's JSON export
take it as it is. A dozen lines of our own rather than a dependency: the
standard library's json and logging do all of it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from datetime import UTC, datetime
from pathlib import Path

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


SECURITY_LOGGER = "hotline.security"
SECURITY_FORMAT = "%(asctime)s %(name)s: %(message)s"


def security_file(path: Path) -> logging.Handler:
    """Also write the security log (failed and refused sign-ins, with the
    client address) to ``path``, the file fail2ban's hotline-panel filter
    reads (monitoring/fail2ban)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(SECURITY_FORMAT))
    logger = logging.getLogger(SECURITY_LOGGER)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def setup(*, verbose: bool = False, json_format: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if json_format else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
