"""Transfers' rules on real SQLite and PostgreSQL: which targets there are (never a
typed number), who may transfer which call, what the chain keeps of a refusal, and
the dialplan that carries each target out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from callcenter.models import CallTransfer
from callcenter.service import CallService
from callcenter.transfer_events import TransferEvents
from callcenter.transfers import (
    KEYS_CONTEXT,
    LEG_ANSWERED,
    Target,
    TransferRefused,
    Transferrer,
    TransferService,
    UnknownTarget,
    clean_draft,
    dialplan_exten,
    extension_of_channel,
    from_keys,
    keyed_target,
    keys_exten,
    trunk_number,
)
from core.ami import AMIClient, Event
from core.clock import FakeClock
from core.db import Database
from dialplan.render import render
from tests.helpers import queued_call, settings_in
from tests.lab import lab_config
from tests.schema import migrated

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=TZ)
QUEUE = "t1022-morning"  # on duty at T0


def trunk_config(**overrides: object) -> dict:
    """The lab's configuration with a trunk contact: calls may go out through it."""
    cfg = lab_config(**overrides)
    cfg["trunk"]["contact"] = "sip:127.0.0.2:5060"
    return cfg


AGENCIES = [
    (3, "Sở Giao thông Vận tải", "+84 28 3829 0451"),
    (4, "Phường Bến Nghé", "028.3822.5117"),
    (5, "Ban không số", "gọi tổng đài"),
]


async def agencies() -> list[tuple[int, str, str | None]]:
    return AGENCIES


@pytest.fixture
async def env(tmp_path, database_url):
    settings = settings_in(tmp_path, tomli_w.dumps(trunk_config(database_url=database_url)))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(T0 + timedelta(minutes=1))
    # a client never connected: a refusal must come before Asterisk is asked
    ami = AMIClient("127.0.0.1", 1, "x", "y")
    service = TransferService(settings, db, None, ami, clock, agencies=agencies)
    yield calls, service, db, settings
    await db.close()


async def talking(calls: CallService, uniqueid: str, ext: str, *, ended: bool = False) -> int:
    await queued_call(calls, uniqueid, "0901234567", started=T0, queue=QUEUE, path="1")
    await calls.agent_connected(
        uniqueid=uniqueid,
        queue=QUEUE,
        interface=f"PJSIP/{ext}",
        member_name=None,
        hold_seconds=3,
        at=T0 + timedelta(seconds=3),
        recording_base=None,
    )
    if ended:
        await calls.hung_up(
            uniqueid=uniqueid, at=T0 + timedelta(seconds=50), queue_status=None, cause="16"
        )
    call = await calls.get(uniqueid)
    assert call is not None
    return call.id


AGENT = Transferrer(11, "Lan", "1001")
OTHER = Transferrer(12, "Hùng", "1002")
BOSS = Transferrer(7, "Giám sát Hà", "1901", supervisor=True)


def test_agency_numbers_are_made_dialable_or_left_out():
    assert trunk_number("+84 28 3829 0451") == "02838290451"
    assert trunk_number("028.3822.5117") == "02838225117"
    assert trunk_number("113") == "113"
    assert trunk_number("gọi tổng đài") is None
    assert trunk_number("") is None and trunk_number(None) is None
    assert trunk_number("1234567890123456") is None  # longer than any number


def test_the_draft_keeps_the_ticket_fields_only():
    draft = clean_draft(
        {"description": "Ngập ở Quận 1", "level": "2", "citizen_phone": "0909", "x": "y",
         "citizen_name": "  ", "topic": "flooding"}
    )  # fmt: skip
    assert json.loads(draft or "") == {
        "description": "Ngập ở Quận 1",
        "level": "2",
        "topic": "flooding",
    }
    assert clean_draft({"citizen_name": ""}) is None
    assert clean_draft("not a form") is None


def test_each_kind_of_target_has_its_dialplan_extension():
    assert dialplan_exten(Target("queue", "party", "P"), "party-morning") == "q-party-morning"
    assert dialplan_exten(Target("phone", "1901", "Bàn 1")) == "p-1901"
    assert dialplan_exten(Target("agency", "3", "Sở", "02838290451")) == "out"
    assert dialplan_exten(Target("emergency", "113", "113", "113")) == "out"


def test_a_consultation_keys_digits_and_never_goes_into_a_queue():
    assert keys_exten(Target("agent", "1002", "Hùng")) == "1002"
    assert keys_exten(Target("phone", "1901", "Bàn 1")) == "1901"
    assert keys_exten(Target("emergency", "115", "115", "115")) == "115"
    assert keys_exten(Target("agency", "3", "Sở", "02838290451")) == "0"
    assert keys_exten(Target("queue", "party", "P")) is None


