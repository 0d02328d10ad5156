"""The API's contract is true: schemathesis generates requests from /api/openapi.json and
sends them, as every role, to a real panel on a loopback port; every check holds.

The document must say exactly what the server accepts: a request the schema allows is
not refused as invalid (positive data), one it forbids is refused (negative data), no
answer is a server error, and every answer has a documented status, content type and
shape.  A role the document's ``x-roles`` leave out is refused (403) whatever it sends.
Bounded and derandomized: the same requests on every run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.generation import GenerationMode

from tests.panel.conftest import PASSWORD
from tests.panel.test_api import API, TICKET, USER_OF

# examples per operation, per generation mode and role
EXAMPLES = 12
# ... for an operation the role may not call: the document says it is refused (403),
# before anything of the request is read, so a few show it
REFUSED_EXAMPLES = 3
# Operations that would end the very session the run signs with, or sign in by name
# (which counts failures against the fixture's accounts); test_api.py covers them.
SKIPPED = {("DELETE", "/api/v1/session"), ("POST", "/api/v1/session")}
# A file upload's bytes are checked by decoding them, which no schema can say: generated
# bytes are never a photo or a PDF (tests/panel/test_ticket_gaps.py sends real ones).
SKIPPED.add(("POST", "/api/v1/tickets/{code}/attachments"))


def _existing(case: Any, known: dict[str, Any]) -> None:
    """Point a positive case at rows that exist, so it reaches the handler's real work
    rather than a 404: the tickets, agencies and the spare user made for the run."""
    path = case.operation.path
    params = case.path_parameters or {}
    if "code" in params:
        params["code"] = known["tickets"][hash(str(case.body)) % len(known["tickets"])]
    if "id" in params:
        if path.startswith(f"{API}/users"):
            params["id"] = known["user"]
        elif path.startswith(f"{API}/kb/"):
            params["id"] = known["article"]
        else:
            params["id"] = known["agency"]
    if isinstance(case.body, dict):
        for name in ("agency_id", "parent_id"):
            if case.body.get(name) is not None:
                case.body[name] = known["agency"]
        if case.body.get("kb_article_id") is not None:
            case.body["kb_article_id"] = known["article"]
        case.body.pop("call_id", None)


def _checker(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    known: Any,
    refused: bool,
) -> Any:
    """The hypothesis test of one operation in one generation mode; ``refused``: the
    document's ``x-roles`` leave the caller's role out."""

    @hypothesis_settings(
        max_examples=REFUSED_EXAMPLES if refused else EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            _existing(case, known)
        response = case.call_and_validate(base_url=base_url, headers=headers)
        if refused:
            # a path the router cannot match (negative data) is not found before any role
            allowed = {403} if mode is GenerationMode.POSITIVE else {403, 404}
            assert response.status_code in allowed, (
                f"a role outside x-roles got {response.status_code}"
            )

    return check


def _run(
    schema: Any, base_url: str, headers: dict[str, str], known: dict[str, Any], role: str
) -> list[str]:
    """Every operation of ``schema`` with generated cases; the failures, one line each."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        roles = operation.definition.raw.get("x-roles", [])
        refused = "public" not in roles and role not in roles
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _checker(operation, mode, base_url, headers, known, refused)()
            except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - each failure is reported
                lines = [x.strip() for x in str(e).splitlines() if x.strip()]
                failures.append(
                    f"{operation.method.upper()} {operation.path} [{mode.value}]: "
                    + " | ".join(lines[:8])
                )
    return failures


@pytest.mark.parametrize("role", ["admin", "supervisor", "agent", "agency"])
async def test_every_operation_keeps_the_contract(panel: Any, role: str, database_url: str) -> None:
    if database_url.startswith("postgresql") and role != "admin":
        # the document and its checks do not depend on the database: PostgreSQL runs
        # the role that reaches every operation, SQLite every role
        pytest.skip("the other roles run on SQLite")
    await asyncio.wait_for(panel.ctx.hub.ready.wait(), 5)
    r = await panel.client.get("/api/openapi.json")
    doc = await r.json()
    schema = schemathesis.openapi.from_dict(doc)
    headers = await panel.token(USER_OF[role])
    base_url = str(panel.client.make_url("")).rstrip("/")
    admin = await panel.token("admin")
    known: dict[str, Any] = {"agency": panel.agency_ids["q1"], "tickets": []}
    r = await panel.client.post(
        f"{API}/kb/articles",
        json={
            "title": "Đăng ký tạm trú",
            "steps": "Nộp tờ khai CT01.",
            "agency_id": known["agency"],
        },
        headers=admin,
    )
    assert r.status == 201, await r.text()
    known["article"] = (await r.json())["id"]
    for level in (1, 2, 3):
        r = await panel.client.post(
            f"{API}/tickets",
            json={**TICKET, "level": level, "guidance": "Đã hướng dẫn." if level == 1 else None},
            headers=await panel.token("agent1"),
        )
        assert r.status == 201, await r.text()
        known["tickets"].append((await r.json())["code"])
    r = await panel.client.post(
        f"{API}/users",
        json={
            "username": "spare",
            "display_name": "Spare",
            "role": "agent",
            "password": PASSWORD,
            "extension": "1009",
        },
        headers=admin,
    )
    assert r.status == 201, await r.text()
    known["user"] = (await r.json())["id"]
    failures = await asyncio.to_thread(_run, schema, base_url, headers, known, role)
    assert not failures, "\n".join(failures)
