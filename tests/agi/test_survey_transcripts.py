"""The satisfaction survey replayed from AGI dialogues recorded on the real Asterisk
(tests/agi/test_survey_call.py with the FastAGI trace on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import tomli_w
from sqlalchemy import func, select

from accounts.identity import SYSTEM
from agi.ivr import IVR
from agi.protocol import FastAGIServer
from agi.routes import routes
from agi.survey import Survey
from callcenter.models import Call, Outcome
from callcenter.service import CallService
from core.clock import FakeClock
from core.db import Database
from tests.agi_replay import Transcript, replay
from tests.helpers import settings_in
from tests.lab import lab_config
from tests.schema import migrated
from tickets.models import Rating, Status
from tickets.queries import TicketQueries
from tickets.ratings import RatingService
from tickets.service import TicketService

NOW = datetime(2026, 12, 6, 13, 30, tzinfo=UTC)


@pytest.fixture
async def server(tmp_path):
    settings = settings_in(tmp_path, tomli_w.dumps(lab_config()))
    migrated(settings.database)
    db = Database(settings.database)
    calls = CallService(db, settings)
    await calls.sync_directory()
    clock = FakeClock(NOW)
    tickets = TicketService(db, settings, clock)
    ratings = RatingService(db, clock)
    survey = Survey(settings, calls, ratings, tickets, clock)
    srv = FastAGIServer("127.0.0.1", 0, routes(IVR(settings, calls, clock), survey=survey))
    await srv.start()
    port = srv._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield db, tickets, TicketQueries(db, settings, clock), ratings, survey, port
    await srv.stop()
    await db.close()


async def answered_call(db: Database, t: Transcript) -> int:
    """The call the transcript's channel made, answered by extension 1001."""
    async with db.session() as s:
        call = Call(
            uniqueid=t.env_value("agi_uniqueid"),
            caller_number=t.env_value("agi_callerid"),
            hotline_number="1022",
            started_at=NOW,
            answered_at=NOW,
            ended_at=NOW,
            agent_extension="1001",
            agent_name="Nguyễn Thị Lan",
            outcome=Outcome.ANSWERED,
        )
        s.add(call)
        await s.flush()
        return call.id


async def closed_ticket(tickets: TicketService, call_id: int) -> int:
    ticket = await tickets.create(
        SYSTEM,
        {
            "channel": "phone",
            "domain": "state",
            "topic": "flooding",
            "level": 1,
            "description": "Hỏi thủ tục",
            "guidance": "Đã hướng dẫn",
        },
        call_id=call_id,
    )
    return ticket.id


async def ratings_count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Rating)) or 0)


async def test_rated_1_then_9_reopens_the_calls_report(server, tmp_path):
    db, tickets, queries, ratings, _, port = server
    t = Transcript.load("survey_rated_1_reopened", tmp_path)
    call_id = await answered_call(db, t)
    ticket_id = await closed_ticket(tickets, call_id)
    await replay(t, "127.0.0.1", port)
    rating = await ratings.for_call(call_id)
    assert rating is not None and (rating.rating, rating.source) == (1, "after_call")
    assert rating.ticket_id == ticket_id and rating.agent_extension == "1001"
    ticket = await queries.get(ticket_id)
    assert ticket.status == Status.REOPENED and ticket.reopens == 1
    last = (await queries.history(ticket_id))[-1]
    assert last.actor_name == "citizen" and "rated the handling 1 of 5" in last.details