def test_a_phone_transfer_is_named_from_its_keys(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(lab_config()))
    assert from_keys(settings, "1002") == Target("agent", "1002", "Trần Văn Hùng")
    assert from_keys(settings, "1901") == Target("phone", "1901", "Bàn giám sát 1")
    assert from_keys(settings, "113") == Target("emergency", "113", "113", "113")
    assert from_keys(settings, "82") == Target("queue", "party", settings.teams[1].name)
    assert from_keys(settings, "0901234567") is None
    assert keyed_target("Local/1901@hotline-transfer-keys-0000002a;1") == "1901"
    assert keyed_target("Local/1901@other-0000002a;1") is None
    assert keyed_target(None) is None
    assert extension_of_channel("PJSIP/1001-000000a2") == "1001"
    assert extension_of_channel("Local/1@x-1;1") is None


async def test_targets_come_from_the_configuration_and_the_directory(env):
    _calls, service, _db, _settings = env
    targets = {t.id: t for t in await service.targets()}
    assert {"queue:t1022", "queue:party", "phone:1901", "phone:1902"} <= set(targets)
    assert {f"agent:{a.extension}" for a in service.settings.agents} <= set(targets)
    assert targets["agency:3"].number == "02838290451"
    assert targets["agency:4"].number == "02838225117"
    assert "agency:5" not in targets, "an agency without a dialable phone is no target"
    assert [targets[f"emergency:{n}"].number for n in ("113", "114", "115")] == [
        "113",
        "114",
        "115",
    ]
    assert "queue:t1022" not in {t.id for t in await service.targets(exclude_team="t1022")}


@pytest.mark.parametrize(
    "target",
    ["emergency:0901234567", "agency:5", "agency:99", "phone:1001", "queue:nope", "out:113",
     "0901234567", "", "queue:", "emergency:113;1"],
)  # fmt: skip
async def test_a_typed_number_or_unknown_target_is_refused(env, target):
    calls, service, db, _settings = env
    call_id = await talking(calls, "pbx-9.1", "1001")
    with pytest.raises(UnknownTarget) as e:
        await service.blind(AGENT, call_id, target)
    assert e.value.field == "target"
    async with db.session() as s:
        assert (await s.get(CallTransfer, 1)) is None, "a refusal writes no chain row"


async def test_who_may_transfer_which_call(env):
    calls, service, _db, _settings = env
    call_id = await talking(calls, "pbx-9.2", "1001")
    with pytest.raises(TransferRefused) as e:
        await service.blind(OTHER, call_id, "queue:party")
    assert e.value.reason == "not_yours"
    # the call's own team is not a transfer, nor the agent who has it
    with pytest.raises(UnknownTarget):
        await service.blind(AGENT, call_id, "queue:t1022")
    with pytest.raises(UnknownTarget):
        await service.blind(AGENT, call_id, "agent:1001")
    # a consultation does not go into a queue
    with pytest.raises(UnknownTarget):
        await service.attended(AGENT, call_id, "queue:party")
    with pytest.raises(TransferRefused) as e:
        await service.attended(OTHER, call_id, "phone:1901")
    assert e.value.reason == "not_yours"
    ended = await talking(calls, "pbx-9.3", "1001", ended=True)
    with pytest.raises(TransferRefused) as e:
        await service.blind(AGENT, ended, "emergency:113")
    assert e.value.reason == "not_in_call"
    with pytest.raises(TransferRefused) as e:
        await service.blind(AGENT, 424242, "emergency:113")
    assert e.value.reason == "not_in_call"
    # the agent and a supervisor get past the checks to Asterisk, which is not there
    for who in (AGENT, BOSS):
        with pytest.raises(TransferRefused) as e:
            await service.blind(who, call_id, "emergency:113")
        assert e.value.reason == "unavailable"
    assert await service.chain(call_id) == []
    # no consultation under way: nothing to complete or cancel
    for end in (service.complete, service.cancel):
        with pytest.raises(TransferRefused) as e:
            await end(AGENT, 1)
        assert e.value.reason == "no_consultation"
    assert await service.consulting("1001") is None


