"""The result call in the generated dialplan and prompts: only when result calls are on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from agi.ivr import IVR
from agi.overflow import OverflowMenu
from agi.result_call import ResultCallFlow
from agi.routes import routes
from agi.survey import Survey
from core.settings import ConfigError
from dialplan.prompts import prompt_texts
from dialplan.render import render
from hotline.app import AMI_EVENTS
from tests.helpers import EXAMPLE, settings_in
from tickets.result_dialler import DIAL_CONTEXT, RESULT_EVENT


def _config(enabled: bool, contact: bool = True) -> str:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["result_calls"]["enabled"] = enabled
    if contact:
        cfg["trunk"]["contact"] = "sip:sbc.carrier.example:5060"
    return tomli_w.dumps(cfg)


def test_the_context_records_reads_the_result_then_surveys(tmp_path: Path):
    settings = settings_in(tmp_path, _config(True))
    ext = render(settings, AMI_EVENTS)["extensions.conf"]
    m = re.search(rf"^\[{DIAL_CONTEXT}\]\n(.*?)(?=^\[)", ext, re.M | re.S)
    assert m, "the context is there"
    ctx = m.group(1)
    base = "${HOTLINE_RESULT_RECORDING}"
    # named like the other recordings: <base>.wav, the citizen "-in", the hotline "-out"
    assert f"MixMonitor({base}.wav,r({base}-in.wav)t({base}-out.wav))" in ctx
    steps = re.findall(r"AGI\(\$\{HOTLINE_AGI\}/([^)]*)\)", ctx)
    assert steps == [
        "result_call,${HOTLINE_RESULT_CALL}",
        "survey,${HOTLINE_RESULT_TICKET},result_call",
    ]
    assert f"UserEvent({RESULT_EVENT}," in ctx and "hangup_handler_push" in ctx
    named = set(re.findall(r"AGI\(\$\{HOTLINE_AGI\}/([\w-]+)", ext))
    known = set(
        routes(
            IVR(settings, calls=None, clock=None),  # type: ignore[arg-type]
            OverflowMenu(settings, callbacks=None, clock=None),  # type: ignore[arg-type]
            Survey(settings, None, None, None, None),  # type: ignore[arg-type]
            ResultCallFlow(settings, None, None, None),  # type: ignore[arg-type]
        )
    )
    assert named <= known
    texts = prompt_texts(settings)
    for pid in ("intro", "report", "agency", "result", "repeat", "full_answer"):
        assert texts[("vi", f"result_call_{pid}")] and texts[("en", f"result_call_{pid}")]
    assert ("vi", "digit-7") in texts and ("en", "follow_wait") in texts


def test_off_by_default_nothing_is_rendered(tmp_path: Path):
    settings = settings_in(tmp_path, _config(False))
    assert DIAL_CONTEXT not in render(settings, AMI_EVENTS)["extensions.conf"]
    assert not any(pid.startswith("result_call_") for _, pid in prompt_texts(settings))


def test_on_without_a_trunk_contact_is_refused_by_name(tmp_path: Path):
    with pytest.raises(ConfigError, match="result_calls.enabled"):
        settings_in(tmp_path, _config(True, contact=False))
