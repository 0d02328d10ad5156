"""Replay in a real browser: Debian's Chromium plays a recorded call.

A supervisor finds the call by words said ("ngập nước"), opens it, plays it
(waveform drawn by the vendored wavesurfer.js), the word being spoken lights
up, and clicking a word moves the audio there.  An agent without the right is
refused and leaves no trace in the audit log.  Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from recordings.audit import RecordingAccess
from tests.browser import ARTIFACTS
from tests.panel.conftest import PASSWORD
from tests.panel.recorded import add_call, segments


async def sign_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_load_state("domcontentloaded")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_supervisor_plays_and_seeks_by_word_agent_is_refused(
    panel,
    voices,
    browser,
):
    ctx = panel.ctx
    call = await add_call(
        ctx, voices, started=datetime.now(UTC), agent="1001", transcript=segments(voices)
    )
    base = str(panel.client.make_url("")).rstrip("/")

    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    await sign_in(page, base, "sup")

    # find it by the words said
    await page.goto(f"{base}/recordings?q=ngập+nước")
    hit = page.locator("tr.hit mark")
    assert await hit.inner_text() == "ngập nước"
    await page.screenshot(path=ARTIFACTS / "replay-1-search.png")
    await page.click(f"tr[data-call='{call.id}'] a.play-link")
    await page.wait_for_url(f"**/recordings/{call.id}")

    # the waveform is drawn (from the server's peaks); the audio loads on play
    await page.wait_for_selector("#waveform[data-ready=yes]", state="attached", timeout=15_000)

    # playing lights up the word being spoken
    await page.click("#play")
    await page.wait_for_function("() => document.getElementById('audio').readyState >= 1")
    duration = await page.evaluate("() => document.getElementById('audio').duration")
    assert abs(duration - voices.seconds) < 0.5
    await page.wait_for_function("() => document.getElementById('audio').currentTime > 0.5")
    await page.wait_for_selector("#transcript .w.current", timeout=5_000)
    lit = await page.evaluate(
        """() => { const w = document.querySelector('#transcript .w.current');
                   return [parseFloat(w.dataset.start),
                           document.getElementById('audio').currentTime]; }"""
    )
    assert lit[0] <= lit[1] + 0.1
    await page.click("#play")  # pause
    assert await page.evaluate("() => document.getElementById('audio').paused")
    await page.screenshot(path=ARTIFACTS / "replay-2-playing.png")

    # clicking a word seeks there and highlights it
    word = page.locator("#transcript .sp-citizen .w", has_text="ngập")
    start = float(await word.get_attribute("data-start"))  # type: ignore[arg-type]
    assert start > 2
    await word.click()
    moved, highlighted = await page.evaluate(
        """() => [document.getElementById('audio').currentTime,
                  [...document.querySelectorAll('#transcript .w')].find(
                      w => w.textContent === 'ngập').classList.contains('current')]"""
    )
    assert start - 0.05 <= moved <= start + 0.6, (moved, start)
    assert highlighted
    await page.wait_for_function(
        f"() => document.getElementById('audio').currentTime > {start + 0.3}", timeout=5_000
    )
    await page.screenshot(path=ARTIFACTS / "replay-3-seek-by-word.png")
    # the one thing refused: wavesurfer's own inline <style> (the CSP allows
    # none; panel.css gives its shadow parts the same rules)
    problems = [p for p in problems if not p.startswith("Failed to load resource")]
    assert all("inline style" in p for p in problems), problems

    # the playback rate applies to the audio
    await page.select_option("#rate", "1.5")
    assert await page.evaluate("() => document.getElementById('audio').playbackRate") == 1.5

    # a link to a moment (from a search hit or the ticket page) starts there
    await page.goto(f"{base}/recordings/{call.id}?t=3.00")
    await page.wait_for_function(
        "() => Math.abs(document.getElementById('audio').currentTime - 3) < 0.1"
    )

    # an agent without the right is refused, and that is not a replay
    agent_ctx = await browser.new_context(viewport={"width": 1366, "height": 768})
    agent_page = await agent_ctx.new_page()
    await sign_in(agent_page, base, "agent1")
    refused = await agent_page.goto(f"{base}/recordings/{call.id}")
    assert refused is not None and refused.status == 403
    refused = await agent_page.goto(f"{base}/recordings/{call.id}/audio")
    assert refused is not None and refused.status == 403
    await agent_ctx.close()

    # the admin reads who listened, in the audit log
    await context.clear_cookies()
    await sign_in(page, base, "admin")
    await page.goto(f"{base}/recordings/audit")
    row = page.locator(f"#audit tr[data-call='{call.id}'][data-action=play]")
    assert await row.count() == 1
    assert "Sup" in await row.inner_text()
    await page.screenshot(path=ARTIFACTS / "replay-4-audit-log.png")
    await context.close()

    async with ctx.db.session() as s:
        rows = list(await s.scalars(select(RecordingAccess)))
    # one replay (one play row per page session), and what was heard in it
    # (the second opening, at ?t=3, played nothing: no replay)
    assert [(r.user_name, r.action, r.call_id) for r in rows if r.action == "play"] == [
        ("Sup", "play", call.id)
    ]
    assert {r.action for r in rows} == {"play", "heard"}
    assert len({r.session for r in rows}) == 1


# the values of the call's details that must each sit on one line
SHORT_FACTS = ("Tổng đài 1022", "0903123456")


async def facts_lines(page) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """How many lines each detail's value takes (from its text's line boxes)."""
    return await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.call-facts dd')].map(dd => {
             const range = document.createRange();
             range.selectNodeContents(dd);
             const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
             return [dd.innerText.trim(), tops.size];
           }))"""
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("size", "name"), [((1366, 768), "desktop"), ((390, 844), "phone")], ids=["1366", "phone"]
)
async def test_replay_page_lays_out_fetches_no_audio_and_audits_what_is_heard(
    panel, voices, browser, size, name
):
    ctx = panel.ctx
    call = await add_call(
        ctx, voices, started=datetime.now(UTC), agent="1001", transcript=segments(voices)
    )
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(
        viewport={"width": size[0], "height": size[1]}, is_mobile=name == "phone"
    )
    page = await context.new_page()
    await sign_in(page, base, "sup")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    await page.goto(f"{base}/recordings/{call.id}")
    await page.wait_for_selector("#waveform[data-ready=yes]", state="attached", timeout=15_000)
    await page.wait_for_timeout(500)  # anything the page would still fetch on its own
    await page.screenshot(path=ARTIFACTS / f"replay-layout-{name}.png", full_page=True)

    # opening the page: the waveform from the server's peaks, no audio fetched
    assert any(u.endswith(f"/recordings/{call.id}/peaks") for u in requests), requests
    assert not [u for u in requests if "/audio" in u], requests
    assert await page.evaluate("() => document.getElementById('audio').readyState") == 0
    drawn = await page.evaluate(
        "() => document.querySelector('#waveform > div')"
        ".shadowRoot.querySelectorAll('canvas').length"
    )
    assert drawn > 0
    assert await page.inner_text("#dur") == "0:0" + str(int(voices.seconds))

    # the layout: no sideways scrolling, short details on one line each, the
    # player and the transcript as wide as the screen allows
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    lines = await facts_lines(page)
    for value in SHORT_FACTS:
        assert lines[value] == 1, lines
    assert all(n <= 2 for n in lines.values()), lines
    player = await page.locator("#player-card").bounding_box()
    assert player is not None and player["width"] >= min(size[0] - 40, 600)
    seg = await page.locator("#transcript .sp-citizen .said").bounding_box()
    assert seg is not None and seg["width"] >= 200

    # opening the page is not a replay
    async with ctx.db.session() as s:
        assert list(await s.scalars(select(RecordingAccess))) == []

    # pressing play: one "play" row, and on pause the range heard
    await page.click("#play")
    await page.wait_for_function("() => document.getElementById('audio').currentTime > 1.2")
    await page.click("#play")  # pause
    heard_until = await page.evaluate("() => document.getElementById('audio').currentTime")
    assert [u for u in requests if "/audio" in u]

    async def rows() -> list[RecordingAccess]:
        async with ctx.db.session() as s:
            return list(await s.scalars(select(RecordingAccess).order_by(RecordingAccess.id)))

    for _ in range(50):
        if len(await rows()) >= 2:
            break
        await page.wait_for_timeout(100)
    got = await rows()
    assert [(r.action, r.call_id, r.user_name) for r in got] == [
        ("play", call.id, "Sup"),
        ("heard", call.id, "Sup"),
    ]
    assert got[0].session and got[0].session == got[1].session
    assert got[1].heard == f"0:00–0:0{int(heard_until)}"

    # a second play in the same page session is no new replay; leaving the page
    # reports the ranges heard since
    await page.click("#play")
    await page.wait_for_function(
        f"() => document.getElementById('audio').currentTime > {heard_until + 1}"
    )
    await page.goto(f"{base}/recordings")
    for _ in range(50):
        if len(await rows()) >= 3:
            break
        await page.wait_for_timeout(100)
    got = await rows()
    assert [r.action for r in got] == ["play", "heard", "heard"]
    assert got[2].session == got[0].session
    assert got[2].heard is not None and got[2].heard.startswith("0:00–0:0")
    assert got[2].heard != got[1].heard

    # the admin reads it in the audit log
    await context.clear_cookies()
    await sign_in(page, base, "admin")
    await page.goto(f"{base}/recordings/audit?call={call.id}")
    heard_cells = await page.locator("#audit tr[data-action=heard] td.heard").all_inner_texts()
    assert heard_cells == [got[2].heard, got[1].heard]
    await context.close()
