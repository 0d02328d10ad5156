"""The agent's screen at 1366×768 and the panel's keyboard, in Debian's Chromium.

The call bar and the pop, fed by the real ``Presence`` over the bus and the
WebSocket (no Asterisk: the queue events are the ones tests/panel/test_presence.py
feeds; the same over real calls is tests/panel/test_agent_calls_browser.py): the
ticket form does not move when a call comes, its save button is in sight without
scrolling, the call timer runs, and every agent page shows the call.

The keys are sent as real key events through Chromium's DevTools protocol
(``Input.dispatchKeyEvent``), which go the way a keyboard's do: the browser's own
shortcuts (Alt+digit, Alt+F) would take them before the page.  Playwright's
``keyboard.press`` does not show that.  Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from callcenter.presence import Presence
from tests.browser import ARTIFACTS
from tests.panel.conftest import waiting_call
from tests.panel.test_presence import event
from tests.panel.test_words_browser import sign_in, watch

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

NUMBER = "0909123987"
UID = "pbx-1795345111.4"
SCREEN = {"width": 1366, "height": 768}

# key -> (code, Windows virtual key code, text typed, modifiers: 2 Ctrl, 8 Shift)
KEYS = {
    "?": ("Slash", 191, "?", 8),
    "/": ("Slash", 191, "/", 0),
    "Escape": ("Escape", 27, "", 0),
    "Enter": ("Enter", 13, "\r", 0),
    "Ctrl+Enter": ("Enter", 13, "", 2),
}


async def press(cdp, key: str) -> None:  # type: ignore[no-untyped-def]
    """One key as the keyboard sends it (down, then up), through the DevTools protocol."""
    if key in KEYS:
        code, vk, typed, modifiers = KEYS[key]
        name = key.rsplit("+", 1)[-1]
    else:  # a lower-case letter
        code, vk, typed, modifiers, name = f"Key{key.upper()}", ord(key.upper()), key, 0, key
    common = {
        "key": name,
        "code": code,
        "windowsVirtualKeyCode": vk,
        "nativeVirtualKeyCode": vk,
        "modifiers": modifiers,
    }
    down = {"type": "keyDown", "text": typed, "unmodifiedText": typed} if typed else {}
    await cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **common, **down})
    await cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})


async def typed(cdp, words: str) -> None:  # type: ignore[no-untyped-def]
    await cdp.send("Input.insertText", {"text": words})


async def in_sight(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``selector`` is wholly on the screen as the page is (not scrolled)."""
    return await page.evaluate(
        """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
             return window.scrollY === 0 && r.top >= 0 && r.bottom <= window.innerHeight
                    && r.height > 0; }""",
        selector,
    )


