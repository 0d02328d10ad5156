"""`hotline model fetch`: download, check, unpack and configure a Vosk model.

The model's site is played by an HTTP server on 127.0.0.1 that serves a model
list in vosk's format and a zip of the packaged (Korean) test model, so the
fetched model is a real one that Vosk must load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.settings import load_settings
from recordings.model_fetch import FetchError, fetch
from tests.helpers import EXAMPLE, make_home
from tests.recordings.conftest import MODEL

NAME = "vosk-model-test-ko"


class Site:
    """The model's site: ``model-list.json`` and the zips, with a log of requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                site.requests.append(self.path)

        self.server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, entries: list[dict[str, object]]) -> str:
        (self.root / "model-list.json").write_text(json.dumps(entries))
        return self.url + "model-list.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def zip_model(path: Path, top: str) -> dict[str, object]:
    """The test model zipped as the real ones are (one top folder); its list entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(MODEL.rglob("*")):
            if f.is_file():
                z.write(f, f"{top}/{f.relative_to(MODEL)}")
    digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return {"name": top, "lang": "ko", "md5": digest, "size": path.stat().st_size,
            "type": "small", "obsolete": "false", "url": ""}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    s = Site(root)
    s.entry = zip_model(root / f"{NAME}.zip", NAME)  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.close()


def hotline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def fetch_model(list_url: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``hotline model fetch`` of the test model, in a process of its own."""
    return hotline(
        "model", "fetch", "--name", NAME, "--list-url", list_url, "--config", str(config),
        cwd=config.parent.parent,
    )  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_checks_unpacks_and_configures_the_model(site: Site, tmp_path: Path) -> None:
    config = make_home(tmp_path)
    before = config.read_text()
    list_url = site.publish([{**site.entry, "name": "other-model"}, site.entry])  # type: ignore[attr-defined]

    done = fetch_model(list_url, config)
    assert done.returncode == 0, done.stderr
    target = tmp_path / "var" / "models" / NAME
    assert f"model {NAME} checked and ready in {target}" in done.stdout
    assert "100%" in done.stderr  # the progress bar
    assert (target / "am" / "final.mdl").read_bytes() == (MODEL / "am" / "final.mdl").read_bytes()
    assert [p.name for p in target.parent.iterdir()] == [NAME]  # no .part, no temporary folder

    # the key is set, every comment of the operator's file kept
    after = config.read_text()
    assert f'vosk_model = "{target}"' in after
    assert [line for line in before.splitlines() if line.startswith("#")] == [
        line for line in after.splitlines() if line.startswith("#")
    ]
    assert load_settings(config, env={}).vosk_model == target
    check = hotline("check", "--config", str(config), cwd=tmp_path)
    assert f"transcription: model {target}" in check.stdout

    # a second fetch finds it in place and downloads nothing
    site.requests.clear()
    again = fetch_model(list_url, config)
    assert again.returncode == 0 and site.requests == []


def test_a_wrong_checksum_leaves_nothing_behind(site: Site, tmp_path: Path) -> None:
    config = make_home(tmp_path)
    list_url = site.publish([{**site.entry, "md5": "0" * 32}])  # type: ignore[attr-defined]
    done = fetch_model(list_url, config)
    assert done.returncode == 2
    assert f"hotline model fetch: {NAME}: MD5 " in done.stderr
    assert "differs from the list's 000000" in done.stderr
    assert list((tmp_path / "var" / "models").iterdir()) == []
    assert config.read_text() == EXAMPLE.read_text()


def test_an_unknown_model_is_named_with_the_vietnamese_ones(site: Site, tmp_path: Path) -> None:
    list_url = site.publish([site.entry])  # type: ignore[attr-defined]
    with pytest.raises(
        FetchError, match="no model named 'vosk-model-xx' .*vosk-model-small-vn-0.4"
    ):
        fetch("vosk-model-xx", tmp_path, list_url=list_url)


def test_an_unreachable_site_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    config = make_home(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/model-list.json"
    done = hotline("model", "fetch", "--list-url", url, "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("hotline model fetch: cannot reach 127.0.0.1:")
    assert config.read_text() == EXAMPLE.read_text()


def test_setup_says_so_in_one_line_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline import cli

    url = f"http://127.0.0.1:{closed_port()}/model-list.json"
    config = make_home(tmp_path, EXAMPLE.read_text().replace(
        "[recordings]\n", f'[recordings]\nmodel_list_url = "{url}"\n', 1))  # fmt: skip
    settings = load_settings(config, env={})
    args = cli.parse_args(["setup", "--config", str(config)])
    assert cli._fetch_model_or_say(settings, args) is settings
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Transcription model: fetching vosk-model-small-vn-0.4 (hotline model fetch)"
    assert out[1].startswith("Transcription model: not fetched: cannot reach 127.0.0.1:")
    assert len(out) == 2


def test_a_zip_reaching_outside_its_folder_is_refused(site: Site, tmp_path: Path) -> None:
    evil = site.root / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("evil/../../outside.txt", "x")
    digest = hashlib.md5(evil.read_bytes(), usedforsecurity=False).hexdigest()
    entry = {
        "name": "evil",
        "md5": digest,
        "size": evil.stat().st_size,
        "url": site.url + "evil.zip",
    }
    list_url = site.publish([entry])
    with pytest.raises(FetchError, match="outside its folder"):
        fetch("evil", tmp_path / "models", list_url=list_url)
    assert not (tmp_path / "outside.txt").exists()
    assert list((tmp_path / "models").iterdir()) == []