async def test_without_a_trunk_contact_no_number_is_a_target(tmp_path, env):
    _calls, service, _db, settings = env
    service.settings = settings.model_copy(
        update={"trunk": settings.trunk.model_copy(update={"contact": None})}
    )
    kinds = {t.kind for t in await service.targets()}
    assert kinds == {"queue", "agent", "phone"}
    plain = settings_in(tmp_path / "plain", tomli_w.dumps(lab_config()))
    keys = render(plain, [])["extensions.conf"].split("[hotline-transfer-keys]", 1)[1]
    assert "exten => 113," not in keys.split("\n[", 1)[0]


async def test_transfers_can_be_turned_off(env):
    calls, service, _db, settings = env
    call_id = await talking(calls, "pbx-9.4", "1001")
    service.settings = settings.model_copy(
        update={"transfers": settings.transfers.model_copy(update={"enabled": False})}
    )
    with pytest.raises(TransferRefused) as e:
        await service.blind(AGENT, call_id, "queue:party")
    assert e.value.reason == "disabled"


async def test_a_second_answer_keeps_the_first_and_names_the_new_agent(env):
    calls, _service, _db, _settings = env
    await talking(calls, "pbx-9.5", "1001")
    await calls.agent_connected(
        uniqueid="pbx-9.5",
        queue="party-morning",
        interface="PJSIP/2001",
        member_name=None,
        hold_seconds=9,
        at=T0 + timedelta(seconds=40),
        recording_base=None,
    )
    call = await calls.get("pbx-9.5")
    assert call is not None
    assert call.agent_extension == "2001" and call.hold_seconds == 3
    assert call.answered_at == T0 + timedelta(seconds=3)


def test_the_dialplan_has_one_extension_per_target_and_no_free_number(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(trunk_config()))
    text = render(settings, [])["extensions.conf"]
    context = text.split("[hotline-transfer]", 1)[1].split("\n[", 1)[0]
    exts = [line.split("=>", 1)[1].split(",", 1)[0].strip() for line in context.splitlines()
            if line.startswith("exten =>")]  # fmt: skip
    assert "q-party-morning" in exts and "q-t1022-night" in exts
    assert "p-1901" in exts and "p-1902" in exts and "p-1001" in exts
    keys = text.split("[hotline-transfer-keys]", 1)[1].split("\n[", 1)[0]
    keyed = [line.split("=>", 1)[1].split(",", 1)[0].strip() for line in keys.splitlines()
             if line.startswith("exten =>")]  # fmt: skip
    assert {"1001", "1901", "113", "114", "115", "81", "82", "0"} <= set(keyed)
    assert not [e for e in keyed if not e.isdigit()], "only digits: what a phone keys"
    assert "Set(__TRANSFER_CONTEXT=hotline-transfer-keys)" in text
    assert ",t,,," in text or "ct,,," in text, "Queue() lets the agent transfer (t)"
    features = render(settings, [])["features.conf"]
    assert "blindxfer => ##" in features and "atxfer => *2" in features
    assert not [e for e in exts if e.startswith("_")], "no pattern: nothing typed is dialled"
    assert "HOTLINE_TRANSFER" in render(settings, [])["manager.conf"]
    off = trunk_config()
    off["transfers"] = {"enabled": False}
    settings = settings_in(tmp_path / "off", tomli_w.dumps(off))
    assert "[hotline-transfer]" not in render(settings, [])["extensions.conf"]


def at(seconds: float) -> str:
    """An AMI ``Timestamp`` header ``seconds`` after T0."""
    return f"{(T0 + timedelta(seconds=seconds)).timestamp():.6f}"


def keyed(uniqueid: str, digits: str, by: str, seconds: float) -> Event:
    """``##<digits>`` keyed on ``by``'s phone: Asterisk's BlindTransfer event."""
    return Event(
        {
            "Event": "BlindTransfer", "Result": "Success", "IsExternal": "No",
            "TransfereeUniqueid": uniqueid, "TransfererChannel": f"PJSIP/{by}-0000002a",
            "Context": KEYS_CONTEXT, "Extension": digits, "Timestamp": at(seconds),
        }
    )  # fmt: skip


def answered(uniqueid: str, target: str, seconds: float, transfer: str = "") -> Event:
    """The dialplan's word that a transfer's phone or number answered."""
    return Event(
        {
            "Event": "UserEvent", "UserEvent": LEG_ANSWERED, "Call": uniqueid,
            "Transfer": transfer, "Target": target, "Timestamp": at(seconds),
        }
    )  # fmt: skip


