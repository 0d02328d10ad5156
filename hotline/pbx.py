"""Start, stop and query real Asterisk instances.

An :class:`AsteriskInstance` is one Asterisk process with its own state tree
(``etc/ spool/ log/ run/ lib/``).  Its Asterisk is a host install of a recent
enough version when there is one (:func:`find_host_asterisk`), else the one in
the Debian sid chroot that :mod:`hotline.chroot` builds.  When it runs inside
a chroot, that tree is bind-mounted at the *same absolute path* inside the
chroot, so the Python application on the host reads recordings and queue_log
at exactly the paths Asterisk writes them to.  Several instances can share one
chroot side by side (e.g. the PBX on 127.0.0.1 and a test carrier on
127.0.0.2).

Asterisk starts as root (the bind mounts need it) and, given a ``run_user``,
drops to that user itself (``runuser`` in asterisk.conf) before it loads a
module: the user and its group are copied into the chroot's /etc/passwd and
/etc/group, and the instance's spool, log, astdb and run folders are that
user's (setgid to its group, which the application shares: see
:mod:`hotline.privilege`).
"""

from __future__ import annotations

import fcntl
import grp
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hotline.sysrun import (
    CLEAN_ENV,
    PbxError,
    is_mounted,
    mounts_under,
    run,
    tail,
    tail_file,
    umount,
)

logger = logging.getLogger(__name__)

#: In a chroot: mount-point directories created by instances (removed when empty).
CREATED_DIRS_FILE = ".hotline-created-dirs"

#: Short directory for control sockets when state_dir/run is too deep.
SHORT_RUN_BASE = Path("/run/hotline-asterisk")

# sun_path is 108 bytes including the NUL; keep a margin for Asterisk's own
# suffixes and for callers that print the path in error messages.
_MAX_CTL_PATH = 100


def _parse_major(version_text: str) -> int | None:
    match = re.search(r"Asterisk\s+(?:certified/)?(\d+)\.", version_text)
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------
# host asterisk
# ---------------------------------------------------------------------------


def find_host_asterisk(min_major: int = 20) -> str | None:
    """Return the path of an installed ``asterisk`` whose major version is >= ``min_major``.

    Looks on PATH and in the usual sbin directories (which a non-root PATH may
    lack).  Returns None if none is found or none is recent enough.
    """
    candidates: list[str] = []
    on_path = shutil.which("asterisk", path=CLEAN_ENV["PATH"]) or shutil.which("asterisk")
    if on_path:
        candidates.append(on_path)
    candidates += ["/usr/sbin/asterisk", "/usr/local/sbin/asterisk"]
    seen: set[str] = set()
    for cand in candidates:
        real = os.path.realpath(cand)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        try:
            proc = run([cand, "-V"], timeout=10, check=False)
        except PbxError:
            continue
        major = _parse_major(proc.stdout + proc.stderr)
        logger.debug("host asterisk %s reports major %s", cand, major)
        if major is not None and major >= min_major:
            return cand
    return None


# ---------------------------------------------------------------------------
# instances
# ---------------------------------------------------------------------------


