"""systemd units for the hotline, rendered for one home and one Python env.

- ``hotline-asterisk.service``: Asterisk (in its chroot when built so),
  forking, with its pid file; restarted on failure.
- ``hotline.service``: the application (IVR, queues, panel, its own
  transcription workers), after Asterisk, Redis and PostgreSQL when local;
  restarted always, stopped within the bounded stop it has.
- ``hotline-worker@.service``: an extra transcription worker (``@1``,
  ``@2`` …), on this machine or another with the same configuration.
- ``hotline-panel@.service``: an extra panel process on the port its
  instance names (``hotline-panel@8081``).

The application's units run as ``[service] user`` with Asterisk's group
(umask 0007) in a sandbox: the system read-only but for the home's state,
recordings and prompts, no /home (read-only where the home or the env is
there), a private /tmp, no new privileges, no capabilities.  Before each
start, ``hotline permissions`` (as root, ``+``) puts owners and modes right.
Asterisk's unit stays root for its chroot's bind mounts (which must be seen
outside it: no mount namespace there) and Asterisk drops to
``[service] pbx_user`` itself; the application talks to it over AMI and
FastAGI only.  No port is below 1024, so no unit needs a capability to bind.

``hotline systemd`` writes them; ``setup.sh`` installs and enables them where
systemd runs, and keeps the self-daemonising ``hotline start`` where it does
not (containers).
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from core.settings import Settings

HERE = Path(__file__).parent
UNITS = (
    "hotline-asterisk.service",
    "hotline.service",
    "hotline-worker@.service",
    "hotline-panel@.service",
)


def _local(url: str) -> bool:
    return any(
        h in url for h in ("@127.0.0.1", "@localhost", "@/", "host=/", "//127.0.0.1", "//localhost")
    )


#: where ProtectHome= hides or guards
_HOME_ROOTS = (Path("/home"), Path("/root"), Path("/run/user"))


def _writable(settings: Settings) -> list[Path]:
    """What the application writes: the state, and the recordings and prompts
    where they lie outside it."""
    out: list[Path] = []
    for p in (settings.state_dir, settings.recordings_dir, settings.prompts_dir):
        if not any(p == o or p.is_relative_to(o) for o in out):
            out.append(p)
    return out


def render_units(settings: Settings, bin_dir: Path, pid_file: Path) -> dict[str, str]:
    """Each unit's text: ``bin_dir`` holds the ``hotline`` script of the env,
    ``pid_file`` is where Asterisk writes its pid."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    after: list[str] = []
    if _local(settings.panel.redis_url):
        after.append("redis-server.service")
    if settings.database.startswith("postgresql") and _local(settings.database):
        after.append("postgresql.service")
    context = {
        "hotline": bin_dir / "hotline",
        "home": settings.home,
        "config": settings.config_path,
        "state": settings.state_dir,
        "pid_file": pid_file,
        "after": "".join(f" {a}" for a in after),
        "user": settings.service.user,
        "pbx_user": settings.service.pbx_user,
        "writable": " ".join(str(p) for p in _writable(settings)),
        # the home or the env in /home or /root: seen, read-only (its state writable)
        "protect_home": "read-only"
        if any(
            p.is_relative_to(r)
            for p in (
                settings.home,
                bin_dir,
                *([settings.config_path] if settings.config_path else []),
            )
            for r in _HOME_ROOTS
        )
        else "yes",
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in UNITS}


def render_logrotate(settings: Settings, bin_dir: Path) -> str:
    """The logrotate configuration for the application's and Asterisk's logs."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("logrotate.j2").render(
        hotline=bin_dir / "hotline",
        config=settings.config_path,
        state=settings.state_dir,
        asterisk_log=settings.queue_log.parent,
        # a new log Asterisk can write (once setup has made its user)
        asterisk_owner=_existing(settings.service.pbx_user),
    )


def _existing(user: str) -> str | None:
    import pwd

    try:
        return pwd.getpwnam(user).pw_name if user else None
    except KeyError:
        return None