async def test_the_talk_time_adds_up_every_answered_leg(env):
    """1001 answers at 3 s and keys ##82 at 20 s (app_queue: 17 s talked); a Party agent
    answers at 32 s and hands the caller to 1002's own extension at 50 s; 1002 answers
    at 58 s and the caller hangs up at 70 s: 17 + 18 + 12 s, not the last leg's 12."""
    calls, service, db, settings = env
    events = TransferEvents(settings, db, service.clock)
    await talking(calls, "pbx-9.6", "1001")
    await events.on_transfer(keyed("pbx-9.6", "82", "1001", 20))
    await calls.agent_completed(uniqueid="pbx-9.6", talk_seconds=17, reason="transfer_hangup")
    call = await calls.get("pbx-9.6")
    assert call is not None and call.talk_seconds == 17, "so far: the first leg"
    await calls.agent_connected(
        uniqueid="pbx-9.6", queue="party-morning", interface="PJSIP/2001", member_name=None,
        hold_seconds=12, at=T0 + timedelta(seconds=32), recording_base=None,
    )  # fmt: skip
    await events.on_transfer(keyed("pbx-9.6", "1002", "2001", 50))
    await calls.agent_completed(uniqueid="pbx-9.6", talk_seconds=18, reason="transfer_hangup")
    # an answer nobody asked for (no such transfer) changes nothing
    await events.on_leg(answered("pbx-9.6", "1901", 55))
    await events.on_leg(answered("pbx-9.6", "1002", 58))
    call = await calls.get("pbx-9.6")
    assert call is not None and call.agent_extension == "1002", "the record names who has it"
    await calls.hung_up(
        uniqueid="pbx-9.6", at=T0 + timedelta(seconds=70), queue_status=None, cause="16"
    )
    chain = await service.chain(call.id)
    assert [(t.target, t.answered_at) for t in chain] == [
        ("party", T0 + timedelta(seconds=32)),
        ("1002", T0 + timedelta(seconds=58)),
    ]
    call = await calls.get("pbx-9.6")
    assert call is not None and call.talk_seconds == 17 + 18 + 12
    assert call.answered_at == T0 + timedelta(seconds=3) and call.hold_seconds == 3
    # app_queue's report of a leg coming after the hang-up keeps the whole
    await calls.agent_completed(uniqueid="pbx-9.6", talk_seconds=12, reason="agent_hangup")
    call = await calls.get("pbx-9.6")
    assert call is not None and call.talk_seconds == 47


async def test_a_leg_never_answered_adds_nothing_and_a_consultation_counts_from_completion(
    env,
):
    calls, service, db, settings = env
    events = TransferEvents(settings, db, service.clock)
    # ##113 at 20 s; the desk never answers; the caller hangs up at 40 s
    await talking(calls, "pbx-9.7", "1001")
    await events.on_transfer(keyed("pbx-9.7", "113", "1001", 20))
    await calls.hung_up(
        uniqueid="pbx-9.7", at=T0 + timedelta(seconds=40), queue_status=None, cause="16"
    )
    call = await calls.get("pbx-9.7")
    assert call is not None and call.talk_seconds == 17
    # *2 1901 from the phone, completed at 30 s: the supervisor talks from then to 45 s
    await talking(calls, "pbx-9.8", "1001")
    await events.on_transfer(
        Event(
            {
                "Event": "AttendedTransfer",
                "Result": "Success",
                "OrigTransfererChannel": "PJSIP/1001-0000002b",
                "TransfereeUniqueid": "pbx-9.8",
                "TransferTargetChannel": f"Local/1901@{KEYS_CONTEXT}-00000003;1",
                "Timestamp": at(30),
            }
        )  # fmt: skip
    )
    # the consultation's own answer (before completion) is not the caller's leg
    await events.on_leg(answered("pbx-9.8", "1901", 10))
    await calls.hung_up(
        uniqueid="pbx-9.8", at=T0 + timedelta(seconds=45), queue_status=None, cause="16"
    )
    call = await calls.get("pbx-9.8")
    assert call is not None and call.talk_seconds == 27 + 15
    assert call.agent_extension == "1001", "a supervisor's desk phone is no agent of the record"
    (link,) = await service.chain(call.id)
    assert link.answered_at == link.done_at == T0 + timedelta(seconds=30)
    # a call never handed on keeps app_queue's talk time
    await talking(calls, "pbx-9.9", "1001")
    await calls.agent_completed(uniqueid="pbx-9.9", talk_seconds=33, reason="caller_hangup")
    await calls.hung_up(
        uniqueid="pbx-9.9", at=T0 + timedelta(seconds=60), queue_status=None, cause="16"
    )
    call = await calls.get("pbx-9.9")
    assert call is not None and call.talk_seconds == 33
