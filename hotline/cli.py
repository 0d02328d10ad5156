"""The `hotline` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from core.settings import (
    DEFAULT_CONFIG,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    set_key,
)
from hotline.sysrun import PbxError

log = logging.getLogger("hotline")

# the documented example, shipped inside the package (config/ links to it)
EXAMPLE_CONFIG = Path(__file__).resolve().parent / "hotline.example.toml"


def _setup_logging(args: argparse.Namespace) -> None:
    from core import logs

    as_json = args.log_json or os.environ.get("HOTLINE_LOG_FORMAT", "").lower() == "json"
    logs.setup(verbose=args.verbose, json_format=as_json)


def _config(args: argparse.Namespace) -> Path | None:
    return Path(args.config) if args.config else None


def cmd_check(args: argparse.Namespace) -> int:
    s = load_settings(_config(args))
    print(
        f"configuration OK: {len(s.hotlines)} hotlines, {len(s.teams)} teams, "
        f"{len(s.shifts)} shifts, {len(s.agents)} agents, time zone {s.timezone}"
    )
    from recordings.transcribe import model_problem

    problem = model_problem(s.vosk_model)
    print(f"transcription: {problem}" if problem else f"transcription: model {s.vosk_model}")
    return 0


def _config_path(args: argparse.Namespace) -> Path:
    return config_path(_config(args))


def _ensure_config(args: argparse.Namespace) -> bool:
    """Write the packaged example where the configuration should be; False if one is there."""
    path = _config_path(args)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"created {path} from the example: edit it for your hotline")
    return True


def cmd_init_config(args: argparse.Namespace) -> int:
    if not _ensure_config(args):
        print(f"hotline: {_config_path(args)} exists already; nothing written", file=sys.stderr)
        return 1
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from hotline import system

    _ensure_config(args)
    settings, inst = system.prepare(_config(args))
    system.check_app_user(settings)  # under systemd the unit would fail later, less clearly
    if not args.no_model and settings.vosk_model is None:
        settings = _fetch_model_or_say(settings, args)
    if args.no_start:
        return 0
    return _start(settings, inst, args)


def _fetch_model_or_say(settings, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Set-up's try at a transcription model: on any failure one line, and go on."""
    from recordings.model_fetch import DEFAULT_MODEL, FetchError

    print(f"Transcription model: fetching {DEFAULT_MODEL} (hotline model fetch)")
    try:
        _fetch_model(
            settings, DEFAULT_MODEL, None, settings.recordings.model_list_url, configure=True
        )
    except FetchError as e:
        print(
            f"Transcription model: not fetched: {e}; calls are recorded, and transcribed "
            "once [recordings] vosk_model is set (README: Transcription)"
        )
        return settings
    return load_settings(_config(args))


def _fetch_model(
    settings, name: str, folder: str | None, list_url: str | None, *, configure: bool
) -> Path:  # type: ignore[no-untyped-def]
    from recordings.model_fetch import fetch, tqdm_progress

    models_dir = Path(folder).resolve() if folder else settings.state_dir / "models"
    path = fetch(name, models_dir, list_url=list_url, progress=tqdm_progress(name))
    print(f"model {name} checked and ready in {path}")
    if configure and settings.config_path is not None:
        set_key(settings.config_path, "recordings", "vosk_model", str(path))
        print(f"set [recordings] vosk_model in {settings.config_path}")
    return path


def cmd_model_fetch(args: argparse.Namespace) -> int:
    from recordings.model_fetch import DEFAULT_MODEL, FetchError, Unreachable

    settings = load_settings(_config(args))
    try:
        _fetch_model(
            settings,
            args.name or DEFAULT_MODEL,
            args.dir,
            args.list_url or settings.recordings.model_list_url,
            configure=not args.no_config,
        )
    except Unreachable as e:
        print(f"hotline model fetch: {e}: nothing fetched", file=sys.stderr)
        return 1
    except FetchError as e:
        print(f"hotline model fetch: {e}", file=sys.stderr)
        return 2
    return 0


