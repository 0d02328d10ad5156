"""The `hotline` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from pathlib import Path

from core.settings import DEFAULT_CONFIG, ConfigError, load_settings
from hotline.pbx import PbxError

log = logging.getLogger("hotline")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)


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


def _ensure_config(args: argparse.Namespace) -> None:
    path = _config(args) or DEFAULT_CONFIG
    example = path.parent / "hotline.example.toml"
    if not path.exists() and example.exists():
        path.write_text(example.read_text())
        print(f"created {path} from {example.name}: edit it for your hotline")


def cmd_setup(args: argparse.Namespace) -> int:
    from hotline import system

    _ensure_config(args)
    settings, inst = system.prepare(_config(args))
    if args.no_start:
        return 0
    return _start(settings, inst, args)


def _start(settings, inst, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from hotline import system

    if not inst.is_running():
        print("Starting Asterisk ...")
        inst.start()
    print(
        f"Asterisk {inst.version().strip()} running (SIP {settings.asterisk.bind_address}:"
        f"{settings.asterisk.sip_port}, AMI {settings.asterisk.ami_port})"
    )
    pid = system.start_app(settings, _config(args))
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
    from recordings.transcribe import model_problem

    problem = model_problem(settings.vosk_model)
    if problem:
        print(f"Transcription: {problem}")
    else:
        print(f"Transcription: {settings.recordings.workers} workers, model {settings.vosk_model}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    system.write_config(settings, inst)
    system.migrate(settings)
    return _start(settings, inst, args)


def cmd_stop(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    if system.stop_app(settings):
        print("application stopped")
    inst = system.instance(settings, system.asterisk_root(settings))
    if inst.is_running():
        inst.stop()
        print("Asterisk stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hotline import system

    settings = load_settings(_config(args))
    inst = system.instance(settings, system.asterisk_root(settings))
    pid = system.app_pid(settings)
    running = inst.is_running()
    print(f"Asterisk: {'running ' + inst.version().strip() if running else 'stopped'}")
    print(f"application: {f'running (pid {pid})' if pid else 'stopped'}")
    if running:
        ansi = re.compile(r"\x1b\[[0-9;]*m")  # app_queue colours its output
        print(ansi.sub("", inst.cli("queue show")))
        print(ansi.sub("", inst.cli("pjsip show contacts")))
    return 0 if running and pid else 3


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
    from hotline.app import Application

    settings = load_settings(_config(args))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with Application(settings):
            await stop.wait()

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    """One more panel process (same Redis and database) for more agents' browsers."""
    from hotline.app import PanelOnly

    settings = load_settings(_config(args))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with PanelOnly(settings, port=args.port):
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


def cmd_transcribe_worker(args: argparse.Namespace) -> int:
    """One transcription worker process (the application starts some; run more anywhere)."""
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
        try:
            await task
        except asyncio.CancelledError:
            pass
        except ModelMissing as e:
            print(f"hotline transcribe-worker: not starting: {e}", file=sys.stderr)
            return 2
        finally:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__)
    parser.add_argument("--config", help=f"configuration file (default {DEFAULT_CONFIG})")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup", help="install what is missing, prepare everything and start")
    p.add_argument("--no-start", action="store_true")
    p.set_defaults(func=cmd_setup)
    for name, func, text in (
        ("check", cmd_check, "validate the configuration"),
        ("start", cmd_start, "start Asterisk and the application in the background"),
        ("stop", cmd_stop, "stop the application and Asterisk"),
        ("status", cmd_status, "show what runs, queues and registered phones"),
        ("render", cmd_render, "write Asterisk's configuration from config/"),
        ("reload", cmd_reload, "render and apply to the running Asterisk (calls stay up)"),
        ("migrate", cmd_migrate, "upgrade the database schema"),
        ("run", cmd_run, "run the application in the foreground"),
    ):
        sub.add_parser(name, help=text).set_defaults(func=func)
    p = sub.add_parser("create-admin", help="create an admin account for the web panel")
    p.add_argument("username")
    p.add_argument("--name", help="display name")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(func=cmd_create_admin)
    p = sub.add_parser("panel", help="run one more web panel process (same Redis and database)")
    p.add_argument("--port", type=int, required=True)
    p.set_defaults(func=cmd_panel)
    p = sub.add_parser(
        "transcribe-worker", help="run one transcription worker (same Redis and database)"
    )
    p.add_argument("--model", help="Vosk model directory (default: [recordings] vosk_model)")
    p.set_defaults(func=cmd_transcribe_worker)
    p = sub.add_parser("recordings", help="recordings: retention")
    rsub = p.add_subparsers(dest="recordings_command", required=True)
    p = rsub.add_parser("purge", help="delete audio older than [recordings] keep_audio_days")
    p.add_argument("--dry-run", action="store_true", help="list what would go; delete nothing")
    p.set_defaults(func=cmd_recordings_purge)
    p = sub.add_parser("prompts", help="generate the IVR prompts")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_prompts)
    p = sub.add_parser(
        "test-call", help="place a real SIP call from a simulated carrier (127.0.0.2)"
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
    p.set_defaults(func=cmd_test_call)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
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
