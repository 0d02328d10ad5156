"""The `hotline` command as a person meets it: help, version, where --config goes."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from hotline import cli
from tests.helpers import EXAMPLE, make_home


def _subparsers(parser: argparse.ArgumentParser, path: str = "hotline"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _subparsers(sub, f"{path} {name}")


def test_every_subcommand_has_a_description_and_every_option_a_help() -> None:
    parser = cli.build_parser()
    commands = list(_subparsers(parser))
    assert len(commands) >= 18
    undocumented = []
    for path, sub in [("hotline", parser), *commands]:
        if not sub.description:
            undocumented.append(f"{path}: no description")
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {c.dest for c in action._choices_actions}
                undocumented += [
                    f"{path} {n}: no summary" for n in action.choices if n not in listed
                ]
                undocumented += [
                    f"{path} {c.dest}: no summary" for c in action._choices_actions if not c.help
                ]
            elif not action.help or action.help == argparse.SUPPRESS:
                undocumented.append(
                    f"{path} {'/'.join(action.option_strings) or action.dest}: no help"
                )
    assert undocumented == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"hotline {cli._version()}"
    assert cli._version()[0].isdigit()


def test_config_before_or_after_the_subcommand() -> None:
    parse = cli.parse_args
    assert parse(["--config", "a.toml", "check"]).config == "a.toml"
    assert parse(["check", "--config", "b.toml"]).config == "b.toml"
    assert parse(["recordings", "purge", "--config", "c.toml", "--dry-run"]).config == "c.toml"
    assert parse(["-v", "check"]).verbose is True
    assert parse(["check"]).config is None
    args = parse(["model", "fetch", "-v"])
    assert args.verbose is True and args.config is None


def test_check_names_the_key_and_line_in_a_real_process(tmp_path) -> None:
    text = EXAMPLE.read_text().replace("max_wait_seconds = 600", "max_wait_secs = 600", 1)
    config = make_home(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = text.splitlines()
    line = next(n for n, s in enumerate(lines, start=1) if s.startswith("max_wait_secs"))
    assert (
        f"line {line}: queues.max_wait_secs: unknown key (did you mean 'max_wait_seconds'?)"
        in done.stderr
    )


def test_init_config_writes_the_example_once(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "etc" / "hotline.toml"
    assert cli.main(["init-config", "--config", str(config)]) == 0
    assert config.read_text() == EXAMPLE.read_text()
    config.write_text(config.read_text() + "\n# mine\n")
    assert cli.main(["init-config", "--config", str(config)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert config.read_text().endswith("# mine\n")
