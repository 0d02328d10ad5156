"""Quality grading in a real browser (Debian's Chromium) on a real recording.

An admin defines a scorecard on its page; a supervisor flags a recorded call (two
voices spoken by espeak-ng), finds it in the work list, plays it, leaves a comment at
the moment the audio is at (a marker appears on the waveform; clicking it seeks
there) and grades it.  The agent, who may not replay calls in general, sees the
graded call under "My grades", reads the grade and the comment, and disputes it; a
supervisor answers the dispute with a new score, which the agent then sees.
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.browser import ARTIFACTS
from tests.panel.recorded import add_call, segments
from tests.panel.test_replay_browser import sign_in


def watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Console errors, page errors and failed requests of ``page``."""
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
    return problems


def real(problems: list[str]) -> list[str]:
    # wavesurfer's own inline <style> is refused by the CSP (see test_replay_browser.py)
    return [
        p
        for p in problems
        if not p.startswith("Failed to load resource") and "inline style" not in p
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_grade_comment_dispute_resolve(panel, voices, browser):
    ctx = panel.ctx
    call = await add_call(
        ctx, voices, started=datetime.now(UTC), agent="1001", transcript=segments(voices)
    )
    base = str(panel.client.make_url("")).rstrip("/")

    # -- the admin defines the scorecard on its page
    admin_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await admin_ctx.new_page()
    problems = watch(page)
    await sign_in(page, base, "admin")
    await page.goto(f"{base}/qa/scorecards")
    await page.fill("input[name=name]", "Phiếu chuẩn 1022")
    await page.fill("input[name=label_0]", "Chào hỏi đúng mẫu")
    await page.fill("input[name=weight_0]", "1")
    await page.fill("input[name=label_1]", "Lắng nghe, hỏi rõ địa chỉ")
    await page.fill("input[name=weight_1]", "3")
    await page.fill("input[name=label_2]", "Thông tin đúng")
    await page.check("input[name=fatal_2]")
    await page.click("#scorecard-form button.primary")
    await page.wait_for_selector(".flash")
    assert "1" in await page.inner_text(".flash")  # version 1
    assert await page.locator("#qa-cards li").count() == 1
    await page.screenshot(path=ARTIFACTS / "qa-1-scorecard.png", full_page=True)
    await admin_ctx.close()
    assert not real(problems), problems

    # -- a supervisor flags the call, finds it in the work list and opens it
    sup_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await sup_ctx.new_page()
    problems = watch(page)
    await sign_in(page, base, "sup")
    await page.goto(f"{base}/recordings/{call.id}")
    await page.fill("#qa-flag input[name=note]", "Công dân phàn nàn")
    await page.click("#qa-flag button")
    await page.wait_for_selector("#qa-sample")
    await page.goto(f"{base}/qa")
    row = page.locator(f"#qa-work tr[data-call='{call.id}']")
    assert await row.get_attribute("data-reason") == "flagged"
    await row.locator("a.grade-link").click()
    await page.wait_for_url(f"**/recordings/{call.id}*")
    await page.wait_for_selector("#waveform[data-ready=yes]", state="attached", timeout=15_000)

    # play past the second second, pause: the comment is taken at that moment
    await page.click("#play")
    await page.wait_for_function(
        "() => document.getElementById('audio').currentTime > 2.2", timeout=15_000
    )
    await page.click("#play")
    at = await page.evaluate("() => document.getElementById('audio').currentTime")
    assert at > 2.2
    await page.fill("#qa-comment-form textarea[name=text]", "Chưa xác nhận lại địa chỉ")
    await page.click("#qa-comment-form button")
    await page.wait_for_selector("#qa-comments li[data-at]")
    stored = float(await page.locator("#qa-comments li[data-at]").get_attribute("data-at"))  # type: ignore[arg-type]
    assert abs(stored - at) < 0.3, (stored, at)
    assert "Chưa xác nhận lại địa chỉ" in await page.inner_text("#qa-comments")

    # the marker sits on the waveform at its share of the call; clicking it seeks there
    await page.wait_for_selector("#qa-markers[data-placed=yes]", state="attached", timeout=15_000)
    marker = page.locator("#qa-markers .qa-marker")
    assert await marker.count() == 1 and await marker.is_visible()
    share = await page.evaluate(
        """() => { const m = document.querySelector('#qa-markers .qa-marker')
                       .getBoundingClientRect();
                   const w = document.getElementById('waveform').getBoundingClientRect();
                   return (m.left + m.width / 2 - w.left) / w.width; }"""
    )
    assert abs(share - stored / voices.seconds) < 0.03, (share, stored / voices.seconds)
    await page.evaluate("() => { document.getElementById('audio').currentTime = 0; }")
    await marker.click()
    moved = await page.evaluate("() => document.getElementById('audio').currentTime")
    assert abs(moved - stored) < 0.1, (moved, stored)

    # grade it: greeting 4/4, listening 2/4, correct information: (1 + 3 * 0.5) / 4 = 62.5
    await page.select_option("#mark-chao_hoi_dung_mau", "4")
    await page.select_option("#mark-lang_nghe_hoi_ro_dia_chi", "2")
    await page.select_option("#mark-thong_tin_dung", "1")
    await page.fill("#qa-grade-form textarea[name=summary]", "Cần hỏi lại địa chỉ chính xác")
    await page.click("#qa-grade-form button.primary")
    await page.wait_for_selector(".qa-grade")
    assert await page.inner_text(".qa-grade .score") == "62.5"
    await page.screenshot(path=ARTIFACTS / "qa-2-graded.png", full_page=True)
    assert not real(problems), problems

    # -- the agent sees their graded call (without the general right to replay) and disputes
    assert not ctx.settings.recordings.agents_replay_own
    agent_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
    apage = await agent_ctx.new_page()
    problems = watch(apage)
    await sign_in(apage, base, "agent1")
    await apage.click("#nav-qa-mine")
    mine = apage.locator(f"#qa-mine tr[data-call='{call.id}']")
    assert "62.5" in await mine.inner_text()
    await mine.locator("a").click()
    await apage.wait_for_url(f"**/recordings/{call.id}*")
    assert "Chưa xác nhận lại địa chỉ" in await apage.inner_text("#qa-comments")
    assert await apage.locator("#qa-grade-form").count() == 0  # agents do not grade
    await apage.wait_for_selector("#qa-markers[data-placed=yes]", state="attached", timeout=15_000)
    await apage.locator("#qa-markers .qa-marker").click()
    moved = await apage.evaluate("() => document.getElementById('audio').currentTime")
    assert abs(moved - stored) < 0.1
    await apage.fill(".qa-dispute-form textarea[name=reason]", "Tôi đã hỏi lại địa chỉ ở cuối")
    await apage.click(".qa-dispute-form button")
    await apage.wait_for_selector(".qa-dispute[data-state=open]")
    assert await apage.locator(".qa-dispute-form").count() == 0  # once
    await apage.screenshot(path=ARTIFACTS / "qa-3-disputed.png", full_page=True)
    assert not real(problems), problems

    # the other agent is refused the call
    other_ctx = await browser.new_context()
    opage = await other_ctx.new_page()
    await sign_in(opage, base, "agent2")
    refused = await opage.goto(f"{base}/recordings/{call.id}")
    assert refused is not None and refused.status == 403
    await other_ctx.close()

    # -- a supervisor answers the dispute with another score
    await page.goto(f"{base}/qa/disputes")
    await page.locator("#qa-disputes tr[data-grade] a").click()
    await page.wait_for_url(f"**/recordings/{call.id}*")
    await page.check(".qa-resolve-form input[value=changed]")
    await page.fill(".qa-resolve-form input[name=score]", "80")
    await page.fill(".qa-resolve-form textarea[name=note]", "Đúng, đã hỏi lại ở cuối cuộc gọi")
    await page.click(".qa-resolve-form button.primary")
    await page.wait_for_selector(".qa-dispute[data-state=changed]")
    assert await page.inner_text(".qa-grade .score") == "80"
    await sup_ctx.close()

    # the agent reads the answer
    await apage.reload()
    text = await apage.inner_text(".qa-grade")
    assert "80" in text and "62.5" in text and "Đúng, đã hỏi lại" in text
    await apage.screenshot(path=ARTIFACTS / "qa-4-resolved.png", full_page=True)
    await agent_ctx.close()
