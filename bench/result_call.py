"""Result calls: from "result recorded" to the citizen's phone ringing, at rest.

    sudo HOTLINE_LAB_SLOT=2 .venv/bin/python -m bench.result_call --runs 10

The test lab (tests/lab.py: a PBX Asterisk and a carrier Asterisk on loopback, on the
ports of ``HOTLINE_LAB_SLOT``) with result calls on at every hour, and the application
in this process.  Each run files a level-2 report from a new number, forwarded to an
agency, and times from the start of the agency's answer (``TicketService.answer``, the
service call that records the result and, in its transaction, the result call) to the
carrier seeing the call: its dialplan answers the INVITE at once and sends
``UserEvent: AgentAnswered`` (an upper bound of the ring: the INVITE, the carrier's
answer, the event to us).  The path measured: the commit, the bus wake-up (Redis), the
dialler's round (the due list, the claim and the call record), the Originate, the
PBX's INVITE over the trunk.  The citizen hangs up at once and the next run waits for
the call to end, so each run starts at rest.

Prints the runs, the median and the maximum; the target is 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from accounts.identity import SYSTEM, Actor
from accounts.models import Role
from core.ami import Event
from dialplan import prompts
from hotline.app import Application
from tests.lab import Lab, lab_config
from tickets.models import ResultCallState

TARGET_SECONDS = 5.0


def config() -> dict:
    from tests.lab import CARRIER

    cfg = lab_config()
    cfg["trunk"]["contact"] = f"sip:{CARRIER.trunk_ip}:{CARRIER.sip_port}"
    cfg["result_calls"] = {"enabled": True, "hours": "00:00-23:59", "sweep_seconds": 60}
    return cfg


async def one_run(app: Application, lab: Lab, agency_id: int, i: int) -> float:
    number = "09" + "".join(random.choices("0123456789", k=8))
    ticket = await app.tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "citizen_phone": number,
            "domain": "state",
            "topic": "flooding",
            "level": 2,
            "description": f"Lần đo {i}: cống bị tắc",
            "agency_id": agency_id,
        },
    )
    officer = Actor(id=None, name="officer", role=Role.AGENCY, agency_id=agency_id)
    loop = asyncio.get_running_loop()
    rang: asyncio.Future[float] = loop.create_future()

    async def on_event(e: Event) -> None:
        if e.get("UserEvent") == "AgentAnswered" and e.get("Extension") == number:
            if not rang.done():
                rang.set_result(time.perf_counter())

    assert lab.carrier.ami is not None
    lab.carrier.ami.subscribe(["UserEvent"], on_event, lane=f"bench-{i}")
    start = time.perf_counter()
    await app.tickets.answer(officer, ticket.id, ticket.version, "Đã nạo vét cống.")
    seconds = await asyncio.wait_for(rang, 30) - start
    # the citizen hangs up; the next run starts once the call is over
    await lab.carrier.hangup_all()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        (job,) = await app.result_call_service.for_ticket(ticket.id)
        if job.state == ResultCallState.DONE:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    return seconds


async def run(runs: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-result-call-") as tmp:
        lab = Lab.build(Path(tmp), config=config())
        try:
            lab.start()
            await lab.carrier.connect()
            await lab.carrier.wait_registered(60)
            await asyncio.to_thread(prompts.generate, lab.settings)
            async with Application(lab.settings, scheduler_interval=5) as app:
                await app.ami.wait_logged_in(30)
                await asyncio.wait_for(app.result_calls.listening.wait(), 10)
                agency = await app.panel.agencies.create(
                    SYSTEM, {"kind": "ward", "code": "bench-ward", "name": "Phường Bến Nghé"}
                )
                await one_run(app, lab, agency.id, 0)  # warm-up, not counted
                return [await one_run(app, lab, agency.id, i) for i in range(1, runs + 1)]
        finally:
            await lab.carrier.close()
            lab.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    figures = asyncio.run(run(args.runs))
    print("runs (s): " + ", ".join(f"{f:.3f}" for f in figures))
    median, worst = statistics.median(figures), max(figures)
    verdict = "within" if worst <= TARGET_SECONDS else "OVER"
    print(
        f"result recorded -> citizen's phone ringing: median {median:.3f} s, "
        f"max {worst:.3f} s over {len(figures)} runs ({verdict} the {TARGET_SECONDS:.0f} s target)"
    )


if __name__ == "__main__":
    main()
