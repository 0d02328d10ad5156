"""Host commands and mounts: the low level under the Asterisk provisioning.

Both the chroot build (:mod:`hotline.chroot`) and the Asterisk instances
(:mod:`hotline.pbx`) run host commands with a clean environment and a timeout
(:func:`run`, :func:`run_logged` for long ones whose output goes to a file)
and read or undo mounts as /proc/mounts lists them.  A failure raises
:class:`PbxError`, naming the command and its exit status and carrying the
tail of its output.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
}


class PbxError(Exception):
    """An Asterisk provisioning or runtime operation failed.

    The message names what failed (command, exit status) and carries the tail
    of the relevant output or log so that the cause is visible in test reports.
    """


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def tail_file(path: Path, lines: int = 25) -> str:
    try:
        return tail(path.read_text(errors="replace"), lines)
    except OSError:
        return ""


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` capturing text output; raise PbxError on failure."""
    try:
        proc = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env if env is not None else CLEAN_ENV,
        )
    except subprocess.TimeoutExpired as exc:
        # TimeoutExpired carries bytes even when text=True was asked for.
        raw = exc.stderr or exc.stdout or b""
        out = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        raise PbxError(
            f"command timed out after {timeout:.0f}s: {' '.join(cmd)}\n{tail(out)}"
        ) from exc
    except OSError as exc:
        raise PbxError(f"cannot run {' '.join(cmd)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise PbxError(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"stderr: {tail(proc.stderr)}\nstdout: {tail(proc.stdout, 10)}"
        )
    return proc


def run_logged(
    cmd: Sequence[str], logfile: Path, *, timeout: float, env: dict[str, str] | None = None
) -> None:
    """Run a long command with output appended to ``logfile`` (not memory)."""
    with logfile.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            rc = subprocess.run(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=env if env is not None else CLEAN_ENV,
            ).returncode
        except subprocess.TimeoutExpired as exc:
            raise PbxError(
                f"command timed out after {timeout:.0f}s: {' '.join(cmd)}\n{tail_file(logfile)}"
            ) from exc
    if rc != 0:
        raise PbxError(f"command failed (exit {rc}): {' '.join(cmd)}\n{tail_file(logfile)}")


def mount_points() -> list[str]:
    """Mount targets from /proc/mounts, with the kernel's octal escapes undone."""
    points = []
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2:
                points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1]))
    return points


def is_mounted(target: Path) -> bool:
    return str(target) in mount_points()


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (the unmount order)."""
    prefix = str(path).rstrip("/") + "/"
    found = [p for p in mount_points() if p == str(path) or p.startswith(prefix)]
    return sorted(set(found), key=len, reverse=True)


def umount(target: str) -> None:
    proc = run(["umount", target], timeout=30, check=False)
    if proc.returncode != 0 and is_mounted(Path(target)):
        # A lazy unmount still detaches the tree from the chroot immediately,
        # which is what matters before anything deletes files below it.
        logger.warning("umount %s failed (%s); trying lazy unmount", target, proc.stderr.strip())
        run(["umount", "-l", target], timeout=30)
