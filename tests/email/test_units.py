"""Our own email logic without servers: parsing (kinds, text, HTML made safe,
attachments), the tracking codes a mail quotes, reading a FETCH response, the
headers of what we send, and the [email] settings."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import pytest

from core.settings import ConfigError, require_secrets
from inbox.email import external_id_of, quoted_codes
from mail.imap import ImapError, StartTlsProtocol, parse_fetch, starttls
from mail.outgoing import build, reply_subject
from mail.parse import AUTO_REPLY, BOUNCE, PERSON, parse, sanitize_html
from tests.helpers import settings_in
from tickets import codes, numbers


def _mail(**headers: str) -> bytes:
    m = EmailMessage()
    m["From"] = headers.pop("From", "Bà B <b@example.org>")
    m["To"] = "hotline@1022.example"
    m["Subject"] = headers.pop("Subject", "Hỏi thủ tục")
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content("Xin hỏi thủ tục cấp phép xây dựng.")
    return m.as_bytes()


def test_a_persons_mail_is_read_with_its_thread_headers() -> None:
    p = parse(_mail(Message_ID="<a@x>", In_Reply_To="<b@y>", References="<c@z> <b@y>"))
    assert p.kind == PERSON and p.answerable
    assert p.from_address == "b@example.org" and p.from_header == "Bà B <b@example.org>"
    assert (p.message_id, p.in_reply_to, p.references) == ("<a@x>", "<b@y>", ["<c@z>", "<b@y>"])
    assert p.subject == "Hỏi thủ tục" and "cấp phép" in p.text


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"From": "MAILER-DAEMON@mx.example"}, BOUNCE),
        ({"From": "postmaster@mx.example"}, BOUNCE),
        ({"Return_Path": "<>"}, BOUNCE),
        ({"Auto_Submitted": "auto-replied"}, AUTO_REPLY),
        ({"Auto_Submitted": "no"}, PERSON),
        ({"X_Autoreply": "yes"}, AUTO_REPLY),
        ({"Precedence": "bulk"}, AUTO_REPLY),
        ({"Precedence": "junk"}, AUTO_REPLY),
        ({"X_Auto_Response_Suppress": "OOF"}, AUTO_REPLY),
        ({"List_Id": "<news.example>"}, AUTO_REPLY),
        ({"Return_Path": "<b@example.org>"}, PERSON),
    ],
)
def test_bounces_and_robots_are_recognised(headers: dict[str, str], kind: str) -> None:
    assert parse(_mail(**headers)).kind == kind


def test_a_multipart_report_is_a_bounce() -> None:
    raw = (
        b"From: mx@example.org\r\nContent-Type: multipart/report; report-type=delivery-status;"
        b' boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B--\r\n'
    )
    assert parse(raw).kind == BOUNCE


def test_html_is_sanitised_and_gives_the_text_when_no_plain_part() -> None:
    m = EmailMessage()
    m["From"] = "c@example.org"
    m.set_content(
        "<p style='x' onmouseover='evil()'>Xin <i>chào</i><script>steal()</script></p>"
        "<img src='http://t.example/p.gif'><a href='javascript:x()'>a</a>"
        "<svg onload='x()'></svg><object data='x'></object>",
        subtype="html",
    )
    p = parse(m.as_bytes())
    assert p.html is not None
    for bad in ("script", "steal", "onmouseover", "style", "<img", "javascript", "svg", "object"):
        assert bad not in p.html
    assert "<i>chào</i>" in p.html
    assert p.text.split() == ["Xin", "chào", "a"]
    assert sanitize_html('<a href="https://x.example">x</a>') == (
        '<a href="https://x.example" rel="noopener noreferrer nofollow">x</a>'
    )


def test_attachments_are_found_and_a_malformed_mail_does_not_raise() -> None:
    m = EmailMessage()
    m["From"] = "c@example.org"
    m.set_content("xem ảnh")
    m.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="don.pdf")
    p = parse(m.as_bytes())
    assert [(a.filename, a.content_type) for a in p.attachments] == [("don.pdf", "application/pdf")]
    broken = parse(b"From: =?bogus?Q?x?= <<<\r\nSubject: \xff\xfe\r\nContent-Type: text/plain; "
                   b"charset=no-such-charset\r\n\r\n\xff\xfe ok")  # fmt: skip
    assert "ok" in broken.text and broken.from_address == ""


def test_quoted_codes_need_a_right_check_symbol() -> None:
    # with a digit: a code of letters only, lower case and without its dash, is a word
    # (tickets.codes.code_like), and is not taken for a code
    code = next(c for c in iter(codes.new_code, "") if any(ch.isdigit() for ch in c))
    number = numbers.new_number()
    text = f"Về mã {code} và số {numbers.format_number(number)}, mã sai ABC-DEFG"
    found = quoted_codes(text)
    assert ("code", code) in found
    assert ("number", number) in found
    assert all(v != "ABC-DEFG" for _, v in found)
    assert quoted_codes(code.lower().replace("-", "")) == [("code", code)]
    assert quoted_codes("gọi 0901234567 hoặc 1900 1234") == []


def test_a_long_message_id_is_hashed_to_fit() -> None:
    long = "<" + "x" * 300 + "@example.org>"
    assert external_id_of("<a@b>") == "<a@b>"
    assert external_id_of(long).startswith("sha256:") and len(external_id_of(long)) < 200


def test_a_fetch_response_is_read_whatever_the_order_of_its_items() -> None:
    lines = [
        b"1 FETCH (UID 7 RFC822.SIZE 12 BODY[] {12}",
        bytearray(b"Subject: a\r\n"),
        b")",
        b"2 FETCH (RFC822.SIZE 5 BODY[] {5}",
        bytearray(b"hello"),
        b" UID 9)",
        b"3 FETCH (UID 11 RFC822.SIZE 99)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    assert parse_fetch(lines) == [(7, 12, b"Subject: a\r\n"), (9, 5, b"hello"), (11, 99, None)]


def test_what_we_send_carries_the_thread(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    refs = [f"<r{i}@x>" for i in range(30)]
    m = build(
        settings, "c@example.org", reply_subject("Re: Ngập"), "nội dung",
        html="<p>nội dung</p>", in_reply_to="<p@x>", references=refs, automatic=True,
    )  # fmt: skip
    assert m["Subject"] == "Re: Ngập" and m["In-Reply-To"] == "<p@x>"
    sent_refs = m["References"].split()
    assert len(sent_refs) == 20 and sent_refs[0] == "<r0@x>" and sent_refs[-1] == "<p@x>"
    assert m["Message-ID"].endswith("@localhost>") and m["Auto-Submitted"] == "auto-generated"
    assert m.get_body(("html",)) is not None
    assert reply_subject("Ngập") == "Re: Ngập" and reply_subject("") == "Re:"
    with pytest.raises(ValueError, match="In-Reply-To"):
        build(settings, "c@example.org", "s", "t", headers={"In-Reply-To": "<x@y>"})


def _email_problems(settings) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        require_secrets(settings)
    except ConfigError as e:
        return [p for p in e.problems if p.startswith("email.")]
    return []


def test_email_settings_are_off_by_default_and_need_their_passwords(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "a")
    assert settings.email.enabled is False
    assert _email_problems(settings) == []  # nothing asked of a mailbox that is off
    text = (Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text()
    on = text.replace("[email]\n", '[email]\nteam = "t1022"\n', 1).replace(
        "enabled = false\naddress", "enabled = true\naddress", 1
    )
    settings = settings_in(tmp_path / "b", on)
    assert settings.email.enabled and settings.email_team == "t1022"
    problems = _email_problems(settings)
    assert [p.split(":")[0] for p in problems] == ["email.imap_password", "email.smtp_password"]
    settings = settings_in(
        tmp_path / "c",
        on,
        HOTLINE_EMAIL_IMAP_PASSWORD="i",
        HOTLINE_EMAIL_SMTP_PASSWORD="s",
    )
    assert settings.email_imap_password.get_secret_value() == "i"
    assert "'i'" not in repr(settings)
    with pytest.raises(ConfigError, match="email.team: no team 'nobody'"):
        settings_in(tmp_path / "d", on.replace('team = "t1022"', 'team = "nobody"'))


def test_hotline_status_shows_the_mailbox_without_making_it_required() -> None:
    from hotline.status import healthy, render

    status = {
        "asterisk": {"running": True, "version": "22"},
        "application": {"pid": 1, "readiness": {"status": "ready", "checks": {}}},
        "email": {
            "address": "1022@example.org",
            "imap": "imap.example.org:993 (tls) as 1022, INBOX",
            "smtp": "smtp.example.org:587 (starttls) as 1022",
        },
    }
    assert (
        "email: 1022@example.org: IMAP imap.example.org:993 (tls) as 1022, INBOX; "
        "SMTP smtp.example.org:587 (starttls) as 1022"
    ) in render(status).splitlines()
    assert healthy(status)


def test_text_no_database_could_store_is_cleaned() -> None:
    raw = b"From: c@example.org\r\nSubject: a\x00b\r\nContent-Type: text/plain\r\n\r\nx\x00y \xff"
    p = parse(raw)
    assert "\x00" not in p.subject + p.text
    p.text.encode("utf-8")  # no lone surrogate left
    p.subject.encode("utf-8")


# -- STARTTLS (mail/imap.py): the boundary of the plain text, and the refusals -----------


class _Wire:
    """The protocol's transport here: what the client wrote, nothing sent anywhere."""

    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def _greeted(capabilities: str = "IMAP4rev1 STARTTLS AUTH=PLAIN") -> tuple[StartTlsProtocol, _Wire]:
    """A protocol the server greeted (not logged in), offering ``capabilities``."""
    protocol = StartTlsProtocol(asyncio.get_running_loop())
    wire = _Wire()
    protocol.connection_made(wire)  # type: ignore[arg-type]
    protocol.state = aioimaplib.NONAUTH
    protocol.capabilities = set(capabilities.split())
    return protocol, wire


