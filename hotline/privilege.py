"""Least privilege: the system users the hotline runs as, what each owns, and
the drop from root.

Two users, made by :func:`ensure_users` (``hotline setup``, as root):

- the application's (``[service] user``, ``hotline``) runs the application,
  its panel processes and transcription workers.  It owns what they write:
  ``var/`` (database, secrets, logs, replay cache, attachments, models), the
  prompts (the IVR's and the text spoken at run time), hold music and
  Asterisk's configuration.
- Asterisk's (``[service] pbx_user``, ``hotline-pbx``): Asterisk starts as
  root only for its chroot's bind mounts and drops to it (``runuser`` in
  asterisk.conf) before it loads a module or opens a port.  It owns what
  Asterisk writes: the recordings, its spool, astdb, logs and queue_log
  (:mod:`hotline.pbx` sets up its own tree).

Asterisk's group is shared: the application's user is a member.  A folder one
of them writes and the other reads carries that group with the setgid bit,
so every file made in it keeps the group, and both run with umask 0007: the
application reads (and purges) the recordings and the queue_log and makes the
day folders of voice messages Asterisk records into; Asterisk reads the
prompts, hold music and its configuration.  Nothing else of either is open to
the other: the database, the secrets and the application's logs belong to the
application's own group, which has no other member.

:func:`apply_layout` puts owners and modes right (as root, before anything
starts; ``hotline permissions`` runs it alone); :func:`app_credentials` is
what a process started as root drops to, and :func:`unreachable` names a
closed folder on the way before a start fails on it.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.settings import ConfigError, Settings, secrets_path
from dialplan.render import offer_moh_dir

log = logging.getLogger(__name__)

#: both users' umask: what one makes in a shared folder the other may read
UMASK = 0o007
NOLOGIN = "/usr/sbin/nologin"
# taken while users are checked and created (only root does)
USERS_LOCK = Path("/run/lock/hotline-users.lock")


@dataclass(frozen=True)
class Credentials:
    """Who a process runs as: what ``subprocess.Popen`` needs to drop to it."""

    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    def env(self, home: Path) -> dict[str, str]:
        """This environment as the user's: ``HOME`` is ``home`` (the user's own
        is /nonexistent)."""
        return dict(os.environ, HOME=str(home), USER=self.user, LOGNAME=self.user)


def _user(name: str, key: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            "[service]",
            [
                f"{key}: there is no system user {name!r} on this machine "
                '(`hotline setup` as root creates it; "" keeps root)'
            ],
        ) from None


def app_credentials(settings: Settings) -> Credentials | None:
    """What the application drops to when started as root; None when it
    stays as it is (not root, or ``[service] user = ""``)."""
    if os.geteuid() != 0 or not settings.service.user:
        return None
    app = _user(settings.service.user, "user")
    groups: tuple[int, ...] = ()
    if settings.service.pbx_user:
        groups = (_user(settings.service.pbx_user, "pbx_user").pw_gid,)
    return Credentials(app.pw_name, app.pw_uid, app.pw_gid, groups)


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def ensure_users(settings: Settings, *, say=print) -> None:  # type: ignore[no-untyped-def]
    """Create the system users and groups ``[service]`` names, where missing,
    and make the application's user a member of Asterisk's group.  Only as
    root; elsewhere nothing is done (who runs it owns what it makes)."""
    if os.geteuid() != 0:
        return
    # Two starts at once (a set-up beside a running `hotline start`, two test
    # workers) would both see a user missing and the second `useradd` fail.
    USERS_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with USERS_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_users(settings, say)


def _ensure_users(settings: Settings, say) -> None:  # type: ignore[no-untyped-def]
    pbx, app = settings.service.pbx_user, settings.service.user
    for name, what in ((pbx, "Asterisk"), (app, "application")):
        if not name or _user_exists(name):
            continue
        say(f"Creating the system user {name} (the {what} runs as it)")
        if not _group_exists(name):
            _run(["groupadd", "--system", name])
        _run(
            [
                "useradd",
                "--system",
                "--gid",
                name,
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                NOLOGIN,
                "--comment",
                f"Citizen hotline ({what})",
                name,
            ]
        )
    if pbx and app and app not in grp.getgrnam(pbx).gr_mem:
        _run(["usermod", "--append", "--groups", pbx, app])


# ---- owners and modes ---------------------------------------------------------


@dataclass(frozen=True)
class _Owners:
    app_uid: int
    app_gid: int
    pbx_uid: int
    shared_gid: int


def _owners(settings: Settings) -> _Owners | None:
    app, pbx = settings.service.user, settings.service.pbx_user
    if not app and not pbx:
        return None
    a = _user(app, "user") if app else None
    p = _user(pbx, "pbx_user") if pbx else None
    app_uid, app_gid = (a.pw_uid, a.pw_gid) if a else (0, 0)
    # without an Asterisk user, Asterisk runs as root: the application's
    # group is then the one its folders share
    pbx_uid, shared_gid = (p.pw_uid, p.pw_gid) if p else (0, app_gid)
    return _Owners(app_uid, app_gid, pbx_uid, shared_gid)


#: a mode for :func:`_set`: the exact mode, or None to take away only what
#: others may do (Asterisk, which passes through var/, is one of them)
Mode = int | None
_OTHERS = 0o007


def _wrong(st: os.stat_result, uid: int, gid: int, mode: Mode) -> bool:
    if (st.st_uid, st.st_gid) != (uid, gid):
        return True
    now = stat.S_IMODE(st.st_mode)
    return not stat.S_ISLNK(st.st_mode) and now != (now & ~_OTHERS if mode is None else mode)


def _set(path: Path, uid: int, gid: int, mode: Mode) -> None:
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
    if stat.S_ISLNK(st.st_mode):
        return
    now = stat.S_IMODE(st.st_mode)
    want = now & ~_OTHERS if mode is None else mode
    if now != want:
        path.chmod(want)


def _tree(root: Path, uid: int, gid: int, dir_mode: Mode, file_mode: Mode) -> None:
    """``root`` and everything below it: owner, group and modes.

    Every folder is looked at, but the files of a folder only when the folder
    itself was wrong (an install that ran as root, a restore): what the users
    make in a right folder is right (setgid group, their umask), and a year of
    recordings is too many files to look at before each start.  A folder is
    put right after its files, so one left half done is done again.
    """
    if not root.exists():
        return
    for folder, dirs, files in os.walk(root, topdown=False):
        base = Path(folder)
        if _wrong(base.lstat(), uid, gid, dir_mode):
            for f in files:
                _set(base / f, uid, gid, file_mode)
            for d in dirs:
                if (base / d).is_symlink():  # os.walk lists them and does not enter them
                    _set(base / d, uid, gid, None)
            _set(base, uid, gid, dir_mode)


def _within(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == f or path.is_relative_to(f) for f in folders)


def apply_layout(settings: Settings) -> None:
    """Owners and modes of the home's state for the users of ``[service]``.

    Only as root (before starting anything, and by ``hotline permissions``);
    a no-op elsewhere and when both users are ``""``.  Asterisk's own tree
    under ``var/asterisk`` is :class:`hotline.pbx.AsteriskInstance`'s to set
    at its start, apart from its configuration.
    """
    if os.geteuid() != 0:
        return
    o = _owners(settings)
    if o is None:
        return
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    recordings, prompts = settings.recordings_dir, settings.prompts_dir
    recordings.mkdir(parents=True, exist_ok=True)
    prompts.mkdir(parents=True, exist_ok=True)
    asterisk = settings.asterisk_dir
    # read by Asterisk, written by the application (and by root's commands)
    shared_read = [prompts, state / "moh", offer_moh_dir(settings), asterisk / "etc"]
    apart = [recordings, asterisk, *shared_read]
    # var/ itself: Asterisk passes through it to its tree, the recordings and
    # prompts; for the rest (database, secrets, logs) it is one of the others,
    # who get nothing
    _set(state, o.app_uid, o.shared_gid, 0o750)
    for entry in state.iterdir():
        if _within(entry, apart):
            continue
        if entry.is_dir() and not entry.is_symlink():
            _tree(entry, o.app_uid, o.app_gid, None, None)
        else:
            _set(entry, o.app_uid, o.app_gid, None)
    log_dir = state / "log"
    log_dir.mkdir(exist_ok=True)
    _set(log_dir, o.app_uid, o.app_gid, 0o750)
    secrets = secrets_path(state)
    if secrets.exists():
        _set(secrets, o.app_uid, o.app_gid, 0o600)
    for folder in shared_read:
        _tree(folder, o.app_uid, o.shared_gid, 0o2750, 0o640)
    if asterisk.exists():
        _set(asterisk, o.app_uid, o.shared_gid, 0o2750)
    # Asterisk writes them; the application reads and purges them, and makes
    # the day folders Asterisk records voice messages into
    _tree(recordings, o.pbx_uid, o.shared_gid, 0o2770, 0o660)
    log.info("owners and modes set under %s", state)


def unreachable(
    creds: Credentials, paths: Iterable[Path], *, write: Iterable[Path] = ()
) -> list[str]:
    """What ``creds`` cannot reach: each path's folders must let it through,
    each of ``paths`` be readable and each of ``write`` writable.  Checked
    from the modes (as root, ``os.access`` says yes to everything)."""

    def allowed(st: os.stat_result, bits: int) -> bool:
        # bits: 4 read, 2 write, 1 pass through
        if creds.uid == 0:
            return True
        if st.st_uid == creds.uid:
            return bool(st.st_mode >> 6 & bits == bits)
        if st.st_gid in (creds.gid, *creds.groups):
            return bool(st.st_mode >> 3 & bits == bits)
        return bool(st.st_mode & bits == bits)

    problems: list[str] = []
    wanted = [(Path(p), 4) for p in paths] + [(Path(p), 2) for p in write]
    for path, bits in wanted:
        path = path.resolve()
        closed = next(
            (d for d in reversed(path.parents) if d.exists() and not allowed(d.stat(), 1)), None
        )
        if closed is not None:
            st = closed.stat()
            problems.append(
                f"{path}: the folder {closed} (mode {stat.S_IMODE(st.st_mode):04o}, owner "
                f"{_name(st.st_uid)}) does not let the user {creds.user} through"
            )
        elif path.exists() and not allowed(path.stat(), bits | (1 if path.is_dir() else 0)):
            problems.append(
                f"{path}: the user {creds.user} cannot {'read' if bits == 4 else 'write'} it"
            )
    return problems


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def require_reachable(settings: Settings, creds: Credentials, code: Iterable[Path]) -> None:
    """Raise :class:`ConfigError` naming every folder that keeps ``creds``
    from the configuration, the state or the code it runs."""
    config = [settings.config_path] if settings.config_path else []
    problems = unreachable(creds, [*config, *code], write=[settings.state_dir])
    if problems:
        raise ConfigError(
            "[service] user",
            [
                *problems,
                f"the application runs as {creds.user}: keep the home and the Python env "
                "where it can reach them (e.g. /opt or /srv), or open the folder (chmod o+x)",
            ],
        )
