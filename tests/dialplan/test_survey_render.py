"""The survey after a call in the generated dialplan: only where a hotline asks for it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import tomli_w

from agi.ivr import IVR
from agi.overflow import OverflowMenu
from agi.routes import routes
from agi.survey import Survey
from dialplan.prompts import prompt_texts
from dialplan.render import render
from hotline.app import AMI_EVENTS
from tests.helpers import EXAMPLE, settings_in


def _hotline_context(ext: str, hotline_id: str) -> str:
    m = re.search(rf"^\[hotline-{hotline_id}\]\n(.*?)(?=^\[)", ext, re.M | re.S)
    assert m, hotline_id
    return m.group(1)


def test_the_survey_follows_the_queue_only_on_hotlines_that_ask(tmp_path: Path):
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["hotlines"][0]["survey_after_call"] = True  # 1022; the Party hotline keeps it off
    settings = settings_in(tmp_path, tomli_w.dumps(cfg))
    ext = render(settings, AMI_EVENTS)["extensions.conf"]
    on, off = _hotline_context(ext, "hl1022"), _hotline_context(ext, "party")
    # option c: the caller goes on in the dialplan when the agent hangs up
    # c: the survey after the agent hangs up; t: the agent may transfer ([transfers])
    assert re.search(r"Queue\(\$\{HOTLINE_QUEUE\},ct,,,\$\{HOTLINE_MAX_WAIT\}\)", on)
    assert 'GotoIf($["${QUEUESTATUS}" = "CONTINUE"]?survey,1)' in on
    assert "exten => survey,1,AGI(${HOTLINE_AGI}/survey,,after_call)" in on
    assert "survey" not in off
    assert re.search(r"Queue\(\$\{HOTLINE_QUEUE\},t,,,\$\{HOTLINE_MAX_WAIT\}\)", off)

    named = set(re.findall(r"AGI\(\$\{HOTLINE_AGI\}/([\w-]+)", ext))
    known = set(
        routes(
            IVR(settings, calls=None, clock=None),  # type: ignore[arg-type]
            OverflowMenu(settings, callbacks=None, clock=None),  # type: ignore[arg-type]
            Survey(settings, None, None, None, None),  # type: ignore[arg-type]
        )
    )
    assert "survey" in named and named <= known


def test_the_survey_prompts_exist_in_both_languages(tmp_path: Path):
    texts = prompt_texts(settings_in(tmp_path))
    for pid in ("survey_rate", "survey_thanks", "survey_reopen_offer", "survey_reopened"):
        assert (
            texts[("vi", pid)] and texts[("en", pid)] and texts[("vi", pid)] != texts[("en", pid)]
        )
    assert "9" in texts[("en", "survey_reopen_offer")] and "5" in texts[("vi", "survey_rate")]
