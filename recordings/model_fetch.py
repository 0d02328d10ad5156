"""Fetching a Vosk model for transcription: ``hotline model fetch``.

Calls are recorded with or without a model; with one they are also
transcribed.  This fetches a model the way vosk's own downloader does (its
model list at ``vosk.MODEL_LIST_URL``, a zip beside it, a progress bar), and
then does what that downloader does not:

1. look the model up in the list, which gives its size and MD5;
2. download to a ``.part`` file beside the target, with a progress bar;
3. check the size and the MD5 before anything is unpacked;
4. unpack into a temporary folder, refusing any member that would land
   outside it, and move the model folder into place in one rename;
5. check that the folder is a model (``am/final.mdl``, ``conf/``) and that
   Vosk loads it.

Nothing is left half-done: a failure at any step removes what it wrote, and
a model already in place is not fetched again.  A site that cannot be reached
raises :class:`Unreachable`, whose message is one line (``hotline setup`` says
it and goes on).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from recordings.transcribe import model_problem

log = logging.getLogger(__name__)

# The Vietnamese models the project knows (README: "Transcription").  The small
# one is the default: faster than real time on one core of a small server.
DEFAULT_MODEL = "vosk-model-small-vn-0.4"
VIETNAMESE_MODELS = ("vosk-model-small-vn-0.4", "vosk-model-vn-0.4")
CHUNK = 1 << 16


def default_list_url() -> str:
    """Where vosk's own downloader looks for models."""
    import vosk

    return str(vosk.MODEL_LIST_URL)


class FetchError(Exception):
    """The model could not be fetched; ``str(e)`` is one line saying why."""


class Unreachable(FetchError):
    """The model's site did not answer (no network, a firewall, a proxy)."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    url: str
    size: int | None
    md5: str | None


def _open(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "hotline-model-fetch"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) only
    except urllib.error.HTTPError as e:
        raise FetchError(f"{url} answered {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        host = urlsplit(url).netloc or url
        raise Unreachable(f"cannot reach {host} ({reason})") from None


def model_info(name: str, list_url: str, *, timeout: float = 15) -> ModelInfo:
    """The list's entry for ``name``: where it is, its size and MD5."""
    if urlsplit(list_url).scheme not in ("http", "https"):
        raise FetchError(f"the model list must be an http(s) address, not {list_url!r}")
    with _open(list_url, timeout) as response:
        try:
            models = json.loads(response.read())
        except (TimeoutError, ValueError) as e:
            raise FetchError(f"the model list at {list_url} could not be read ({e})") from None
    if not isinstance(models, list):
        raise FetchError(f"the model list at {list_url} is not a list of models")
    for entry in models:
        if isinstance(entry, dict) and entry.get("name") == name:
            size = entry.get("size")
            md5 = entry.get("md5")
            return ModelInfo(
                name=name,
                url=str(entry.get("url") or urljoin(list_url, f"{name}.zip")),
                size=int(size) if str(size or "").isdigit() else None,
                md5=str(md5).lower() if md5 else None,
            )
    raise FetchError(
        f"no model named {name!r} in {list_url} (Vietnamese: {', '.join(VIETNAMESE_MODELS)})"
    )


Progress = Callable[[int, int | None], None]


def tqdm_progress(name: str) -> Progress:
    """A progress bar on standard error (tqdm, as vosk's own downloader shows)."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int | None) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, leave=True
            )
        b = bar["bar"]
        b.update(done - b.n)
        if total is not None and done >= total:
            b.close()

    return update


def download(info: ModelInfo, part: Path, progress: Progress | None, *, timeout: float) -> None:
    """The zip to ``part``, checked against the list's size and MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    done = 0
    with _open(info.url, timeout) as response, part.open("wb") as out:
        length = response.headers.get("Content-Length")
        total = info.size or (int(length) if length and length.isdigit() else None)
        while True:
            try:
                chunk = response.read(CHUNK)
            except (TimeoutError, OSError) as e:
                raise Unreachable(f"the download of {info.name} broke off ({e})") from None
            if not chunk:
                break
            out.write(chunk)
            md5.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if info.size is not None and done != info.size:
        raise FetchError(f"{info.name}: got {done} bytes, the list says {info.size}")
    if info.md5 is not None and md5.hexdigest() != info.md5:
        raise FetchError(f"{info.name}: MD5 {md5.hexdigest()} differs from the list's {info.md5}")


def _unpack(zip_path: Path, into: Path) -> Path:
    """Unpack safely; return the folder that holds the model."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            root = into.resolve()
            for member in z.infolist():
                target = (into / member.filename).resolve()
                if not target.is_relative_to(root) or member.filename.startswith("/"):
                    raise FetchError(f"the zip holds {member.filename!r}, outside its folder")
            z.extractall(into)
    except zipfile.BadZipFile as e:
        raise FetchError(f"{zip_path.name} is not a zip file ({e})") from None
    candidates = [into, *sorted(p for p in into.rglob("*") if p.is_dir())]
    for folder in candidates:
        if model_problem(folder) is None:
            return folder
    raise FetchError("the zip holds no Vosk model (no am/final.mdl and conf/)")


def check_loads(path: Path) -> None:
    """Vosk itself loads the model (a second or two): a truncated graph fails here."""
    import vosk

    vosk.SetLogLevel(-1)
    try:
        vosk.Model(str(path))
    except Exception as e:  # noqa: BLE001 - vosk raises a bare Exception
        raise FetchError(f"Vosk cannot load the model at {path} ({e})") from None


def fetch(
    name: str,
    models_dir: Path,
    *,
    list_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 30,
) -> Path:
    """The model ``name`` under ``models_dir``, fetched and checked if not there yet."""
    target = models_dir / name
    if model_problem(target) is None:
        return target
    info = model_info(name, list_url or default_list_url(), timeout=timeout)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=models_dir) as tmp:
        work = Path(tmp)
        part = work / f"{name}.zip.part"
        download(info, part, progress, timeout=timeout)
        found = _unpack(part, work / "unpacked")
        part.unlink()
        check_loads(found)
        if target.exists():  # a broken earlier attempt, or not a model
            shutil.rmtree(target)
        found.rename(target)
    log.info("Vosk model %s in %s", name, target)
    return target