@dataclass
class AsteriskInstance:
    """One Asterisk process with its own state tree, optionally in a chroot.

    ``state_dir`` holds ``etc/ spool/ log/ run/ lib/``; ``root`` is the chroot
    (None runs the host's asterisk); ``binds`` are further host directories
    bind-mounted at the same absolute path inside the chroot.
    """

    name: str
    state_dir: Path
    root: Path | None = None
    binds: tuple[Path, ...] = ()
    # With no chroot: the installed asterisk to run (default: the one on PATH).
    binary: str | None = None
    # The system user Asterisk drops to after starting as root (None: stays root).
    run_user: str | None = None

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if not self.state_dir.is_absolute():
            raise ValueError(f"state_dir must be absolute: {self.state_dir}")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ValueError(f"instance name must be [A-Za-z0-9_-]+: {self.name!r}")
        if self.root is not None:
            self.root = Path(self.root).absolute()
        self.binds = tuple(Path(b) for b in self.binds)
        for b in self.binds:
            if not b.is_absolute():
                raise ValueError(f"bind paths must be absolute: {b}")

    # -- paths -------------------------------------------------------------

    @property
    def etc_dir(self) -> Path:
        """Per-instance config dir (astetcdir); the .conf files go here."""
        return self.state_dir / "etc"

    @property
    def spool_dir(self) -> Path:
        """astspooldir: recordings (monitor/), outgoing call files."""
        return self.state_dir / "spool"

    @property
    def log_dir(self) -> Path:
        """astlogdir: messages, queue_log."""
        return self.state_dir / "log"

    @property
    def lib_dir(self) -> Path:
        """astdbdir: astdb.sqlite3."""
        return self.state_dir / "lib"

    @property
    def run_dir(self) -> Path:
        """Directory of the pid file and control socket.

        ``state_dir/run`` unless the control socket path would exceed the
        AF_UNIX limit; then a short per-instance directory under
        /run/hotline-asterisk (hashed on state_dir so equal names in different
        state trees do not collide).
        """
        natural = self.state_dir / "run"
        if len(str(natural / "asterisk.ctl")) <= _MAX_CTL_PATH:
            return natural
        digest = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:8]
        return SHORT_RUN_BASE / f"{self.name}-{digest}"

    @property
    def conf_path(self) -> Path:
        """The asterisk.conf passed with -C."""
        return self.etc_dir / "asterisk.conf"

    @property
    def pid_path(self) -> Path:
        """Pid file written by the daemon."""
        return self.run_dir / "asterisk.pid"

    @property
    def ctl_path(self) -> Path:
        """Control socket used by ``asterisk -r``."""
        return self.run_dir / "asterisk.ctl"

    # -- configuration -----------------------------------------------------

    def write_asterisk_conf(self) -> None:
        """Write ``etc/asterisk.conf`` pointing every mutable directory into state_dir.

        astmoddir/astdatadir/astvarlibdir keep the distro defaults so modules
        and sounds are found; only per-instance state is redirected.
        """
        for d in (self.etc_dir, self.spool_dir, self.log_dir, self.lib_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            "; written by hotline.pbx -- per-instance directories\n"
            "[directories]\n"
            f"astetcdir => {self.etc_dir}\n"
            f"astspooldir => {self.spool_dir}\n"
            f"astlogdir => {self.log_dir}\n"
            f"astrundir => {self.run_dir}\n"
            f"astdbdir => {self.lib_dir}\n"
            "\n[options]\n"
            f"systemname = {self.name}\n"
            # Explicit either way: root only where no user is configured
            # (the test carrier); the group is the user's own, shared with
            # the application (rungroup also drops every other group).
            f"runuser = {self.run_user or 'root'}\n"
            f"rungroup = {self.run_user or 'root'}\n"
            "\n[files]\n"
            "astctlpermissions = 0660\n"
            "astctl = asterisk.ctl\n"
        )

    # -- commands ----------------------------------------------------------

    def _asterisk_cmd(self, *args: str) -> list[str]:
        if self.root is None:
            binary = self.binary or shutil.which("asterisk", path=CLEAN_ENV["PATH"]) or "asterisk"
            return [binary, "-C", str(self.conf_path), *args]
        return ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", str(self.conf_path), *args]

    def cli(self, command: str, timeout: float = 10) -> str:
        """Run one CLI command in the instance (``asterisk -rx``) and return its stdout."""
        proc = run(self._asterisk_cmd("-n", "-rx", command), timeout=timeout, check=False)
        out = proc.stdout
        if proc.returncode != 0 or "Unable to connect to remote asterisk" in out + proc.stderr:
            raise PbxError(
                f"[{self.name}] CLI {command!r} failed (exit {proc.returncode}): "
                f"{tail(proc.stderr or out)}"
            )
        return out

    def version(self) -> str:
        """The ``core show version`` line of the running instance."""
        return self.cli("core show version").strip()

    # -- process state -----------------------------------------------------

    def _pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _alive(pid: int) -> bool:
        # A zombie has a /proc entry but is gone for our purposes.
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def _our_process(self, pid: int) -> bool:
        """The pid belongs to an asterisk started with our -C (pid files can be stale)."""
        if not self._alive(pid):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return (
            any(a.endswith(b"asterisk") for a in argv[:1]) and str(self.conf_path).encode() in argv
        )

    def is_running(self) -> bool:
        """True if this instance's asterisk process (per its pid file) is alive."""
        pid = self._pid()
        return pid is not None and self._our_process(pid)

    # -- mounts ------------------------------------------------------------

    def _bind_sources(self) -> list[Path]:
        paths = [self.state_dir, *self.binds]
        if not _is_relative_to(self.run_dir, self.state_dir):
            paths.append(self.run_dir)
        # Parents first so a child bind lands on top of, not under, its parent.
        return sorted(dict.fromkeys(paths), key=lambda p: len(p.parts))

    def _prepare_root(self) -> None:
        assert self.root is not None
        if not (self.root / "usr/sbin/asterisk").exists():
            raise PbxError(f"no asterisk in chroot {self.root}; run ensure_chroot first")
        with _mount_lock():
            # proc and /dev are shared by every instance in this chroot and
            # stay mounted on stop (hotline.chroot.release_chroot() removes them).
            proc_t = self.root / "proc"
            if not is_mounted(proc_t):
                run(["mount", "-t", "proc", "proc", str(proc_t)], timeout=30)
            dev_t = self.root / "dev"
            if not is_mounted(dev_t):
                run(["mount", "--bind", "/dev", str(dev_t)], timeout=30)
            self._write_hosts()
            if self.run_user:
                self._copy_account()
            for src in self._bind_sources():
                src.mkdir(parents=True, exist_ok=True)
                target = self.root / src.relative_to("/")
                if is_mounted(target):
                    continue
                missing = [d for d in (target, *target.parents) if not d.exists()]
                target.mkdir(parents=True, exist_ok=True)
                _register_created_dirs(self.root, missing)
                run(["mount", "--bind", str(src), str(target)], timeout=30)

    def _write_hosts(self) -> None:
        # Without the host name in /etc/hosts every call logs getaddrinfo errors.
        assert self.root is not None
        host = os.uname().nodename
        try:
            base = Path("/etc/hosts").read_text()
        except OSError:
            base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if not re.search(rf"^\s*[0-9a-fA-F.:]+\s.*\b{re.escape(host)}\b", base, re.M):
            base += f"127.0.1.1\t{host}\n"
        hosts = self.root / "etc/hosts"
        if not hosts.exists() or hosts.read_text() != base:
            tmp = hosts.with_name(f".hosts.{os.getpid()}")
            tmp.write_text(base)
            os.replace(tmp, hosts)

    def _copy_account(self) -> None:
        """The run user and its group into the chroot's passwd and group files,
        with the host's ids: Asterisk looks the name up inside the chroot, and
        the files it writes must be the same user's on the host."""
        assert self.root is not None and self.run_user
        user = pwd.getpwnam(self.run_user)
        group = grp.getgrgid(user.pw_gid)
        entries = {
            "etc/passwd": (
                user.pw_name,
                f"{user.pw_name}:x:{user.pw_uid}:{user.pw_gid}:{user.pw_gecos}:/nonexistent:"
                "/usr/sbin/nologin",
            ),
            "etc/group": (group.gr_name, f"{group.gr_name}:x:{group.gr_gid}:"),
        }
        for rel, (name, line) in entries.items():
            path = self.root / rel
            lines = path.read_text().splitlines()
            kept = [x for x in lines if x.split(":", 1)[0] != name]
            if kept + [line] != lines:
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                tmp.write_text("".join(f"{x}\n" for x in [*kept, line]))
                tmp.chmod(0o644)
                os.replace(tmp, path)

    def _own_tree(self) -> None:
        """Spool, log, astdb and run folders (and what is in them) to the run
        user, setgid to its group: what Asterisk writes there the application
        reads (queue_log) through the group.  The configuration is the
        application's; Asterisk only reads it, through the same group."""
        assert self.run_user
        user = pwd.getpwnam(self.run_user)
        uid, gid = user.pw_uid, user.pw_gid
        for top in (self.spool_dir, self.log_dir, self.lib_dir, self.run_dir):
            for folder, _dirs, files in os.walk(top):
                base = Path(folder)
                _chown(base, uid, gid, 0o2750)
                for f in files:
                    _chown(base / f, uid, gid, None)
        # the whole tree: etc/tls holds the phones' certificate and key (0600 -> 0640)
        for p in (self.etc_dir, *self.etc_dir.rglob("*")):
            st = p.lstat()
            if st.st_gid != gid:
                os.lchown(p, -1, gid)
            if p.is_dir() and not p.is_symlink():
                p.chmod(st.st_mode & 0o7777 | 0o2050)
            elif p.is_file() and not p.is_symlink():
                p.chmod(st.st_mode & 0o7777 | 0o040)

    def _other_daemons_in_root(self) -> list[int]:
        """Pids of other asterisk daemons (not remote consoles) in our chroot."""
        assert self.root is not None
        own = self._pid()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            try:
                if (entry / "comm").read_text().strip() != "asterisk":
                    continue
                if os.readlink(entry / "root") != str(self.root):
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not any(a in (b"-r", b"-rx", b"-R", b"-x") for a in argv) and self._alive(
                int(entry.name)
            ):
                found.append(int(entry.name))
        return found

    @property
    def _binds_manifest(self) -> Path:
        return self.state_dir / "binds.list"

    def _binds_of_other_daemons(self) -> set[Path]:
        """Binds that other live daemons in this chroot declared at their start."""
        used: set[Path] = set()
        for pid in self._other_daemons_in_root():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                conf = Path(argv[argv.index(b"-C") + 1].decode())
                manifest = conf.parent.parent / "binds.list"
                used.update(Path(line) for line in manifest.read_text().splitlines() if line)
            except (OSError, ValueError, IndexError):
                # A daemon whose binds cannot be known: keep every bind, as before.
                return set(self.binds)
        return used

    def _release_mounts(self) -> None:
        if self.root is None:
            return
        # state_dir and a short run_dir belong to this instance alone.  Extra
        # binds may be shared with other instances in the chroot, so they are
        # removed only once no other daemon runs there.
        sources = [self.state_dir]
        if not _is_relative_to(self.run_dir, self.state_dir):
            sources.append(self.run_dir)
        with _mount_lock():
            if self.binds:
                in_use = self._binds_of_other_daemons()
                sources += [b for b in self.binds if b not in in_use]
            targets = [self.root / p.relative_to("/") for p in sources]
            for target in sorted(dict.fromkeys(targets), key=lambda p: len(p.parts), reverse=True):
                while is_mounted(target):
                    umount(str(target))
            _remove_created_dirs(self.root)
        short = self.run_dir
        if not _is_relative_to(short, self.state_dir):
            try:
                short.rmdir()  # only if empty: a pid file means a live daemon
            except OSError:
                pass

    # -- lifecycle ---------------------------------------------------------

    def _log_tail(self) -> str:
        parts = []
        for name in ("messages", "messages.log", "full", "full.log", "launch.log"):
            text = tail_file(self.log_dir / name, 30)
            if text:
                parts.append(f"--- {self.log_dir / name} (tail) ---\n{text}")
        return "\n".join(parts) or f"(no log output in {self.log_dir})"

    def start(self, timeout: float = 60) -> None:
        """Start the instance daemonised and wait until it is fully booted.

        Writes asterisk.conf if missing, prepares chroot mounts (idempotent),
        then waits for ``core waitfullybooted``.  Raises PbxError with the
        tail of the instance's logs if Asterisk exits or does not boot within
        ``timeout`` seconds.  A no-op if the instance is already running.
        """
        if self.is_running():
            logger.info("[%s] already running (pid %s)", self.name, self._pid())
            return
        if len(str(self.ctl_path)) > _MAX_CTL_PATH:
            raise PbxError(f"[{self.name}] control socket path too long: {self.ctl_path}")
        if not self.conf_path.exists():
            self.write_asterisk_conf()
        for d in (self.etc_dir, self.spool_dir, self.log_dir, self.lib_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        # Stale files from a killed run would make the boot wait below talk
        # to nothing or make is_running() trust a recycled pid.
        for stale in (self.pid_path, self.ctl_path):
            stale.unlink(missing_ok=True)
        dropping = self.run_user is not None and os.geteuid() == 0
        if dropping:
            self._own_tree()
        if self.root is not None:
            self._prepare_root()
            # Other instances read this to know which shared binds are still in use.
            self._binds_manifest.write_text("".join(f"{b}\n" for b in self.binds))

        started = time.monotonic()
        launch_log = self.log_dir / "launch.log"
        cmd = self._asterisk_cmd()
        logger.info("[%s] starting: %s", self.name, " ".join(cmd))
        with launch_log.open("w") as fh:
            # Asterisk forks and the parent returns; output goes to a file so a
            # daemon that keeps the descriptors open cannot block us.
            try:
                rc = subprocess.run(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=CLEAN_ENV,
                    timeout=timeout,
                    # what Asterisk makes (recordings, queue_log) its group reads
                    umask=0o007 if dropping else -1,
                ).returncode
            except subprocess.TimeoutExpired as exc:
                self._abort_start()
                raise PbxError(
                    f"[{self.name}] launcher did not return in {timeout:.0f}s: "
                    f"{' '.join(cmd)}\n{self._log_tail()}"
                ) from exc
        if rc != 0:
            self._abort_start()
            raise PbxError(
                f"[{self.name}] asterisk exited {rc} at launch: {' '.join(cmd)}\n{self._log_tail()}"
            )

        deadline = started + timeout
        last_err = ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort_start()
                raise PbxError(
                    f"[{self.name}] not fully booted after {timeout:.0f}s "
                    f"(last CLI error: {last_err})\n{self._log_tail()}"
                )
            pid = self._pid()
            if pid is not None and not self._alive(pid):
                self._abort_start()
                raise PbxError(
                    f"[{self.name}] asterisk (pid {pid}) died during boot\n{self._log_tail()}"
                )
            if self.ctl_path.exists():
                try:
                    out = self.cli("core waitfullybooted", timeout=max(1.0, remaining))
                except PbxError as exc:
                    last_err = str(exc)
                else:
                    # A daemon that dies during module load closes the socket
                    # and the remote CLI exits 0 with no output: only the
                    # explicit answer counts.
                    if "fully booted" in out:
                        break
                    last_err = f"waitfullybooted answered {out.strip()!r}"
            elif pid is None and time.monotonic() - started > 5:
                # No pid file 5 s after a successful fork: the daemon is gone.
                self._abort_start()
                raise PbxError(
                    f"[{self.name}] asterisk wrote no pid file; it probably exited\n"
                    f"{self._log_tail()}"
                )
            time.sleep(0.2)
        logger.info(
            "[%s] fully booted in %.1fs (pid %s)",
            self.name,
            time.monotonic() - started,
            self._pid(),
        )

    def _abort_start(self) -> None:
        try:
            self._kill(5)
        finally:
            # A daemon that exits on a module error leaves both files behind.
            for stale in (self.pid_path, self.ctl_path):
                stale.unlink(missing_ok=True)
            self._release_mounts()

    def _kill(self, grace: float) -> None:
        pid = self._pid()
        if pid is None or not self._our_process(pid):
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            end = time.monotonic() + grace
            while time.monotonic() < end:
                if not self._alive(pid):
                    return
                time.sleep(0.1)
        raise PbxError(f"[{self.name}] asterisk pid {pid} survived SIGKILL")

    def stop(self, timeout: float = 30) -> None:
        """Stop the instance (``core stop now``; killed after ``timeout``) and unmount its binds.

        proc and /dev in the chroot stay mounted: other instances share them.
        Safe to call when the instance is not running.
        """
        pid = self._pid()
        if pid is not None and self._our_process(pid):
            try:
                self.cli("core stop now", timeout=min(timeout, 10))
            except PbxError as exc:
                # The CLI connection often drops as the daemon exits.
                logger.debug("[%s] core stop now: %s", self.name, exc)
            end = time.monotonic() + timeout
            while self._alive(pid) and time.monotonic() < end:
                time.sleep(0.1)
            if self._alive(pid):
                logger.warning(
                    "[%s] still running %.0fs after core stop now; killing", self.name, timeout
                )
                self._kill(5)
            logger.info("[%s] stopped (pid %s)", self.name, pid)
        for stale in (self.pid_path, self.ctl_path):
            stale.unlink(missing_ok=True)
        self._release_mounts()


def _chown(path: Path, uid: int, gid: int, mode: int | None) -> None:
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)
    if mode is not None and st.st_mode & 0o7777 != mode:
        path.chmod(mode)