def _start(settings, inst, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from hotline import system

    if not inst.is_running():
        print("Starting Asterisk ...")
        inst.start()
    print(
        f"Asterisk {inst.version().strip()} running (SIP {settings.asterisk.bind_address}:"
        f"{settings.asterisk.sip_port}, AMI {settings.asterisk.ami_port})"
    )
    pid = system.start_app(settings)
    print(
        f"Application running (pid {pid}, FastAGI {settings.agi.host}:{settings.agi.port}); "
        f"log: {settings.state_dir}/log/hotline.log"
    )
    for h in settings.hotlines:
        print(f"  hotline {h.number} ({h.name}) answers; team {h.team}")
    print(
        f"Web panel: http://{settings.panel.host}:{settings.panel.port}/ "
        "(first admin: hotline create-admin <name>)"
    )
    print(f"Public site: {public_url(settings)}")
    print(_start_sms(settings))
    from recordings.transcribe import model_problem

    problem = model_problem(settings.vosk_model)
    if problem:
        print(f"Transcription: {problem}")
    else:
        print(f"Transcription: {settings.recordings.workers} workers, model {settings.vosk_model}")
    return 0


def _start_sms(settings: Settings) -> str:
    """Start Kannel when SMS are on; the line that says so."""
    if not settings.sms.enabled:
        return "SMS: off ([sms] enabled = false)"
    from sms.kannel import Kannel, KannelError

    if not settings.sms_password.get_secret_value():
        return "SMS: not started: no SMSC password ([sms] password in var/secrets.toml)"
    if not settings.kannel_password.get_secret_value():
        return "SMS: not started: Kannel's secrets are missing (hotline setup makes them)"
    from hotline.privilege import app_credentials
    from sms.kannel import RunAs

    creds = app_credentials(settings)  # started as root: the boxes run as the app's user
    run_as = RunAs(creds.uid, creds.gid, creds.groups) if creds is not None else None
    try:
        Kannel(settings, run_as=run_as).start()
    except KannelError as e:
        return f"SMS: Kannel did not start: {e}"
    return (
        f"SMS: Kannel running (SMSC {settings.sms.smsc_host}:{settings.sms.smsc_port} as "
        f"{settings.sms.system_id}; numbers {', '.join(settings.sms_desks())})"
    )


def cmd_start(args: argparse.Namespace) -> int:
    from hotline import privilege, system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    system.write_config(settings, inst)
    system.migrate(settings)
    privilege.apply_layout(settings)
    return _start(settings, inst, args)


def cmd_stop(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    if system.stop_app(settings):
        print("application stopped")
    from sms.kannel import Kannel

    if Kannel(settings).stop():
        print("Kannel stopped")
    inst = system.instance(settings, system.asterisk_root(settings))
    if inst.is_running():
        inst.stop()
        print("Asterisk stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from hotline import status as st
    from hotline import system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    running = inst.is_running()
    pid = system.app_pid(settings)
    status: dict[str, Any] = {
        "asterisk": {"running": running, "version": inst.version().strip() if running else None},
        "application": {"pid": pid, **({"readiness": st.fetch_readiness(settings)} if pid else {})},
    }
    if running:
        trunk: dict[str, Any] = {"name": settings.trunk.name, "registration": None}
        if settings.trunk.registers:
            shown = inst.cli("pjsip show registrations")
            trunk["registration"] = st.trunk_registration(shown, settings.trunk.name)
        status["trunk"] = trunk
    if settings.sms.enabled:
        from sms.kannel import Kannel
        from sms.kannel import status as kannel_status

        k = Kannel(settings)
        status["sms"] = {
            "running": k.is_running(),
            **(kannel_status(settings) if k.is_running() else {}),
        }
    if settings.email.enabled:
        e = settings.email
        status["email"] = {
            "address": e.address,
            "imap": f"{e.imap_host}:{e.imap_port} ({e.imap_tls}) as {e.imap_user}, {e.imap_folder}",
            "smtp": f"{e.smtp_host}:{e.smtp_port} ({e.smtp_tls})"
            + (f" as {e.smtp_user}" if e.smtp_user else ""),
        }
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
    else:
        print(st.render(status))
        if running and args.phones:
            ansi = re.compile(r"\x1b\[[0-9;]*m")  # Asterisk colours its output
            print(ansi.sub("", inst.cli("pjsip show contacts")))
    return 0 if st.healthy(status) else 3


def cmd_backup(args: argparse.Namespace) -> int:
    from hotline.backup import BackupError, backup

    settings = load_settings(_config(args))
    try:
        archive = backup(
            settings,
            Path(args.to) if args.to else None,
            with_audio=args.with_audio,
            version=_version(),
        )
    except BackupError as e:
        print(f"hotline backup: {e}", file=sys.stderr)
        return 2
    print(archive)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from core.settings import default_home
    from hotline.backup import BackupError, describe, restore

    home = default_home()
    try:
        restored = restore(Path(args.archive), home, config=_config(args), force=args.force)
    except (BackupError, ConfigError) as e:
        print(f"hotline restore: {e}", file=sys.stderr)
        return 2
    print(describe(restored))
    return 0


def cmd_pbx(args: argparse.Namespace) -> int:
    from hotline import privilege, system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    if args.action == "start":
        system.write_config(settings, inst)
        privilege.apply_layout(settings)
        inst.start()
        print(f"Asterisk {inst.version().strip()} running")
    elif args.action == "reopen-logs":
        if inst.is_running():  # after logrotate renamed them: write to new files
            inst.cli("logger reload")
    elif inst.is_running():
        inst.stop()
        print("Asterisk stopped")
    return 0


def cmd_permissions(args: argparse.Namespace) -> int:
    """Owners and modes of the home for the users of [service] (as root)."""
    from hotline import privilege, system

    settings = load_settings(_config(args))
    if os.geteuid() != 0:
        print("hotline permissions: needs root (it sets owners)", file=sys.stderr)
        return 1
    privilege.ensure_users(settings)
    privilege.apply_layout(settings)
    system.check_app_user(settings)
    svc = settings.service
    print(
        f"owners and modes set under {settings.state_dir}: the application runs as "
        f"{svc.user or 'root'}, Asterisk as {svc.pbx_user or 'root'}"
    )
    return 0


def cmd_systemd(args: argparse.Namespace) -> int:
    import subprocess

    from hotline import system
    from hotline.units import render_units

    settings = load_settings(_config(args))
    pid_file = system.instance(settings, None).pid_path
    units = render_units(settings, Path(sys.executable).parent, pid_file)
    if not args.output:
        for name, text in units.items():
            print(f"# ---- {name}\n{text}")
        return 0
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (out / name).write_text(text, encoding="utf-8")
        print(out / name)
    if args.enable:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(
            ["systemctl", "enable", "--now", "hotline-asterisk.service", "hotline.service"],
            check=True,
        )
    return 0


def cmd_logrotate(args: argparse.Namespace) -> int:
    from hotline.units import render_logrotate

    text = render_logrotate(load_settings(_config(args)), Path(sys.executable).parent)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(args.output)
    else:
        print(text, end="")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    changed = system.write_config(settings, inst)
    print(f"wrote {inst.etc_dir}: {', '.join(changed) or 'nothing changed'}")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    changed = asyncio.run(system.reload(settings, inst))
    print(f"reloaded: {', '.join(changed) or 'nothing changed'}")
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from dialplan import prompts

    counts = prompts.generate(load_settings(_config(args)), force=args.force)
    print(counts)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from hotline import system

    system.migrate(load_settings(_config(args)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from core import heap, logs
    from hotline.app import Application

    settings = load_settings(_config(args))
    logs.security_file(settings.state_dir / "log" / "security.log")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with Application(settings):
            heap.settle()
            await stop.wait()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    """One more panel process (same Redis and database) for more agents' browsers."""
    from core import heap, logs
    from hotline.app import PanelOnly

    settings = load_settings(_config(args))
    logs.security_file(settings.state_dir / "log" / "security.log")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with PanelOnly(settings, port=args.port):
            heap.settle()
            await stop.wait()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    """The first admin account (admins then create every other account in the panel)."""
    import getpass

    from accounts.exceptions import AccountInvalid
    from accounts.service import AccountService
    from core.clock import Clock
    from core.db import Database
    from hotline import system

    settings = load_settings(_config(args))
    system.migrate(settings)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
        if getpass.getpass("Repeat it: ") != password:
            print("hotline: the passwords differ", file=sys.stderr)
            return 2

    async def create() -> int:
        db = Database(settings.database)
        try:
            accounts = AccountService(db, settings, Clock())
            user = await accounts.create_user(
                None,
                {
                    "username": args.username,
                    "display_name": args.name or args.username,
                    "role": "admin",
                    "password": password,
                },
            )
        except AccountInvalid as e:
            for field, (message, params) in e.errors.items():
                print(f"hotline: {field} {message.format(**params)}", file=sys.stderr)
            return 2
        finally:
            await db.close()
        print(
            f"admin {user.username} created; sign in at "
            f"http://{settings.panel.host}:{settings.panel.port}/"
        )
        return 0

    return asyncio.run(create())


def cmd_kb(args: argparse.Namespace) -> int:
    """The procedures knowledge base: load the starter articles (marked as examples)."""
    from accounts.identity import Actor
    from accounts.models import Role
    from core.clock import Clock
    from core.db import Database
    from hotline import system
    from tickets.kb.service import KnowledgeBase
    from tickets.kb.starter import ARTICLES

    settings = load_settings(_config(args))
    system.migrate(settings)

    async def run() -> int:
        db = Database(settings.database)
        try:
            kb = KnowledgeBase(db, Clock())
            actor = Actor(id=None, name="hotline kb load-examples", role=Role.ADMIN)
            added = await kb.load_examples(actor, ARTICLES)
        finally:
            await db.close()
        print(
            f"{len(added)} example articles added, {len(ARTICLES) - len(added)} already there"
            " (marked as examples: check them against the city's rules)"
        )
        return 0

    return asyncio.run(run())


def cmd_reports(args: argparse.Namespace) -> int:
    """Write the leaders' report of a period now (XLSX and PDF, stored; sent with --send)."""
    from datetime import date

    from core.clock import Clock
    from core.db import Database
    from hotline import system
    from queue_stats.documents import FontMissing
    from queue_stats.periodic import PeriodicReports, due

    settings = load_settings(_config(args))
    system.migrate(settings)

    async def run() -> int:
        db = Database(settings.database)
        try:
            reports = PeriodicReports(db, settings, Clock())
            if args.day:
                wanted = [(args.kind, date.fromisoformat(args.day))]
            else:  # the last period of this kind that is over
                wanted = [
                    (kind, start)
                    for kind, start in due(
                        settings.model_copy(
                            update={
                                "periodic_reports": settings.periodic_reports.model_copy(
                                    update={"periods": [args.kind]}
                                )
                            }
                        ),
                        Clock().now(),
                    )
                ]
            for kind, day in wanted:
                try:
                    row, new = await reports.generate(kind, day)
                except FontMissing as e:
                    print(e, file=sys.stderr)
                    return 1
                verb = "written" if new else "already stored"
                print(f"{kind} report {row.period_start} - {row.last_day} {verb}:")
                for suffix in ("xlsx", "pdf"):
                    print(f"  {reports.path(row, suffix)}")
                if args.send:
                    sent = await reports.send(row.id)
                    again = await reports.get(row.id)
                    print(
                        "  sent" if sent else f"  not sent: {again.send_error or 'no recipients'}"
                    )
        finally:
            await db.close()
        return 0

    return asyncio.run(run())


def cmd_agencies(args: argparse.Namespace) -> int:
    """The agency directory as CSV: export, or import (a dry run unless --apply)."""
    from core.clock import Clock
    from core.db import Database
    from hotline import system
    from tickets.directory import ADDED, CHANGED, ERROR, UNCHANGED, DirectoryFiles
    from tickets.exceptions import InvalidInput

    settings = load_settings(_config(args))
    system.migrate(settings)

    source = ""
    if args.agencies_command == "import":
        try:
            source = (
                sys.stdin.read()
                if args.file == "-"
                else Path(args.file).read_text(encoding="utf-8-sig")
            )
        except (OSError, UnicodeDecodeError) as e:
            print(f"hotline: cannot read {args.file}: {e}", file=sys.stderr)
            return 2

    async def export() -> str:
        db = Database(settings.database)
        try:
            return await DirectoryFiles(db, Clock()).export()
        finally:
            await db.close()

    async def run() -> int:
        db = Database(settings.database)
        files = DirectoryFiles(db, Clock())
        try:
            plan = await files.plan(None, source)
            for row in plan.rows:
                what = ", ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in row.changes.items())
                print(f"line {row.line}\t{row.code}\t{row.outcome}\t{what}")
            for line, e in plan.all_errors():
                print(f"line {line}: {e.field} {e.message.format(**e.params)}", file=sys.stderr)
            print(
                f"{plan.count(ADDED)} to add, {plan.count(CHANGED)} to change, "
                f"{plan.count(UNCHANGED)} unchanged, "
                f"{plan.count(ERROR) + (1 if plan.errors else 0)} with errors"
            )
            if not plan.ok:
                print("hotline: nothing imported: correct the errors first", file=sys.stderr)
                return 2
            if not args.apply:
                print("dry run: nothing written (add --apply to import)")
                return 0
            try:
                await files.apply(None, source, plan.fingerprint)
            except InvalidInput as e:
                print(f"hotline: nothing imported: {e}", file=sys.stderr)
                return 2
            print("imported")
            return 0
        finally:
            await db.close()

    if args.agencies_command == "export":
        text = asyncio.run(export())
        if args.file in (None, "-"):
            sys.stdout.write(text)
        else:
            Path(args.file).write_text(text, encoding="utf-8")
        return 0
    return asyncio.run(run())


def cmd_open311_key(args: argparse.Namespace) -> int:
    """Issue, revoke or list the API keys Open311 clients file reports with."""
    import getpass

    from accounts.apikeys import ApiKeyError, ApiKeyService
    from accounts.identity import Actor
    from accounts.models import Role
    from core.clock import Clock
    from core.db import Database
    from hotline import system

    settings = load_settings(_config(args))
    system.migrate(settings)
    # the command line acts as an admin; the audit log names the system user
    actor = Actor(id=None, name=f"{getpass.getuser()} (command line)", role=Role.ADMIN)

    async def run() -> int:
        db = Database(settings.database)
        keys = ApiKeyService(db, Clock())
        try:
            if args.key_command == "issue":
                issued = await keys.issue(actor, args.name)
                print(f"API key {issued.key.key_id} issued for {issued.key.name!r}.")
                print("Give this key to its holder now; it is not shown again:")
                print(issued.secret)
            elif args.key_command == "revoke":
                key = await keys.revoke(actor, args.key_id)
                print(f"API key {key.key_id} ({key.name}) revoked.")
            else:
                tz = settings.tz
                for k in await keys.list():
                    state = (
                        f"revoked {k.revoked_at.astimezone(tz):%Y-%m-%d %H:%M}"
                        if k.revoked_at
                        else "active"
                    )
                    used = (
                        f"{k.last_used_at.astimezone(tz):%Y-%m-%d %H:%M}"
                        if k.last_used_at
                        else "never"
                    )
                    print(
                        f"{k.key_id}  {state:<24}  issued {k.issued_at.astimezone(tz):%Y-%m-%d} "
                        f"by {k.issued_by_name}  last used {used}  {k.name}"
                    )
        except ApiKeyError as e:
            print(f"hotline open311-key: {e.field}: {e.message}", file=sys.stderr)
            return 2
        finally:
            await db.close()
        return 0

    return asyncio.run(run())


def public_url(settings: Settings) -> str:
    """Where the public site (status page, portal) answers, or that it is off."""
    pub = settings.public
    if not pub.enabled:
        return "off (public.enabled = false)"
    if pub.path_prefix:
        return f"http://{settings.panel.host}:{settings.panel.port}{pub.path_prefix}/"
    return f"http://{pub.host}:{pub.port}/"


def cmd_transcribe_worker(args: argparse.Namespace) -> int:
    """One transcription worker process (the application starts some; run more anywhere)."""
    from recordings.pipeline import PARENT_ENV, watch_parent
    from recordings.transcribe import ModelMissing, model_problem
    from recordings.worker import TranscriptionWorker

    settings = load_settings(_config(args))
    model = Path(args.model).resolve() if args.model else settings.vosk_model
    problem = model_problem(model)
    if problem:
        print(f"hotline transcribe-worker: not starting: {problem}", file=sys.stderr)
        return 2

    async def main() -> int:
        assert model is not None
        worker = TranscriptionWorker(settings, model_path=model)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))

        def on_signal() -> None:
            stop.set()
            task.cancel()  # a job in progress goes back to the queue

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        # started by the application: stop as on SIGTERM when it is gone
        parent = os.environ.get(PARENT_ENV, "")
        watcher = (
            asyncio.create_task(watch_parent(int(parent), on_signal)) if parent.isdigit() else None
        )
        try:
            await task
        except asyncio.CancelledError:
            pass
        except ModelMissing as e:
            print(f"hotline transcribe-worker: not starting: {e}", file=sys.stderr)
            return 2
        finally:
            if watcher is not None:
                watcher.cancel()
            await worker.close()
        return 0

    return asyncio.run(main())


def cmd_recordings_purge(args: argparse.Namespace) -> int:
    """Delete audio older than [recordings] keep_audio_days (--dry-run: list it only)."""
    from core.clock import Clock
    from core.db import Database
    from recordings.purge import RecordingPurge

    settings = load_settings(_config(args))

    async def run() -> int:
        db = Database(settings.database)
        try:
            report = await RecordingPurge(settings, db, Clock()).run(dry_run=args.dry_run)
        finally:
            await db.close()
        if report.cutoff is None:
            print("[recordings] keep_audio_days is not set: audio is kept for ever")
            return 0
        verb = "would delete" if report.dry_run else "deleted"
        for item in report.items:
            for f in item.files:
                print(f"{verb} call {item.call_id} ({item.ended_at:%Y-%m-%d}): {f}")
            if item.transcript:
                print(f"{verb} call {item.call_id}: transcript")
        print(
            f"{verb} {report.files} files ({report.bytes / 1e6:.1f} MB) of "
            f"{len(report.items)} calls ended before {report.cutoff:%Y-%m-%d %H:%M} UTC; "
            "call records and audit kept"
        )
        return 0

    return asyncio.run(run())


def _loop_factory():  # type: ignore[no-untyped-def]
    """uvloop when installed: a faster event loop for the call path."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def cmd_test_call(args: argparse.Namespace) -> int:
    """Place one real SIP call from a simulated carrier and report what happened."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from callcenter.models import Call
    from core.db import Database
    from hotline import system
    from hotline.carrier import Carrier

    settings = load_settings(_config(args))
    number = args.number or settings.hotlines[0].number
    root = system.asterisk_root(settings)
    carrier = Carrier(
        settings,
        settings.state_dir / "test-carrier",
        root,
        register_agents=args.simulate_agents,
        agent_talk_seconds=args.hold,
    )

    async def run() -> int:
        db = Database(settings.database)
        await carrier.connect()
        try:
            await carrier.wait_registered(60)
            print(f"calling {number} from {args.caller} (A-law, keys {args.digits!r}) ...")
            placed = datetime.now(UTC) - timedelta(seconds=1)
            await carrier.call(
                number,
                caller_id=f'"Test call" <{args.caller}>',
                digits=args.digits,
                wait=1.5,
                hold=args.hold,
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + args.hold + settings.queues.max_wait_seconds + 30
            call = None
            while loop.time() < deadline:
                async with db.session() as s:
                    call = await s.scalar(
                        select(Call)
                        .where(Call.caller_number == args.caller, Call.started_at >= placed)
                        .order_by(Call.id.desc())
                        .limit(1)
                    )
                if call is not None and call.ended_at is not None:
                    break
                await asyncio.sleep(1)
            if call is None:
                print("no call record: is the application running? (hotline status)")
                return 1
            for key in (
                "uniqueid",
                "hotline_number",
                "ivr_path",
                "queue",
                "agent_name",
                "agent_extension",
                "outcome",
                "hold_seconds",
                "talk_seconds",
                "recording_caller",
                "recording_agent",
            ):
                print(f"  {key:16} {getattr(call, key)}")
            return 0 if call.ended_at else 1
        finally:
            await carrier.close()
            await db.close()

    carrier.start()
    try:
        return asyncio.run(run())
    finally:
        carrier.stop()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hotline")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand with a description, every option with a help text.

    ``--config`` and ``-v`` are accepted before or after the subcommand
    (``hotline --config X status`` and ``hotline status --config X``).
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help=f"the configuration file (default: $HOTLINE_CONFIG, else {DEFAULT_CONFIG} "
        "in the home)",
    )
    common.add_argument(
        "--log-json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log one JSON object a line (also HOTLINE_LOG_FORMAT=json)",
    )
    common.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="where the hotline keeps its state, recordings and configuration "
        "(default: $HOTLINE_HOME, else the checkout it runs from, else /var/lib/hotline)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log debugging detail",
    )
    parser = argparse.ArgumentParser(
        prog="hotline",
        description="The citizen hotline: IVR and call centre on Asterisk. "
        "Each command below has its own --help.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"hotline {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func, summary: str, description: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, help=summary, description=description, parents=[common])
        p.set_defaults(func=func)
        return p

    p = command(
        "setup",
        cmd_setup,
        "prepare everything (Asterisk, prompts, database, model) and start",
        "Create the configuration from the example if there is none, generate secrets and "
        "prompts, find or build Asterisk, render its configuration, migrate the database, "
        "fetch the Vietnamese transcription model when none is set and its site answers, "
        "then start Asterisk and the application. setup.sh runs this.",
    )
    p.add_argument("--no-start", action="store_true", help="prepare everything but start nothing")
    p.add_argument(
        "--no-model", action="store_true", help="do not try to fetch a transcription model"
    )
    command(
        "init-config",
        cmd_init_config,
        "write the example configuration where --config points",
        "Write the documented example configuration to the configuration file's path "
        f"(default {DEFAULT_CONFIG}) unless a file is there already; edit it for your hotline.",
    )
    command(
        "permissions",
        cmd_permissions,
        "set owners and modes for the service users (as root)",
        "Create the system users of [service] where missing and set the owners and modes of "
        "var/, the recordings and the prompts: each user owns what it writes, Asterisk's "
        "group is shared for what the other reads (hotline.service runs it before each start; "
        "setup, start and pbx start do too).",
    )
    command(
        "check",
        cmd_check,
        "validate the configuration",
        "Load and validate the configuration; name every wrong key with its line, and say "
        "whether transcription has a model. Exit status 2 if the configuration is unusable.",
    )
    command(
        "start",
        cmd_start,
        "start Asterisk and the application in the background",
        "Render Asterisk's configuration, migrate the database, then start Asterisk and the "
        "application (FastAGI, AMI, panel, transcription workers) in the background.",
    )
    command(
        "stop",
        cmd_stop,
        "stop the application and Asterisk",
        "Stop the application, then Asterisk.",
    )
    p = command(
        "pbx",
        cmd_pbx,
        "start or stop Asterisk alone (as its systemd unit does)",
        "Start Asterisk alone (rendering its configuration first) and return once it is "
        "fully booted, or stop it. hotline start / stop do Asterisk and the application.",
    )
    p.add_argument(
        "action",
        choices=["start", "stop", "reopen-logs"],
        help="what to do (reopen-logs: after logrotate, as its postrotate does)",
    )
    p = command(
        "systemd",
        cmd_systemd,
        "write the systemd units (Asterisk, application, extra workers and panels)",
        "Render hotline-asterisk.service, hotline.service, hotline-worker@.service and "
        "hotline-panel@.service for this home and Python env; print them, or write them "
        "into --output (e.g. /etc/systemd/system) and with --enable reload systemd and "
        "enable and start Asterisk and the application at boot.",
    )
    p.add_argument("--output", metavar="DIR", help="write the units here instead of printing")
    p.add_argument(
        "--enable", action="store_true", help="then systemctl daemon-reload and enable --now"
    )
    p = command(
        "logrotate",
        cmd_logrotate,
        "write the logrotate configuration for the hotline's logs",
        "Render the logrotate rules for the application's log and Asterisk's messages, "
        "queue_log and security logs (weekly, compressed a rotation late so the queue_log "
        "catch-up finishes the old file); print it, or write it to --output "
        "(e.g. /etc/logrotate.d/hotline).",
    )
    p.add_argument("--output", metavar="FILE", help="write it here instead of printing")
    p = command(
        "backup",
        cmd_backup,
        "write a backup archive: database, configuration, secrets, recordings list",
        "Write var/backups/hotline-backup-<time>.tar.gz (mode 0600: it holds the secrets): "
        "a consistent copy of the database while the hotline runs (SQLite's online backup "
        "or pg_dump), the configuration and site overrides, the secrets, the list of "
        "recording files and a manifest with row counts and hashes. Prints the archive's path.",
    )
    p.add_argument("--to", metavar="DIR", help="where to write it (default var/backups)")
    p.add_argument(
        "--with-audio", action="store_true", help="include the recordings' audio (large)"
    )
    p = command(
        "restore",
        cmd_restore,
        "restore a backup archive into this home",
        "Check the archive's hashes, put back the configuration and secrets where they are "
        "missing, load the database into the one the configuration names (which must be "
        "empty unless --force), upgrade its schema and compare the row counts with the "
        "backup's. Stop the application first.",
    )
    p.add_argument("archive", help="the .tar.gz written by hotline backup")
    p.add_argument(
        "--force", action="store_true", help="replace a database that holds data, and files"
    )
    p = command(
        "status",
        cmd_status,
        "show what runs, whether it is ready, and the queues",
        "Show whether Asterisk and the application run, the trunk's registration (when "
        "it registers), the application's readiness "
        "(database, Redis, AMI, FastAGI, transcription workers and backlog, as /readyz "
        "answers) and, per queue of the shift on duty, members by state and callers "
        "waiting. Exit status 3 unless everything is running and ready (and the trunk "
        "registered).",
    )
    p.add_argument("--json", action="store_true", help="print it as JSON, for scripts")
    p.add_argument(
        "--phones", action="store_true", help="also list the registered phones (pjsip contacts)"
    )
    command(
        "render",
        cmd_render,
        "write Asterisk's configuration from the hotline's",
        "Write Asterisk's configuration files from the hotline configuration, without "
        "applying them (see reload).",
    )
    command(
        "reload",
        cmd_reload,
        "render and apply to the running Asterisk (calls stay up)",
        "Render Asterisk's configuration and reload only the modules whose files changed; "
        "calls stay up. Changed hotlines, agents or shifts also need stop and start.",
    )
    command(
        "migrate",
        cmd_migrate,
        "upgrade the database schema",
        "Upgrade the database to the newest schema.",
    )
    command(
        "run",
        cmd_run,
        "run the application in the foreground",
        "Run the application (FastAGI, AMI, panel, transcription workers) in the foreground "
        "until SIGTERM or Ctrl-C: for a service manager.",
    )
    p = command(
        "create-admin",
        cmd_create_admin,
        "create an admin account for the web panel",
        "Create an admin account; admins then create every other account in the panel.",
    )
    p.add_argument("username", help="the sign-in name")
    p.add_argument("--name", help="the name shown in the panel (default: the user name)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p = command(
        "panel",
        cmd_panel,
        "run one more web panel process (same Redis and database)",
        "Run one more web panel process on another port, sharing Redis and the database, for "
        "more agents' browsers behind one address.",
    )
    p.add_argument("--port", type=int, required=True, help="the TCP port to serve on")
    p = command(
        "transcribe-worker",
        cmd_transcribe_worker,
        "run one transcription worker (same Redis and database)",
        "Run one transcription worker process; the application starts [recordings] workers "
        "itself, run more here or on other machines.",
    )
    p.add_argument("--model", help="Vosk model folder (default: [recordings] vosk_model)")
    p = sub.add_parser(
        "kb",
        help="the procedures knowledge base",
        description="The procedures knowledge base agents answer level-1 questions from.",
        parents=[common],
    )
    kbsub = p.add_subparsers(dest="kb_command", required=True, metavar="COMMAND")
    p = kbsub.add_parser(
        "load-examples",
        help="add the starter articles (marked as examples)",
        description="Add the starter set of procedure articles (birth and death "
        "registration, residence, land-use certificate, ...), each marked as an example "
        "to check against the city's rules. Articles already there are left alone.",
        parents=[common],
    )
    p.set_defaults(func=cmd_kb)
    p = sub.add_parser(
        "reports",
        help="the leaders' periodic reports",
        description="The leaders' reports (XLSX and PDF), written on the schedule of "
        "[periodic_reports] by the running hotline, or here by hand.",
        parents=[common],
    )
    rpsub = p.add_subparsers(dest="reports_command", required=True, metavar="COMMAND")
    p = rpsub.add_parser(
        "generate",
        help="write a period's report now",
        description="Write the daily, weekly or monthly report holding --day (default: the "
        "last one that is over) as XLSX and PDF under <state_dir>/reports, listed in the "
        "panel. A period already stored is left as it is.",
        parents=[common],
    )
    p.add_argument(
        "--kind",
        choices=["daily", "weekly", "monthly"],
        default="weekly",
        help="which report: the day's, the week's or the month's (default: weekly)",
    )
    p.add_argument("--day", help="a day of the period, YYYY-MM-DD")
    p.add_argument(
        "--send", action="store_true", help="hand it to the email sender for the recipients"
    )
    p.set_defaults(func=cmd_reports)
    p = sub.add_parser(
        "agencies",
        help="the agency directory as CSV: export, import",
        description="Export the agency directory as CSV, or import one (rows matched by "
        "code; a dry run lists the changes unless --apply).",
        parents=[common],
    )
    asub = p.add_subparsers(dest="agencies_command", required=True, metavar="COMMAND")
    p = asub.add_parser(
        "export",
        help="write the directory as CSV",
        description="Write the directory as CSV (UTF-8), parents before their sub-agencies.",
        parents=[common],
    )
    p.add_argument("file", nargs="?", help="where to write it (default: standard output)")
    p.set_defaults(func=cmd_agencies)
    p = asub.add_parser(
        "import",
        help="import a CSV (dry run unless --apply)",
        description="List what importing the CSV would add and change, and the errors "
        "(line and field); with --apply, write it all (nothing when there is an error).",
        parents=[common],
    )
    p.add_argument("file", help="the CSV file (- for standard input)")
    p.add_argument("--apply", action="store_true", help="write the changes")
    p.set_defaults(func=cmd_agencies)
    p = sub.add_parser(
        "open311-key",
        help="Open311: issue, revoke or list API keys",
        description="The API keys Open311 clients (city apps, partners' sites) file reports "
        "with. Reading published reports needs no key.",
        parents=[common],
    )
    ksub = p.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    p = ksub.add_parser(
        "issue",
        help="issue a key (shown once)",
        description="Issue a key and print it once; only its digest is kept.",
        parents=[common],
    )
    p.add_argument("name", help="who the key is for (e.g. the app's name)")
    p.set_defaults(func=cmd_open311_key)
    p = ksub.add_parser(
        "revoke",
        help="revoke a key",
        description="Revoke a key: it is refused from now on (reports it made keep naming it).",
        parents=[common],
    )
    p.add_argument("key_id", help="the key's id (the part before the dot, as `list` shows)")
    p.set_defaults(func=cmd_open311_key)
    p = ksub.add_parser(
        "list", help="list every key", description="List every key.", parents=[common]
    )
    p.set_defaults(func=cmd_open311_key)
    p = sub.add_parser(
        "recordings",
        help="recordings: retention",
        description="Recordings: retention.",
        parents=[common],
    )
    rsub = p.add_subparsers(dest="recordings_command", required=True, metavar="COMMAND")
    p = rsub.add_parser(
        "purge",
        help="delete audio older than [recordings] keep_audio_days",
        description="Delete audio older than [recordings] keep_audio_days; call records, "
        "the audit log and (by default) transcripts are kept.",
        parents=[common],
    )
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    p.set_defaults(func=cmd_recordings_purge)
    p = sub.add_parser(
        "model",
        help="the transcription model: fetch",
        description="The Vosk model that transcribes calls.",
        parents=[common],
    )
    msub = p.add_subparsers(dest="model_command", required=True, metavar="COMMAND")
    p = msub.add_parser(
        "fetch",
        help="download, check and configure a Vosk model",
        description="Download a Vosk model with a progress bar, check its size and MD5 against "
        "the model list, unpack it under <state_dir>/models, check that Vosk loads it, and set "
        "[recordings] vosk_model in the configuration file. Exit status 1 when the site "
        "cannot be reached, 2 for any other failure.",
        parents=[common],
    )
    p.add_argument(
        "--name",
        default=None,
        help="the model (default vosk-model-small-vn-0.4; the larger vosk-model-vn-0.4 is "
        "more accurate and slower)",
    )
    p.add_argument("--dir", help="where models are kept (default <state_dir>/models)")
    p.add_argument(
        "--list-url",
        help="the model list (default: [recordings] model_list_url, else the one vosk's own "
        "downloader reads)",
    )
    p.add_argument(
        "--no-config",
        action="store_true",
        help="fetch only; leave [recordings] vosk_model as it is",
    )
    p.set_defaults(func=cmd_model_fetch)
    p = command(
        "prompts",
        cmd_prompts,
        "generate the IVR prompts",
        "Generate the IVR prompts from the configuration's texts with espeak-ng (custom "
        "recordings in config/prompts win).",
    )
    p.add_argument("--force", action="store_true", help="generate again even if up to date")
    p = command(
        "test-call",
        cmd_test_call,
        "place a real SIP call from a simulated carrier (127.0.0.2)",
        "Place one real SIP call into the hotline from a simulated carrier on 127.0.0.2 and "
        "print the call record it left.",
    )
    p.add_argument("--number", help="hotline number (default: the first hotline)")
    p.add_argument("--digits", default="1", help="keys the caller presses (default 1)")
    p.add_argument("--caller", default="0900000001", help="the caller's number")
    p.add_argument("--hold", type=int, default=12, help="seconds the caller stays on")
    p.add_argument(
        "--simulate-agents",
        action="store_true",
        help="register every agent from 127.0.0.3 as an auto-answering phone "
        "(only where no real softphones are registered: it takes their place)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; --config and -v default here, not in the parsers: their
    actions are shared by every subparser, and a default set on one would
    overwrite a value given before the subcommand."""
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.home = getattr(args, "home", None)
    args.log_json = getattr(args, "log_json", False)
    args.verbose = getattr(args, "verbose", False)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging(args)
    if args.home:
        # in the environment, so that the processes we start find the same home
        os.environ["HOTLINE_HOME"] = str(Path(args.home).resolve())
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"hotline: {e}", file=sys.stderr)
        return 2
    except PbxError as e:
        print(f"hotline: Asterisk: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