async def _sent_starttls(wire: _Wire) -> bytes:
    """The tag of the STARTTLS command, once the client has written it."""
    for _ in range(50):
        if wire.sent.endswith(b"\r\n"):
            break
        await asyncio.sleep(0)
    tag, _, command = wire.sent.partition(b" ")
    assert command == b"STARTTLS\r\n", wire.sent
    return tag


async def test_starttls_refuses_what_comes_in_clear_after_the_servers_ok() -> None:
    protocol, wire = _greeted()
    before = set(protocol.capabilities)
    upgrade = asyncio.ensure_future(
        starttls(protocol, ssl.create_default_context(), "127.0.0.1", 5)
    )
    tag = await _sent_starttls(wire)
    # a man in the middle adds a capability list in the same packet as the OK, and more
    injected = b"* CAPABILITY IMAP4rev1 AUTH=PLAIN LOGINDISABLED\r\n"
    protocol.data_received(tag + b" OK Begin TLS negotiation now\r\n" + injected)
    protocol.data_received(b"* OK more\r\n")
    with pytest.raises(ImapError, match=f"sent {len(injected) + 11} bytes in clear"):
        await upgrade
    # never read as the server's words, and nothing secret was written
    assert protocol.capabilities == before
    assert wire.sent == tag + b" STARTTLS\r\n"