async def test_a_database_fault_storing_the_rating_costs_the_caller_nothing(
    server, tmp_path, monkeypatch
):
    db, tickets, queries, ratings, _, port = server
    t = Transcript.load("survey_rated_1_reopened", tmp_path)
    call_id = await answered_call(db, t)
    ticket_id = await closed_ticket(tickets, call_id)

    async def broken(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(ratings, "record", broken)
    await replay(t, "127.0.0.1", port)  # the same dialogue, to the end
    assert await ratings_count(db) == 0
    assert (await queries.get(ticket_id)).status == Status.REOPENED


async def test_a_wrong_key_then_silence_stores_nothing(server, tmp_path):
    db, tickets, queries, _, _, port = server
    t = Transcript.load("survey_wrong_key_then_silence", tmp_path)
    call_id = await answered_call(db, t)
    ticket_id = await closed_ticket(tickets, call_id)
    sent = await replay(t, "127.0.0.1", port)
    assert sent[-1].endswith('/goodbye ""')
    assert await ratings_count(db) == 0
    assert (await queries.get(ticket_id)).status == Status.CLOSED


async def test_a_hang_up_while_asked_stores_nothing(server, tmp_path):
    db, tickets, _, _, _, port = server
    t = Transcript.load("survey_hangup_while_asked", tmp_path)
    await answered_call(db, t)
    await replay(t, "127.0.0.1", port)
    assert await ratings_count(db) == 0


async def test_bad_arguments_and_an_unknown_call_are_not_asked(server, tmp_path):
    """A kind the survey does not know, a ticket id that is no number, or a call with no
    record: the survey says nothing and the dialplan goes on."""
    db, *_, port = server
    t = Transcript.load("survey_hangup_while_asked", tmp_path)
    for args in (("", "lunch"), ("12x", "after_call"), ("", "after_call")):
        env = [
            line
            for line in t.env
            if not line.startswith(("agi_arg_1:", "agi_arg_2:", "agi_uniqueid:"))
        ]
        env += [f"agi_arg_1: {args[0]}", f"agi_arg_2: {args[1]}", "agi_uniqueid: pbx-0.0"]
        assert await replay(Transcript(env, []), "127.0.0.1", port) == []
    assert await ratings_count(db) == 0


async def test_a_result_call_names_the_ticket_and_reaches_the_same_survey(server, tmp_path):
    """The call telling the citizen the result is placed from outside the call records:
    the survey is given the ticket (argument 1) and the kind ``result_call``."""
    db, tickets, queries, ratings, _, port = server
    t = Transcript.load("survey_rated_1_reopened", tmp_path)
    other_call = await answered_call(db, t)  # the report came from an earlier call
    ticket_id = await closed_ticket(tickets, other_call)
    env = [line for line in t.env if not line.startswith(("agi_arg_", "agi_uniqueid:"))]
    env += [f"agi_arg_1: {ticket_id}", "agi_arg_2: result_call", "agi_uniqueid: pbx-9.9"]
    await replay(Transcript(env, t.steps), "127.0.0.1", port)
    async with db.session() as s:
        [rating] = (await s.scalars(select(Rating))).all()
    assert (rating.rating, rating.source, rating.call_id) == (1, "result_call", None)
    assert rating.ticket_id == ticket_id
    assert (await queries.get(ticket_id)).status == Status.REOPENED


async def test_the_database_gone_when_reopening_still_thanks_the_caller(
    server, tmp_path, monkeypatch
):
    db, tickets, queries, ratings, _, port = server
    t = Transcript.load("survey_rated_1_reopened", tmp_path)
    call_id = await answered_call(db, t)
    ticket_id = await closed_ticket(tickets, call_id)

    async def broken(*args, **kwargs):
        raise ConnectionError("database gone")

    monkeypatch.setattr(tickets, "reopen", broken)
    # the recorded dialogue up to the 9, then the thanks instead of "reopened"
    steps = [
        *t.steps[:4],
        (">", 'SET VARIABLE HOTLINE_SURVEY "rated"'),
        ("<", "200 result=1"),
        (">", f'STREAM FILE {tmp_path}/var/prompts/vi/survey_thanks ""'),
        ("<", "200 result=0 endpos=8000"),
    ]
    await replay(Transcript(t.env, steps), "127.0.0.1", port)
    assert (await ratings.for_call(call_id)).rating == 1
    assert (await queries.get(ticket_id)).status == Status.CLOSED
