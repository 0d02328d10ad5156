"""Replay audio: how long the first play of a call waits for its MP3.

    .venv/bin/python -m bench.replay_convert                 # 1, 5 and 15 minute calls, 5 runs
    .venv/bin/python -m bench.replay_convert --minutes 30 --runs 3

Each call is two 8 kHz mono WAV sides as Asterisk's MixMonitor writes them
(speech from espeak-ng repeated to length, the agent's side shifted so both
speak), mixed and converted exactly as the panel does it
(:func:`recordings.replay.convert`: pydub + ffmpeg, MP3 16 kHz 32 kb/s).  The
later plays of a call are served from the cache and do not convert.  It
reports the median, min and max seconds per call length, the real-time factor
(conversion seconds per second of audio) and the MP3 size.  Results go to
bench/results/replay_convert.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pydub import AudioSegment  # type: ignore[import-untyped]

from recordings.replay import convert

RESULTS = Path(__file__).parent / "results"


def side(text: str, minutes: float, offset_ms: int, work: Path, name: str) -> Path:
    raw = work / f"{name}.raw.wav"
    subprocess.run(["espeak-ng", "-v", "vi", "-w", str(raw), text], check=True)
    with raw.open("rb") as f:
        voice = AudioSegment.from_file(f, format="wav").set_frame_rate(8000).set_channels(1)
    pause = AudioSegment.silent(duration=len(voice), frame_rate=8000)
    one = AudioSegment.silent(duration=offset_ms, frame_rate=8000) + voice + pause
    total = int(minutes * 60_000)
    audio = one * (total // len(one) + 1)
    path = work / f"{name}.wav"
    audio[:total].export(str(path), format="wav").close()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="*", default=[1, 5, 15])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for minutes in args.minutes:
            caller = side("Nhà tôi ở quận một bị ngập nước từ sáng", minutes, 0, work, "in")
            agent = side("Tổng đài xin nghe, anh chị cần hỗ trợ gì", minutes, 2500, work, "out")
            times = []
            size = 0
            for run in range(args.runs):
                target = work / f"call-{minutes}-{run}.mp3"
                t0 = time.perf_counter()
                convert([caller, agent], target)
                times.append(time.perf_counter() - t0)
                size = target.stat().st_size
            median = statistics.median(times)
            rows.append(
                {
                    "minutes": minutes,
                    "runs": args.runs,
                    "median_s": round(median, 3),
                    "min_s": round(min(times), 3),
                    "max_s": round(max(times), 3),
                    "realtime_factor": round(median / (minutes * 60), 4),
                    "mp3_kb": round(size / 1024),
                }
            )
            print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay_convert.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| call length | runs | median s | min / max s | real-time factor | MP3 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['minutes']:g} min | {r['runs']} | **{r['median_s']}** | "
            f"{r['min_s']} / {r['max_s']} | {r['realtime_factor']} | {r['mp3_kb']} KB |"
        )
    (RESULTS / "replay_convert.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
