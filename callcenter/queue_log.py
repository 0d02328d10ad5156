"""Asterisk's queue_log: parsing, and reading what is new since last time.

Lines are ``epoch|callid|queue|agent|EVENT|data1|data2|...``; app_queue writes
them whether or not the application listens, so after an outage they tell
what happened to the calls it did not see.  The reader remembers how far it
got (file identity and offset, in a small JSON file).  When the log has been
rotated it first finishes the old file, found by its identity among the
rotated ones beside it (``queue_log.1``, ``queue_log-20261206``: logrotate
with ``delaycompress``, so the newest one is still plain), then reads the new
one from its start: a rotation loses no entry.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    at: datetime
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def field(self, i: int) -> str:
        return self.data[i] if i < len(self.data) else ""


def parse_line(line: str) -> Entry | None:
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    try:
        at = datetime.fromtimestamp(float(parts[0]), UTC)
    except ValueError:
        return None
    return Entry(at, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


class QueueLogReader:
    """Reads the entries appended to queue_log since the previous read."""

    def __init__(self, path: Path, state_file: Path) -> None:
        self.path = path
        self.state_file = state_file
        self._read_inode: int | None = None

    def _load(self) -> tuple[int, int]:
        try:
            state = json.loads(self.state_file.read_text())
            return int(state["inode"]), int(state["offset"])
        except (OSError, ValueError, KeyError):
            return 0, 0

    def _rotated(self, inode: int) -> Path | None:
        """The rotated file that was the log when we last read it."""
        for candidate in self.path.parent.glob(self.path.name + "?*"):
            try:
                if candidate.stat().st_ino == inode and candidate.is_file():
                    return candidate
            except OSError:
                continue
        return None

    @staticmethod
    def _whole_lines(path: Path, offset: int) -> tuple[list[Entry], int]:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        # only whole lines: a line being written stays for next time
        end = chunk.rfind(b"\n") + 1
        entries = [
            e for e in map(parse_line, chunk[:end].decode("utf-8", "replace").splitlines()) if e
        ]
        return entries, offset + end

    def read_new(self) -> tuple[list[Entry], int]:
        """New entries, and the offset to :meth:`commit` once they are applied."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return [], 0
        inode, offset = self._load()
        before: list[Entry] = []
        if inode and inode != st.st_ino:
            old = self._rotated(inode)
            if old is not None:
                before, _ = self._whole_lines(old, offset)  # the rest of the rotated file
            else:
                log.warning(
                    "queue_log was rotated and the old file (inode %d) is not beside it: "
                    "entries written after offset %d may be missed (rotate with delaycompress)",
                    inode,
                    offset,
                )
            offset = 0
        elif offset > st.st_size:
            offset = 0  # truncated (copytruncate): read it again from the start
        entries, end = self._whole_lines(self.path, offset)
        self._read_inode = st.st_ino
        return before + entries, end

    def commit(self, offset: int) -> None:
        """Remember ``offset`` in the file :meth:`read_new` read last."""
        inode = self._read_inode
        if inode is None:
            try:
                inode = self.path.stat().st_ino
            except FileNotFoundError:
                return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"inode": inode, "offset": offset}))
        os.replace(tmp, self.state_file)