def _register_created_dirs(root: Path, dirs: Iterable[Path]) -> None:
    """Remember mount-point dirs made inside the chroot (call under _mount_lock).

    Kept in a file in the chroot rather than on the instance because another
    instance, or another process, may be the one that unmounts them last.
    """
    new = [str(d) for d in dirs]
    if new:
        with (root / CREATED_DIRS_FILE).open("a") as fh:
            fh.writelines(f"{d}\n" for d in new)


def _remove_created_dirs(root: Path) -> None:
    """Remove registered mount-point dirs that are now empty and unmounted."""
    registry = root / CREATED_DIRS_FILE
    try:
        dirs = set(registry.read_text().split("\n")) - {""}
    except OSError:
        return
    for d in sorted(dirs, key=lambda p: p.count("/"), reverse=True):
        path = Path(d)
        if mounts_under(path):
            continue
        try:
            path.rmdir()
        except OSError:
            continue  # not empty, or already gone
    left = [d for d in sorted(dirs) if Path(d).exists()]
    registry.write_text("".join(f"{d}\n" for d in left))


@contextmanager
def _mount_lock() -> Iterator[None]:
    """Serialise mount checks and changes across processes (check-then-mount races)."""
    SHORT_RUN_BASE.mkdir(parents=True, exist_ok=True)
    with (SHORT_RUN_BASE / ".mount.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _is_relative_to(path: Path, other: Path) -> bool:
    try:
        path.relative_to(other)
        return True
    except ValueError:
        return False
