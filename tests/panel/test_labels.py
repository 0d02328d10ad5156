"""Words for identifiers (panel/labels.py): field labels, IVR paths, call outcomes.

The example configuration's menus are the input; the Vietnamese catalogue is
the real one.  The screen-pop in a browser is tested in
tests/panel/test_words_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from callcenter.models import Outcome
from panel import labels
from panel.api import schemas
from panel.i18n import I18n
from panel.views import admin, recordings, tickets
from tests.helpers import settings_in
from tickets.schemas import AgencyIn, TicketCreate, TicketUpdate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return settings_in(tmp_path_factory.mktemp("home"))


def table(settings, lang: str) -> dict[str, dict[str, str]]:
    return labels.step_words(settings, I18n().gettext(lang), lang)


def test_a_menu_choice_is_named_as_configured_in_the_users_language(settings):
    vi, en = table(settings, "vi"), table(settings, "en")
    assert labels.path_words("1:agent", "1022", vi) == "Phản ánh, kiến nghị (phím 1)"
    assert labels.path_words("1:agent", "1022", en) == "Report or request (key 1)"
    # another hotline, another menu
    assert labels.path_words("1:agent", "0888247247", vi) == "Gặp cán bộ tiếp nhận (phím 1)"
    # an option without a label is named by its action
    assert labels.path_words("0:emergency", "1022", vi) == "Số khẩn cấp (phím 0)"
    # a hotline unknown to the page (a pop without one): the action's name
    assert labels.path_words("1:agent", None, vi) == "Gặp điện thoại viên (phím 1)"


def test_a_whole_path_reads_as_words(settings):
    path = "2:info > 7:invalid > silence > 1:agent > full:silence > queue:1 > callback:caller_id"
    assert labels.path_words(path, "1022", table(settings, "vi")) == (
        "Thủ tục hành chính (phím 2) → Bấm sai phím 7 → Không bấm phím → "
        "Phản ánh, kiến nghị (phím 1) → Hàng chờ đã dài: không bấm phím → "
        "Trong khi chờ: yêu cầu gọi lại → Gọi lại vào số đang gọi"
    )
    assert labels.path_words("default:agent", "1022", table(settings, "en")) == (
        "No choice: passed to an operator"
    )
    # the call of a callback carries the callback's number
    assert labels.path_words("callback:12", None, table(settings, "vi")) == "Cuộc gọi lại số 12"
    # a step nobody has words for yet stays readable as it is; no path, no words
    assert labels.path_words("1:agent > teleport", "1022", table(settings, "en")) == (
        "Report or request (key 1) → teleport"
    )
    assert labels.path_words("", "1022", table(settings, "vi")) == ""


def _written_steps(path: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(encoding="utf-8")))


def test_every_step_the_flows_write_has_words(settings):
    """A new step in agi/ivr.py or agi/overflow.py fails here until panel/labels.py names it."""
    common = table(settings, "vi")[""]
    written = _written_steps(ROOT / "agi" / "ivr.py", r'\.note\(\s*"([^"]+)"')
    written |= _written_steps(ROOT / "agi" / "follow.py", r'\.note\(\s*"([^"]+)"')
    assert {"follow:none", "follow:wrong_number", "follow:agent"} <= written
    # and the follow-up's numbered steps (read with "#" for the number, see path_words)
    written |= {"follow:reports:#", "follow:number:#", "follow:unknown:#"}
    written |= _written_steps(
        ROOT / "agi" / "overflow.py", r'note_overflow\(\s*uniqueid,\s*"([^"]+)"'
    )
    assert {"silence", "goodbye", "callback:no_number", "voice_message"} <= written
    # and those built from parts: default:<action>, <key>:invalid, <mode>:<key>, callback:<source>
    written |= {"default:agent", "default:hangup", "callback:caller_id", "callback:typed"}
    written |= {f"{k}:invalid" for k in labels.KEYS}
    written |= {f"{m}:{k}" for m in ("full", "final", "queue") for k in (*labels.KEYS, "silence")}
    assert not sorted(s for s in written if s not in common)
    for hotline in settings.hotlines:
        own = table(settings, "vi")[hotline.number]
        assert {f"{o.digit}:{o.action}" for o in hotline.menu} == set(own)


def test_the_follow_up_steps_read_as_words(settings):
    vi, en = table(settings, "vi"), table(settings, "en")
    path = "3:follow > follow:reports:2 > follow:wrong_number > follow:number:1234567894"
    assert labels.path_words(path, "1022", vi) == (
        "Tra cứu phản ánh (phím 3) → Đã nghe 2 phản ánh đang xử lý mới nhất → "
        "Bấm sai số phản ánh → Đã nghe phản ánh số 1234567894"
    )
    assert labels.path_words("follow:agent", "1022", en) == (
        "Asked for an operator after the follow-up"
    )


def test_outcomes_have_words_in_both_languages():
    vi, en = I18n().gettext("vi"), I18n().gettext("en")
    assert set(labels.OUTCOMES) == {o.value for o in Outcome}
    assert vi(labels.OUTCOMES["abandoned"]) == "Gác máy khi đang chờ"
    assert en(labels.OUTCOMES["timeout"]) == "No agent in time"


def test_the_pop_table_holds_steps_outcomes_and_hotline_names(settings):
    words = labels.pop_words(settings, I18n().gettext("vi"), "vi")
    assert words["outcomes"]["timeout"] == "Hết thời gian chờ"
    assert words["hotlines"]["1022"] == "Tổng đài 1022"
    assert words["steps"]["1022"]["1:agent"] == "Phản ánh, kiến nghị (phím 1)"
    assert words["separator"] == labels.SEPARATOR


def _model_fields() -> set[str]:
    models = [TicketCreate, TicketUpdate, AgencyIn]
    models += [
        m
        for name, m in vars(schemas).items()
        if name.endswith("In") and isinstance(m, type) and issubclass(m, BaseModel)
    ]
    return {field for m in models for field in m.model_fields}


def test_every_input_field_has_a_label():
    """A field a form or the API can refuse is named by a label, never by its identifier."""
    fields = _model_fields() | set(tickets.TICKET_FIELDS)
    fields |= set(admin.USER_FIELDS) | set(admin.AGENCY_FIELDS)
    fields |= {"from", "to", "min", "max", "q"}  # the recordings filters that can be refused
    fields |= {"current_password", "new_password", "repeat_password", "day", "week", "section"}
    assert set(recordings.FILTER_KEYS) >= {"from", "to", "min", "max", "q"}
    assert not sorted(f for f in fields if f not in labels.FIELD_LABELS)


def test_field_labels_follow_the_language():
    vi, en = I18n().gettext("vi"), I18n().gettext("en")
    assert labels.field_label(vi, "citizen_phone") == "Số điện thoại người dân"
    assert labels.field_label(en, "citizen_phone") == "Citizen's phone"
    assert labels.field_label(vi, "day") == "Ngày"
    assert labels.field_label(vi, "no_such_field") == "no_such_field"


def test_an_emergency_put_through_reads_as_words(settings):
    path = "0:emergency > silence > 1:call:113 > dial:answer"
    assert labels.path_words(path, "1022", table(settings, "vi")) == (
        "Số khẩn cấp (phím 0) → Không bấm phím → Phím 1: nối máy tới số 113 → "
        "Số khẩn cấp đã nghe máy"
    )
    assert labels.path_words("2:call:114 > dial:busy", "1022", table(settings, "en")) == (
        "Key 2: put through to 114 → Emergency number busy"
    )
    assert I18n().gettext("vi")(labels.OUTCOMES[Outcome.EMERGENCY]) == "Đã nối máy tới số khẩn cấp"