async def test_a_clean_ok_even_split_across_packets_goes_on_to_the_tls_handshake() -> None:
    protocol, wire = _greeted()
    upgrade = asyncio.ensure_future(
        starttls(protocol, ssl.create_default_context(), "127.0.0.1", 5)
    )
    tag = await _sent_starttls(wire)
    protocol.data_received(b"* OK still plain\r\n" + tag + b" OK Beg")
    protocol.data_received(b"in TLS negotiation now\r\n")
    # the next step is asyncio's start_tls, which this stand-in transport cannot do
    with pytest.raises(TypeError, match="start_tls"):
        await upgrade
    assert protocol.after_starttls == 0 and protocol.plain_closed is False


@pytest.mark.parametrize(
    ("capabilities", "state", "answer", "why"),
    [
        ("IMAP4rev1 AUTH=PLAIN", aioimaplib.NONAUTH, None, "does not offer it"),
        ("IMAP4rev1 STARTTLS", aioimaplib.AUTH, None, "already logged in"),
        ("IMAP4rev1 STARTTLS", aioimaplib.NONAUTH, b"NO not now", "STARTTLS: NO"),
        ("IMAP4rev1 STARTTLS", aioimaplib.NONAUTH, b"BAD what", "STARTTLS: BAD"),
    ],
)
async def test_starttls_refusals_say_why_and_send_nothing_secret(
    capabilities: str, state: str, answer: bytes | None, why: str
) -> None:
    protocol, wire = _greeted(capabilities)
    protocol.state = state
    upgrade = asyncio.ensure_future(
        starttls(protocol, ssl.create_default_context(), "127.0.0.1", 5)
    )
    said = b""
    if answer is not None:
        tag = await _sent_starttls(wire)
        said = tag + b" STARTTLS\r\n"
        protocol.data_received(tag + b" " + answer + b"\r\n")
    with pytest.raises(ImapError, match=why):
        await upgrade
    assert wire.sent == said  # STARTTLS at most: no LOGIN, no password


def test_imap_tls_takes_starttls_and_keeps_the_older_values(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "config" / "hotline.example.toml").read_text()

    def with_imap(port: int, tls: str) -> str:
        return text.replace(
            'imap_port = 993\nimap_tls = "tls"', f'imap_port = {port}\nimap_tls = "{tls}"', 1
        )

    assert with_imap(143, "starttls") != text
    for i, (port, tls) in enumerate([(143, "starttls"), (993, "tls"), (143, "none")]):
        settings = settings_in(tmp_path / str(i), with_imap(port, tls))
        assert (settings.email.imap_port, settings.email.imap_tls) == (port, tls)
    with pytest.raises(ConfigError) as wrong:
        settings_in(tmp_path / "ssl", with_imap(993, "ssl"))
    assert [p.split(":")[0] for p in wrong.value.problems] == ["email.imap_tls"]
    assert "'tls', 'starttls' or 'none'" in wrong.value.problems[0]
    with pytest.raises(ConfigError) as crossed:
        settings_in(tmp_path / "crossed", with_imap(993, "starttls"))
    [problem] = crossed.value.problems
    assert problem.startswith("email.imap_tls: starttls upgrades a plain connection")
    assert "imap_port 993" in problem and 'imap_tls = "tls"' in problem
