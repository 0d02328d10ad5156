"""The lab: a real PBX Asterisk, a carrier Asterisk and the application, on loopback.

Used by the integration tests and the benchmark.  Ports differ from the
defaults so a hotline already running on this machine is not disturbed.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from core.settings import Settings, ensure_secrets, load_settings
from hotline import system
from hotline.carrier import Carrier, CarrierAddresses
from hotline.pbx import AsteriskInstance
from tests.helpers import EXAMPLE

T = TypeVar("T")

CACHE_DIR = Path(os.environ.get("HOTLINE_ASTERISK_CACHE", "/var/cache/hotline/asterisk-sid"))
# HOTLINE_LAB_SLOT=1..7 moves every port of the lab, so that several labs
# (say, two test runs side by side) share the machine without clashing.  Under
# pytest-xdist each worker takes the next slot: gw0 the given one, gw1 the one
# after, and so on, each with a lab of its own.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
SLOT = int(os.environ.get("HOTLINE_LAB_SLOT", "0")) + int(_WORKER.removeprefix("gw") or 0)
if not 0 <= SLOT <= 7:
    raise ValueError(f"HOTLINE_LAB_SLOT must be 0..7 (worker {_WORKER} would take slot {SLOT})")
_P = 100 * SLOT  # signalling and control ports
_R = 125 * SLOT  # media port ranges (125 ports, some 60 streams, a slot)
CARRIER = CarrierAddresses(
    sip_port=15060 + _P,
    tls_port=15061 + _P,
    ami_port=15039 + _P,
    rtp_start=17000 + _R,
    rtp_end=17124 + _R,
)

# Short prompts keep each test call to seconds; the menu logic is the real one.
SHORT = {
    "greeting": ("Xin chào.", "Hello."),
    "invalid": ("Sai phím.", "Wrong key."),
    "no_input": ("Chưa bấm.", "No key."),
    "connecting": ("Xin chờ.", "Please hold."),
    "all_busy": ("Đang bận.", "Busy."),
    "goodbye": ("Tạm biệt.", "Goodbye."),
    "notice": ("Có ghi âm.", "Recorded."),
    "blocked": ("Số bị chặn.", "Number blocked."),
}


def lab_config(**overrides: Any) -> dict[str, Any]:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["asterisk"].update(
        cache_dir=str(CACHE_DIR),
        sip_port=15060 + _P,
        tls_port=15061 + _P,  # TCP: beside the carrier's phones (on 127.0.0.3)
        ami_port=15038 + _P,
        rtp_start=16000 + _R,
        rtp_end=16124 + _R,
    )
    cfg["agi"]["port"] = 14573 + _P
    # the panel on its own port, its Redis keys apart from a running system's
    cfg["panel"] = {"port": 18080 + _P, "redis_prefix": f"labtest{os.getpid()}"}
    cfg["public"] = {"port": 18090 + _P}
    cfg["trunk"]["match"] = [CARRIER.trunk_ip]
    # Asterisk drops to its own user, as in service; the application runs in
    # the test process (root) and reads what it writes all the same
    cfg["service"] = {"user": "", "pbx_user": "hotline-pbx"}
    cfg["queues"].update(max_wait_seconds=30, ring_seconds=8, wrapup_seconds=0)
    cfg["ivr"].update(input_timeout_seconds=2, max_retries=2)
    for key in ("invalid", "no_input", "connecting", "all_busy", "goodbye"):
        vi, en = SHORT[key]
        cfg["ivr"]["prompts"][key] = {"vi": vi, "en": en}
    for h in cfg["hotlines"]:
        h["greeting"] = {"vi": SHORT["greeting"][0], "en": SHORT["greeting"][1]}
        h["recording_notice"] = {"vi": SHORT["notice"][0], "en": SHORT["notice"][1]}
        for opt in h["menu"]:
            opt["prompt"] = {"vi": f"Phím {opt['digit']}.", "en": f"Key {opt['digit']}."}
            if "message" in opt:
                opt["message"] = {"vi": "Gọi 113.", "en": "Dial 113."}
    cfg.setdefault("blocklist", {})["message"] = {
        "vi": SHORT["blocked"][0],
        "en": SHORT["blocked"][1],
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


@dataclass
class Lab:
    home: Path
    settings: Settings
    pbx: AsteriskInstance
    carrier: Carrier
    root: Path | None

    @classmethod
    def build(
        cls,
        home: Path,
        database_url: str | None = None,
        *,
        config: dict[str, Any] | None = None,
        agent_talk_seconds: int = 3600,
        carrier: CarrierAddresses = CARRIER,
    ) -> Lab:
        (home / "config").mkdir(parents=True, exist_ok=True)
        cfg = config or lab_config()
        if database_url:
            cfg["database_url"] = database_url
        path = home / "config" / "hotline.toml"
        path.write_text(tomli_w.dumps(cfg))
        settings = load_settings(path, env={})
        ensure_secrets(settings)
        settings, pbx = system.prepare(path, say=lambda *_: None)
        instance = Carrier(
            settings, home / "carrier", pbx.root, carrier, agent_talk_seconds=agent_talk_seconds
        )
        return cls(home, settings, pbx, instance, pbx.root)

    def start(self) -> None:
        self.pbx.start()
        self.carrier.start()

    def stop(self) -> None:
        for inst in (self.carrier.instance, self.pbx):
            try:
                inst.stop()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 30, every: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: T | None = None
    while loop.time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
