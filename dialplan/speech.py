"""Free text spoken at run time: espeak-ng, made into what Asterisk plays, cached on disk.

The IVR's fixed words are prompts made at set-up (:mod:`dialplan.prompts`).  Some text
is only known during a call (an agency's name, which admins may change; an agency's
answer to a report): :class:`SpeechCache` speaks it once and keeps the file.

- The file is named by a hash of (text, language, voice, speed): the same text is never
  spoken twice, and a changed text is a new file.
- It is made like the prompts: 8 kHz 16-bit mono wav plus A-law and mu-law twins, so
  Asterisk plays it without transcoding.  espeak-ng and sox run as child processes:
  the event loop never waits on them; at most ``concurrency`` run at once.
- The text goes to espeak-ng on its standard input, never as an argument (a text
  starting with "-" is not an option) and without markup.
- A file is written under a temporary name and renamed, twins first and the wav last:
  a file that exists is whole.  Two calls asking for the same text at once share one
  synthesis.
- Files unused for ``keep_days`` are removed, at most once a day, in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from dialplan.prompts import VOICES

log = logging.getLogger(__name__)

SPEED = 150  # words per minute, as the prompts
# The formats written for every text, the wav last (its presence means "done").
TWINS = (("alaw", "al"), ("ulaw", "ul"))
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")
PRUNE_EVERY_SECONDS = 24 * 3600


class SpeechError(Exception):
    """The text could not be spoken (espeak-ng or sox missing or failing)."""


def clean(text: str) -> str:
    """The text as spoken: no control characters, one space between words."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def voice_of(language: str) -> str:
    return VOICES.get(language, language)


def cache_key(text: str, language: str, voice: str | None = None) -> str:
    """The file name (without extension) of ``text`` spoken in ``language`` by ``voice``."""
    voice = voice or voice_of(language)
    material = "\x1f".join((clean(text), language, voice, str(SPEED)))
    return hashlib.sha256(material.encode()).hexdigest()


class SpeechCache:
    """Speaks free text into ``root`` (a folder Asterisk sees at the same path)."""

    def __init__(self, root: Path, *, concurrency: int = 2, keep_days: int = 90) -> None:
        self.root = root
        self.keep_days = keep_days
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, asyncio.Task[str]] = {}
        self._pruned_at = 0.0
        self._prune_task: asyncio.Task[int] | None = None

    def path(self, key: str) -> Path:
        """Where the wav of ``key`` is (two-letter folders keep listings short)."""
        return self.root / key[:2] / f"{key}.wav"

    async def speak(self, text: str, language: str) -> str:
        """The path (without extension, as Asterisk plays it) of ``text`` spoken.

        Made on first use, reused after.  SpeechError when it cannot be made.
        """
        text = clean(text)
        if not text:
            raise SpeechError("nothing to say")
        key = cache_key(text, language)
        wav = self.path(key)
        if await asyncio.to_thread(_touch_if_whole, wav):
            self._maybe_prune()
            return str(wav.with_suffix(""))
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._make(text, language, wav), name=f"speak-{key[:8]}")
            self._running[key] = task
            task.add_done_callback(lambda _t: self._running.pop(key, None))
        # shield: one caller hanging up must not cancel what another waits for
        return await asyncio.shield(task)

    async def _make(self, text: str, language: str, wav: Path) -> str:
        async with self._slots:
            started = time.monotonic()
            await asyncio.to_thread(wav.parent.mkdir, parents=True, exist_ok=True)
            tmp = wav.with_name(f".{wav.stem}.{uuid.uuid4().hex[:8]}")
            raw = tmp.with_suffix(".raw.wav")
            made: list[Path] = []
            try:
                await _run(
                    ["espeak-ng", "-v", voice_of(language), "-s", str(SPEED), "--stdin"],
                    stdin=text.encode(),
                    out=raw,
                )
                final_wav = tmp.with_suffix(".wav")
                await _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(final_wav)])
                made.append(final_wav)
                for ext, kind in TWINS:
                    twin = tmp.with_suffix(f".{ext}")
                    await _run(
                        ["sox", str(final_wav), "-t", kind, "-r", "8000", "-c", "1", str(twin)]
                    )
                    made.append(twin)
                # twins first, the wav last: a wav that exists is complete
                for twin in made[1:]:
                    os.replace(twin, wav.with_suffix(twin.suffix))
                os.replace(final_wav, wav)
            finally:
                for leftover in (raw, *made):
                    leftover.unlink(missing_ok=True)
            log.info(
                "spoke %d characters (%s) in %.0f ms",
                len(text),
                language,
                (time.monotonic() - started) * 1000,
            )
        self._maybe_prune()
        return str(wav.with_suffix(""))

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        if self._prune_task is not None and not self._prune_task.done():
            return
        self._pruned_at = now
        self._prune_task = asyncio.create_task(
            asyncio.to_thread(prune, self.root, self.keep_days), name="speech-prune"
        )

    async def close(self) -> None:
        """Wait for the files being made (the application's stop)."""
        tasks = list(self._running.values())
        if self._prune_task is not None:
            tasks.append(self._prune_task)  # type: ignore[arg-type]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _touch_if_whole(wav: Path) -> bool:
    """True if ``wav`` and its twins exist; marks them used (for :func:`prune`)."""
    if not (wav.is_file() and all(wav.with_suffix(f".{e}").is_file() for e, _ in TWINS)):
        return False
    try:
        os.utime(wav)
    except OSError:
        pass
    return True


def prune(root: Path, keep_days: int) -> int:
    """Remove the files whose wav was not used for ``keep_days``; how many texts went."""
    if not root.is_dir():
        return 0
    limit = time.time() - keep_days * 86400
    removed = 0
    for wav in root.glob("*/*.wav"):
        try:
            if wav.stat().st_mtime >= limit:
                continue
            wav.unlink()
            for ext, _ in TWINS:
                wav.with_suffix(f".{ext}").unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    if removed:
        log.info("removed %d spoken texts unused for %d days", removed, keep_days)
    return removed


async def _run(cmd: list[str], *, stdin: bytes | None = None, out: Path | None = None) -> None:
    """Run a child process (espeak-ng, sox) without blocking the loop; SpeechError if it fails."""
    if shutil.which(cmd[0]) is None:
        raise SpeechError(f"{cmd[0]} is not installed")
    if out is not None:
        cmd = [*cmd[:1], "-w", str(out), *cmd[1:]]
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise SpeechError(
            f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')[:200]}"
        )
