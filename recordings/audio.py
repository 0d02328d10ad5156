"""Reading one side of a recording for the recogniser (blocking: run it in a worker).

Asterisk writes 8 kHz mono 16-bit WAV; Vosk models usually expect 16 kHz.
Such a file is read as it is and handed to Vosk at its own rate (the
recogniser resamples to the model's rate itself, which costs less than an
ffmpeg process per side); anything else (another format, stereo, a damaged
header) is decoded by ffmpeg to 16-bit mono PCM at the model's rate, ffmpeg
naming what is wrong with a corrupt file.  Then the samples are checked: a
side with no samples, or one that is silent, is told apart from speech.
"""

from __future__ import annotations

import math
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# below this RMS level (dBFS) a side is taken as silent (telephone line noise
# sits around -60 dBFS; speech at -30 to -10)
SILENCE_DBFS = -55.0


class UnusableAudio(Exception):
    """This recording cannot give a transcript; ``str(e)`` says why (shown to admins)."""


@dataclass(frozen=True)
class Side:
    path: Path
    pcm: bytes  # signed 16-bit little-endian mono at ``rate``
    rate: int
    seconds: float
    rms_dbfs: float

    @property
    def silent(self) -> bool:
        return self.rms_dbfs < SILENCE_DBFS


def _dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def read_side(path: Path, rate: int, *, timeout: float = 600) -> Side:
    """Decode ``path`` to mono PCM at ``rate`` Hz; :class:`UnusableAudio` if it holds none."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnusableAudio(f"{path.name}: file missing") from None
    if size == 0:
        raise UnusableAudio(f"{path.name}: empty file (0 bytes)")
    plain = _plain_wav(path)
    if plain is not None:
        pcm, file_rate = plain
        return _side(path, pcm, file_rate)
    return _side(path, _ffmpeg_pcm(path, rate, timeout), rate)


def _plain_wav(path: Path) -> tuple[bytes, int] | None:
    """(PCM, rate) of a mono 16-bit PCM WAV at 8 to 48 kHz; None for anything else."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                return None
            file_rate = w.getframerate()
            if not 8000 <= file_rate <= 48000:
                return None
            pcm = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError, RuntimeError, ValueError):
        # (the wave module raises a bare RuntimeError on some damaged headers)
        return None  # ffmpeg says what is wrong
    if len(pcm) < 2:
        return None
    return pcm, file_rate


def _side(path: Path, pcm: bytes, rate: int) -> Side:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    return Side(path, pcm, rate, samples.size / rate, _dbfs(samples))


def _ffmpeg_pcm(path: Path, rate: int, timeout: float) -> bytes:
    proc = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "pipe:1",
        ],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"ffmpeg exit status {proc.returncode}"
        why = why.replace(str(path), path.name)
        raise UnusableAudio(f"{path.name}: corrupt or not audio ({why})")
    pcm = proc.stdout
    if len(pcm) < 2:
        raise UnusableAudio(f"{path.name}: no audio in the file")
    return pcm
