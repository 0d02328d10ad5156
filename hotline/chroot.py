"""Build the Debian sid chroot that holds Asterisk.

Debian 12 ships no Asterisk, so the usual source is a Debian sid chroot built
once with debootstrap (:func:`ensure_chroot`) from the host's Debian mirror,
with the packages of :data:`CHROOT_PACKAGES`.  The build happens beside the
chroot and is renamed into place only once a stamp file says it is complete;
a complete chroot built from an older package list is topped up in place.

Instances (:mod:`hotline.pbx`) run inside it side by side, each with its state
tree bind-mounted at the same absolute path; :func:`release_chroot` unmounts
everything there once none of them runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hotline.sysrun import CLEAN_ENV, PbxError, mounts_under, run, run_logged, umount

logger = logging.getLogger(__name__)

#: Used only when no Debian mirror can be read from the host's apt sources.
FALLBACK_DEBIAN_MIRROR = "http://deb.debian.org/debian"

#: Packages installed into the chroot.  tzdata is listed explicitly because
#: minbase does not pull it in and GotoIfTime/IFTIME with a timezone need it;
#: without a moh package /usr/share/asterisk/moh is missing and queue callers
#: hear silence (res_musiconhold logs an error at start).
CHROOT_PACKAGES: tuple[str, ...] = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en-gsm",
    "asterisk-moh-opsound-gsm",
    "tzdata",
)

#: Marks a chroot as completely built; written last, before the atomic rename.
CHROOT_STAMP = ".hotline-chroot-complete"

# The sid Release file on the mirror is past its Valid-Until date; without
# this apt refuses to use it (measured, see LAB_NOTES).
_APT_OPTS = ("-o", "Acquire::Check-Valid-Until=false")


def _remove_tree_safely(path: Path) -> None:
    """Delete a (possibly half-built) chroot, never following into mounts.

    An interrupted debootstrap or a crashed instance can leave proc or a /dev
    bind mounted inside; rmtree through those would destroy host files.
    """
    for point in mounts_under(path):
        umount(point)
    left = mounts_under(path)
    if left:
        raise PbxError(f"refusing to delete {path}: still mounted: {left}")
    shutil.rmtree(path, ignore_errors=False)


def _debian_mirror() -> str:
    """The Debian archive URI configured on the host (not the security one)."""
    uris: list[str] = []
    src_dir = Path("/etc/apt/sources.list.d")
    files = sorted(src_dir.glob("*.sources")) + sorted(src_dir.glob("*.list"))
    files.append(Path("/etc/apt/sources.list"))
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("URIs:"):
                uris += line.split()[1:]
            elif line.startswith("deb "):
                # one-line format, possibly with [options]
                rest = re.sub(r"\[[^\]]*\]", "", line[4:]).split()
                if rest:
                    uris.append(rest[0])
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    logger.warning("no Debian mirror in apt sources; using %s", FALLBACK_DEBIAN_MIRROR)
    return FALLBACK_DEBIAN_MIRROR


def _ensure_debootstrap(say: Callable[[str], None]) -> str:
    found = shutil.which("debootstrap", path=CLEAN_ENV["PATH"])
    if found:
        return found
    say("installing debootstrap on the host with apt-get")
    env = dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", *_APT_OPTS, "update"], timeout=600, env=env)
    run(
        ["apt-get", *_APT_OPTS, "install", "-y", "--no-install-recommends", "debootstrap"],
        timeout=600,
        env=env,
    )
    found = shutil.which("debootstrap", path=CLEAN_ENV["PATH"])
    if not found:
        raise PbxError("debootstrap still not found after apt-get install")
    return found


def _stamped_packages(cache_dir: Path) -> set[str] | None:
    """Packages recorded in the stamp, or None if the chroot is not complete."""
    try:
        text = (cache_dir / CHROOT_STAMP).read_text()
    except OSError:
        return None
    if not (cache_dir / "usr/sbin/asterisk").exists():
        return None
    for line in text.splitlines():
        if line.startswith("packages:"):
            return set(line.split()[1:])
    return set()


def _chroot_is_complete(cache_dir: Path) -> bool:
    stamped = _stamped_packages(cache_dir)
    return stamped is not None and set(CHROOT_PACKAGES) <= stamped


def _write_stamp(root: Path, packages: Iterable[str], note: str) -> None:
    (root / CHROOT_STAMP).write_text(
        f"{note} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\npackages: {' '.join(sorted(packages))}\n"
    )


def ensure_chroot(cache_dir: Path, *, log: Callable[[str], None] | None = None) -> Path:
    """Build (once) a Debian sid chroot with Asterisk at ``cache_dir`` and return it.

    The build happens in a sibling temporary directory that is renamed into
    place only after a stamp file is written, so an interrupted build is never
    taken for a complete one; leftovers of such builds are removed (after
    unmounting anything inside them).  Concurrent callers serialise on a lock
    file next to ``cache_dir``.  When the stamp is present the call returns at
    once.  Needs root and network access to the host's Debian mirror.
    """
    cache_dir = Path(cache_dir).absolute()

    def say(msg: str) -> None:
        logger.info("%s", msg)
        if log is not None:
            log(msg)

    if _chroot_is_complete(cache_dir):
        return cache_dir

    parent = cache_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    lock_path = parent / f".{cache_dir.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _chroot_is_complete(cache_dir):  # another process built it meanwhile
            return cache_dir
        stamped = _stamped_packages(cache_dir)
        if stamped is not None:
            # A complete chroot built from an older package list: add what is
            # missing in place instead of rebuilding (instances may be using it).
            missing = [p for p in CHROOT_PACKAGES if p not in stamped]
            say(f"adding {' '.join(missing)} to existing chroot {cache_dir}")
            _apt_install(cache_dir, missing, parent / f".{cache_dir.name}.build.log")
            _write_stamp(cache_dir, stamped | set(CHROOT_PACKAGES), "topped up")
            return cache_dir
        # Holding the lock, every partial build next to us is stale.
        for stale in parent.glob(f".{cache_dir.name}.partial-*"):
            say(f"removing interrupted chroot build {stale}")
            _remove_tree_safely(stale)
        if cache_dir.exists():
            say(f"{cache_dir} exists without {CHROOT_STAMP}; removing it")
            _remove_tree_safely(cache_dir)

        build = parent / f".{cache_dir.name}.partial-{os.getpid()}"
        build.mkdir()
        build_log = parent / f".{cache_dir.name}.build.log"
        build_log.write_text("")
        started = time.monotonic()
        try:
            _build_chroot(build, build_log, say)
            _write_stamp(build, CHROOT_PACKAGES, f"built in {time.monotonic() - started:.0f}s at")
            os.rename(build, cache_dir)
        except BaseException:
            say(f"chroot build failed; log in {build_log}")
            try:
                _remove_tree_safely(build)
            except Exception:  # keep the original error; the next call retries cleanup
                logger.exception("could not remove partial build %s", build)
            raise
    say(f"chroot ready at {cache_dir} after {time.monotonic() - started:.0f}s")
    return cache_dir


def _build_chroot(build: Path, build_log: Path, say: Callable[[str], None]) -> None:
    debootstrap = _ensure_debootstrap(say)
    mirror = _debian_mirror()
    say(f"debootstrap sid into {build} from {mirror} (a few minutes)")
    run_logged(
        [debootstrap, "--variant=minbase", "sid", str(build), mirror], build_log, timeout=1800
    )

    # Keep package maintainer scripts from starting an Asterisk with the
    # distro's default config (it would grab port 5060 on the host).
    policy = build / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)

    say(f"installing {' '.join(CHROOT_PACKAGES)}")
    _apt_install(build, CHROOT_PACKAGES, build_log)
    # debootstrap may leave its own proc/sys mounts if a step misbehaved.
    for point in mounts_under(build):
        umount(point)
    if not (build / "usr/sbin/asterisk").exists():
        raise PbxError(f"asterisk binary missing after install; see {build_log}")


def _apt_install(root: Path, packages: Sequence[str], build_log: Path) -> None:
    env = dict(CLEAN_ENV, DEBIAN_FRONTEND="noninteractive")
    chroot_apt = ["chroot", str(root), "apt-get", *_APT_OPTS]
    run_logged([*chroot_apt, "update"], build_log, timeout=900, env=env)
    run_logged(
        [*chroot_apt, "install", "-y", "--no-install-recommends", *packages],
        build_log,
        timeout=1800,
        env=env,
    )
    run_logged([*chroot_apt, "clean"], build_log, timeout=300, env=env)


def chroot_mounts(root: Path) -> list[str]:
    """Mount points currently inside ``root`` (for diagnostics and tests)."""
    return mounts_under(Path(root).absolute())


def release_chroot(root: Path) -> None:
    """Unmount everything inside ``root`` (proc, /dev and binds).

    Only for when no instance in the chroot is running, e.g. before deleting
    or rebuilding it.
    """
    for point in mounts_under(Path(root).absolute()):
        umount(point)
