"""Where a process's time goes: the top of a py-spy profile in collapsed form.

    py-spy record --idle --format raw --rate 100 --duration 300 --nonblocking \\
        --pid "$(pgrep -f 'hotline-bench-pop/config/hotline.toml run')" -o /tmp/app.txt
    .venv/bin/python -m bench.profile_top /tmp/app.txt [--top 25]

py-spy (PyPI; a sampling profiler that reads the process from outside, so
the event loop is not slowed by instrumentation) writes one line per distinct
stack, ``frame;frame;...;leaf count``.  This prints the share of samples in
which each function is anywhere on the stack (inclusive) and at the top of it
(self), and the share spent waiting in the event loop's selector (idle).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:)]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(Path(path).parts[-2:])
    return f"{m.group('func')} ({path})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";")]
        total += n
        # waiting for I/O: the selector (asyncio) or uvloop's run, which has no
        # Python frame of its own below the runner
        if frames[-1].startswith(("select (", "poll (", "run (", "run_until_complete (")):
            idle += n
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    print(f"{total} samples; idle in the selector {100 * idle / max(1, total):.1f} %")
    print("\ninclusive (on the stack)")
    for f, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:6.1f} %  {f}")
    print("\nself (at the top of the stack)")
    for f, n in own.most_common(args.top):
        print(f"{100 * n / total:6.1f} %  {f}")


if __name__ == "__main__":
    main()
