"""ALTCHA's server side: our challenges, solved as the widget would (the library's own
solver), verify once; tampered, expired, foreign or replayed solutions do not."""

from __future__ import annotations

import base64
import json
import time
import uuid

import altcha as altcha_lib
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from core.settings import WebReportSettings
from public.altcha import Altcha
from tests.helpers import settings_in


@pytest.fixture
async def checker(tmp_path):
    settings = settings_in(tmp_path).model_copy(
        update={
            "web_report": WebReportSettings(altcha=True, altcha_cost=20),
            "form_secret": SecretStr("s3cret"),
        }
    )
    redis = aioredis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    prefix = f"test{uuid.uuid4().hex[:8]}"
    yield Altcha(settings, "s3cret", redis, prefix)
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def solved(challenge: dict) -> str:
    c = altcha_lib.Challenge.from_dict(challenge)
    solution = altcha_lib.solve_challenge(c)
    assert solution is not None
    return altcha_lib.Payload(c, solution).to_base64()


async def test_a_solution_verifies_once(checker):
    challenge = checker.challenge()
    assert challenge["parameters"]["algorithm"] == "PBKDF2/SHA-256"
    assert challenge["parameters"]["cost"] == 20 and challenge["signature"]
    payload = solved(challenge)
    assert await checker.verify(payload) is True
    assert await checker.verify(payload) is False  # the same solution again


async def test_tampered_expired_foreign_and_junk_payloads_are_refused(checker):
    challenge = checker.challenge()
    payload = json.loads(base64.b64decode(solved(challenge)))
    payload["challenge"]["parameters"]["cost"] = 1  # an easier challenge than ours
    assert await checker.verify(base64.b64encode(json.dumps(payload).encode()).decode()) is False
    old = checker.challenge(now=time.time() - 3600)
    assert await checker.verify(solved(old)) is False
    foreign = altcha_lib.create_challenge("PBKDF2/SHA-256", 20, hmac_secret="another")
    assert await checker.verify(solved(foreign.to_dict())) is False
    for junk in (None, "", "not base64!", "e30=", "x" * 20_000):
        assert await checker.verify(junk) is False
