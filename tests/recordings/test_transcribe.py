"""Real Vosk (the packaged Korean model) on speech made by espeak-ng at 8 kHz."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from recordings.audio import UnusableAudio, read_side
from recordings.transcribe import (
    ModelMissing,
    Transcriber,
    merge,
    model_problem,
    model_sample_rate,
)
from tests.recordings.conftest import MODEL, speech

CITIZEN_SAYS = "안녕하세요 저는 서울에 살고 있습니다 오늘 길이 물에 잠겼어요"
AGENT_SAYS = "네 알겠습니다 바로 확인하겠습니다"


def silence(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return path


def test_both_sides_merged_in_time_order_with_word_timings(
    transcriber: Transcriber, tmp_path: Path
):
    # the citizen speaks first, the agent answers after 7 s of silence
    citizen = speech(tmp_path / "c-in.wav", CITIZEN_SAYS, after=5.0)
    agent = speech(tmp_path / "c-out.wav", AGENT_SAYS, before=7.0)
    assert transcriber.rate == 16000  # the model's rate; the files are 8 kHz
    result = transcriber.transcribe_call(citizen, agent)

    speakers = [s["speaker"] for s in result.segments]
    assert "citizen" in speakers and "agent" in speakers
    starts = [s["start"] for s in result.segments]
    assert starts == sorted(starts)
    first_agent = next(s for s in result.segments if s["speaker"] == "agent")
    assert first_agent["start"] >= 6.5  # timings of the agent's side are its own
    for seg in result.segments:
        assert seg["text"].strip()
        assert seg["words"], seg
        assert seg["text"] == " ".join(w["w"] for w in seg["words"])
        for w in seg["words"]:
            assert seg["start"] <= w["start"] <= w["end"] <= seg["end"]
            assert 0 <= w["conf"] <= 1
    assert 9 < result.audio_seconds < 12


def test_unusable_audio_says_why(transcriber: Transcriber, tmp_path: Path):
    good = speech(tmp_path / "good.wav", AGENT_SAYS)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    short_in = speech(tmp_path / "short-in.wav", "네")
    quiet_in = silence(tmp_path / "quiet-in.wav", 5)
    quiet_out = silence(tmp_path / "quiet-out.wav", 5)
    short_out = silence(tmp_path / "short-out.wav", 0.3)

    cases = [
        (empty, good, "empty.wav: empty file"),
        (good, corrupt, "corrupt.wav: corrupt or not audio"),
        (good, tmp_path / "gone.wav", "gone.wav: file missing"),
        (quiet_in, quiet_out, "silent: no sound on either side"),
    ]
    for caller, agent, reason in cases:
        with pytest.raises(UnusableAudio, match=reason):
            transcriber.transcribe_call(caller, agent)
    # "네" alone is well under the minimum of 1 s
    assert read_side(short_in, 16000).seconds < 1.0
    with pytest.raises(UnusableAudio, match=r"too short: 0\.\d+ s"):
        transcriber.transcribe_call(short_in, short_out)


def test_one_silent_side_still_gives_a_transcript(transcriber: Transcriber, tmp_path: Path):
    citizen = speech(tmp_path / "x-in.wav", CITIZEN_SAYS)
    agent = silence(tmp_path / "x-out.wav", 6)
    result = transcriber.transcribe_call(citizen, agent)
    assert {s["speaker"] for s in result.segments} == {"citizen"}


def test_model_rate_and_problems(tmp_path: Path):
    assert model_sample_rate(MODEL) == 16000  # no --sample-frequency: Kaldi's default
    fake = tmp_path / "m8k"
    (fake / "conf").mkdir(parents=True)
    (fake / "conf" / "mfcc.conf").write_text("--use-energy=false\n--sample-frequency=8000\n")
    assert model_sample_rate(fake) == 8000
    assert "vosk_model is not set" in (model_problem(None) or "")
    assert "no Vosk model at" in (model_problem(tmp_path / "nowhere") or "")
    assert "not a Vosk model" in (model_problem(fake) or "")
    assert model_problem(MODEL) is None
    with pytest.raises(ModelMissing, match="vosk-model-small-vn-0.4"):
        Transcriber(tmp_path / "nowhere")


def test_merge_orders_by_start_citizen_first_on_a_tie():
    c = [{"speaker": "citizen", "start": 1.0, "end": 2.0}]
    a = [
        {"speaker": "agent", "start": 0.5, "end": 0.9},
        {"speaker": "agent", "start": 1.0, "end": 3},
    ]
    assert [(s["speaker"], s["start"]) for s in merge(c, a)] == [
        ("agent", 0.5),
        ("citizen", 1.0),
        ("agent", 1.0),
    ]