async def test_the_call_shows_on_every_agent_page_and_the_form_stays_put(panel, browser):
    ctx = panel.ctx
    base = str(panel.client.make_url("")).rstrip("/")
    await ctx.calls.sync_directory()
    await waiting_call(ctx, UID, NUMBER, 2)
    presence = Presence(ctx.bus, ctx.calls, ctx.settings, ctx.clock)
    context = await browser.new_context(viewport=SCREEN)
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        assert page.url.endswith("/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        await ctx.hub.ready.wait()
        assert await in_sight(page, "#ticket-form button.primary"), "save without scrolling"
        assert await page.inner_text("#callbar-phase") == "Không có cuộc gọi"
        assert await page.locator("#callbar-open").count() == 0, "the pop is on this page"
        form_at = await page.locator("#ticket-form").bounding_box()
        field_at = await page.locator("#ticket-form textarea[name=description]").bounding_box()
        bar_at = await page.locator("#callbar").bounding_box()

        await presence.on_called(
            event(
                "AgentCalled",
                Uniqueid=UID,
                Queue="t1022-morning",
                Interface="PJSIP/1001",
                MemberName="1001 Nguyễn Văn An",
                CallerIDNum=NUMBER,
            )
        )
        await page.wait_for_selector(f"#pop .caller:has-text('{NUMBER}')", timeout=10_000)
        assert await page.locator("#ticket-form").bounding_box() == form_at, "the form stays"
        field = page.locator("#ticket-form textarea[name=description]")
        assert await field.bounding_box() == field_at, "and so do its fields"
        assert await page.locator("#callbar").bounding_box() == bar_at
        assert await page.inner_text("#callbar-caller") == NUMBER
        assert await page.inner_text("#callbar-phase") == "Cuộc gọi đến"
        assert await in_sight(page, "#ticket-form button.primary")
        await presence.on_connect(event("AgentConnect", Uniqueid=UID, Interface="PJSIP/1001"))
        await page.wait_for_selector("#pop.talking")
        first = await page.inner_text("#pop-timer")
        assert re.fullmatch(r"0:0\d", first), first
        await page.wait_for_function(
            "(t) => document.querySelector('#pop-timer').textContent !== t", arg=first
        )
        assert await page.inner_text("#callbar-timer") == await page.inner_text("#pop-timer")
        await page.screenshot(path=ARTIFACTS / "agent-1366-talking.png")

        # any other page of the agent shows the call, with the way back to it
        for path in ("/tickets", "/callbacks", "/tickets/new"):
            await page.goto(f"{base}{path}")
            await page.wait_for_selector(f"#callbar.talking #callbar-caller:has-text('{NUMBER}')")
            assert await page.is_visible("#callbar-open")
        assert await in_sight(page, "#ticket-form button.primary"), "also on New ticket"
        await page.screenshot(path=ARTIFACTS / "agent-1366-callbar.png")
        await page.click("#callbar-open")
        await page.wait_for_selector(f"#pop.talking .caller:has-text('{NUMBER}')")
        assert not problems, problems
    finally:
        await context.close()
        await presence.stop()


async def test_the_shortcuts_reach_the_page_as_real_key_presses(panel, browser):
    base = str(panel.client.make_url("")).rstrip("/")
    context = await browser.new_context(viewport=SCREEN)
    try:
        page = await context.new_page()
        problems = watch(page)
        await sign_in(page, base, "agent1")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        cdp = await context.new_cdp_session(page)
        # no access keys: Chromium and Firefox take Alt+digit, Alt+F and the like first
        assert await page.locator("[accesskey]").count() == 0

        await press(cdp, "?")
        await page.wait_for_selector("#keys-help[open]")
        assert "Ctrl" in await page.inner_text("#keys-help")
        await page.screenshot(path=ARTIFACTS / "keys-help.png")
        await press(cdp, "Escape")
        await page.wait_for_selector("#keys-help:not([open])", state="attached")

        # "/" to the search box; Enter searches the tickets
        await press(cdp, "/")
        assert await page.evaluate("document.activeElement.id") == "quick-search"
        await typed(cdp, "ngập")
        await press(cdp, "Enter")
        await page.wait_for_url(re.compile(r".*/tickets\?q=.+"))
        assert await page.input_value("main input[name=q]") == "ngập"

        # "g" then a letter: where to go; in a text field, the keys are the field's
        await press(cdp, "g")
        await press(cdp, "w")
        await page.wait_for_url(f"{base}/agent")
        await page.wait_for_selector("#ws-status[data-state=open]", timeout=10_000)
        await press(cdp, "f")
        assert await page.evaluate("document.activeElement.name") == "description"
        await typed(cdp, "Cây đổ chắn đường ")
        for letter in "gt":
            await press(cdp, letter)
        await asyncio.sleep(0.3)
        assert page.url == f"{base}/agent", "typing g t in a field stays in the field"
        assert await page.input_value("textarea[name=description]") == "Cây đổ chắn đường gt"

        # Ctrl+Enter saves the form the cursor is in (no topic chosen: the server says so)
        await press(cdp, "Ctrl+Enter")
        await page.wait_for_selector("#ticket-form .error[role=alert]")
        assert await page.input_value("textarea[name=description]") == "Cây đổ chắn đường gt"

        # Esc leaves the field; then the single keys work again
        await page.focus("textarea[name=description]")
        await press(cdp, "Escape")
        await press(cdp, "g")
        await press(cdp, "t")
        await page.wait_for_url(f"{base}/tickets")
        assert not [p for p in problems if "422" not in p], problems
    finally:
        await context.close()
