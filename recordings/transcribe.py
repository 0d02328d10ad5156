"""Speech to text with Vosk: each side with word timings, merged in time order.

Blocking and CPU-bound: a worker process runs it in a thread (Vosk releases
the GIL while it decodes, so the worker's heartbeat keeps going).  The model
is loaded once per worker.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recordings.audio import Side, UnusableAudio, read_side

CITIZEN = "citizen"
AGENT = "agent"
# bytes handed to the recogniser at a time (0.25 s at 16 kHz)
CHUNK_BYTES = 8000
DEFAULT_RATE = 16000


class ModelMissing(Exception):
    """No usable Vosk model where the configuration says; ``str(e)`` says what to do."""


def model_problem(path: Path | None) -> str | None:
    """What is wrong with the configured model path, or None if it looks usable."""
    hint = (
        "download vosk-model-small-vn-0.4 (or vosk-model-vn-0.4) from "
        "https://alphacephei.com/vosk/models and unzip it there"
    )
    if path is None:
        return (
            "[recordings] vosk_model is not set: calls are recorded and queued but not "
            f"transcribed; {hint} and set the key"
        )
    if not path.is_dir():
        return (
            f"[recordings] vosk_model: no Vosk model at {path}: calls are recorded and "
            f"queued, transcribed once it is there; {hint}"
        )
    if not (path / "am" / "final.mdl").exists() or not (path / "conf").is_dir():
        return (
            f"[recordings] vosk_model: {path} is not a Vosk model (no am/final.mdl "
            f"or conf/); {hint}"
        )
    return None


def model_sample_rate(path: Path) -> int:
    """The sample rate the model was trained on (conf/mfcc.conf ``--sample-frequency``)."""
    conf = path / "conf" / "mfcc.conf"
    try:
        m = re.search(r"^\s*--sample-frequency\s*=\s*(\d+(?:\.\d+)?)", conf.read_text(), re.M)
    except FileNotFoundError:
        return DEFAULT_RATE
    return int(float(m.group(1))) if m else DEFAULT_RATE


def model_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.name == "model" else path.name


@dataclass(frozen=True)
class CallTranscript:
    segments: list[dict[str, Any]]
    audio_seconds: float


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def segments_of(results: list[dict[str, Any]], speaker: str) -> list[dict[str, Any]]:
    """Vosk results (with words) as transcript segments of one speaker."""
    out = []
    for r in results:
        words = [
            {
                "w": _nfc(str(w["word"])),
                "start": round(float(w["start"]), 2),
                "end": round(float(w["end"]), 2),
                "conf": round(float(w.get("conf", 1.0)), 3),
            }
            for w in r.get("result", [])
            if str(w.get("word", "")).strip()
        ]
        if not words:
            continue
        out.append(
            {
                "speaker": speaker,
                "start": words[0]["start"],
                "end": words[-1]["end"],
                "text": " ".join(str(w["w"]) for w in words),
                "words": words,
            }
        )
    return out


def merge(*sides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Both speakers' segments in one list, in time order (citizen first on a tie)."""
    order = {CITIZEN: 0, AGENT: 1}
    return sorted(
        (seg for side in sides for seg in side),
        key=lambda s: (s["start"], order.get(s["speaker"], 9), s["end"]),
    )


class Transcriber:
    """One loaded Vosk model and the steps from two files to one transcript."""

    def __init__(self, model_path: Path, *, min_seconds: float = 1.0) -> None:
        problem = model_problem(model_path)
        if problem:
            raise ModelMissing(problem)
        import vosk  # type: ignore[import-untyped]

        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self.path = model_path
        self.name = model_name(model_path)
        self.rate = model_sample_rate(model_path)
        self.min_seconds = min_seconds
        self.model = vosk.Model(str(model_path))

    def recognise(self, pcm: bytes, rate: int) -> list[dict[str, Any]]:
        """Vosk's results (one per utterance, with word timings) for raw PCM."""
        rec = self._vosk.KaldiRecognizer(self.model, rate)
        rec.SetWords(True)
        results = []
        for i in range(0, len(pcm), CHUNK_BYTES):
            if rec.AcceptWaveform(pcm[i : i + CHUNK_BYTES]):
                results.append(json.loads(rec.Result()))
        results.append(json.loads(rec.FinalResult()))
        return results

    def side(self, s: Side, speaker: str) -> list[dict[str, Any]]:
        if s.silent:
            return []
        return segments_of(self.recognise(s.pcm, s.rate), speaker)

    def transcribe_message(self, file: Path) -> CallTranscript:
        """The transcript of a voice message (the caller alone); :class:`UnusableAudio`
        when there can be none."""
        citizen = read_side(file, self.rate)
        if citizen.seconds < self.min_seconds:
            raise UnusableAudio(
                f"too short: {citizen.seconds:.2f} s of audio "
                f"([recordings] min_seconds = {self.min_seconds:g})"
            )
        if citizen.silent:
            raise UnusableAudio(f"silent: no sound ({citizen.rms_dbfs:.0f} dBFS)")
        segments = self.side(citizen, CITIZEN)
        if not segments:
            raise UnusableAudio(f"no speech recognised in {citizen.seconds:.1f} s of audio")
        return CallTranscript(segments, round(citizen.seconds, 2))

    def transcribe_call(self, caller_file: Path, agent_file: Path) -> CallTranscript:
        """The merged transcript of a call; :class:`UnusableAudio` when there can be none."""
        citizen = read_side(caller_file, self.rate)
        agent = read_side(agent_file, self.rate)
        seconds = max(citizen.seconds, agent.seconds)
        if seconds < self.min_seconds:
            raise UnusableAudio(
                f"too short: {seconds:.2f} s of audio "
                f"([recordings] min_seconds = {self.min_seconds:g})"
            )
        if citizen.silent and agent.silent:
            raise UnusableAudio(
                f"silent: no sound on either side ({citizen.rms_dbfs:.0f} dBFS, "
                f"{agent.rms_dbfs:.0f} dBFS) in {seconds:.1f} s"
            )
        segments = merge(self.side(citizen, CITIZEN), self.side(agent, AGENT))
        if not segments:
            raise UnusableAudio(f"no speech recognised in {seconds:.1f} s of audio")
        return CallTranscript(segments, round(seconds, 2))
