"""pjsip.conf for every way of meeting the carrier and the phones: a trunk
matched by address, registering, authenticating our calls and its own;
phones over UDP, over TLS, with optional or required SRTP.  And each
impossible combination refused with the key that is wrong."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path

import pytest
import tomli_w

from core.settings import ConfigError, ensure_secrets, load_settings, secrets_path
from dialplan.render import render, tls_files, write
from hotline.app import AMI_EVENTS
from tests.helpers import EXAMPLE, make_home, self_signed_cert, settings_in


def config(trunk: dict | None = None, asterisk: dict | None = None) -> str:
    cfg = tomllib.loads(EXAMPLE.read_text())
    cfg["trunk"].update(trunk or {})
    cfg["asterisk"].update(asterisk or {})
    return tomli_w.dumps(cfg)


def pjsip(home: Path, text: str, **env: str) -> str:
    return render(settings_in(home, text, **env), AMI_EVENTS)["pjsip.conf"]


def section(conf: str, name: str, kind: str) -> dict[str, list[str]]:
    """The options of ``[name]`` whose type is ``kind`` (each option's values)."""
    for block in re.split(r"\n(?=\[)", conf):
        lines = [ln for ln in block.splitlines() if ln and not ln.startswith(";")]
        if lines and lines[0] == f"[{name}]" and f"type={kind}" in lines:
            out: dict[str, list[str]] = {}
            for ln in lines[1:]:
                key, _, value = ln.partition("=")
                out.setdefault(key, []).append(value)
            return out
    raise AssertionError(f"no [{name}] of type {kind} in pjsip.conf")


def has_section(conf: str, name: str, kind: str) -> bool:
    try:
        section(conf, name, kind)
    except AssertionError:
        return False
    return True


REGISTERING = {
    "register": True,
    "server": "sip.carrier.example:5060",
    "username": "842838221022",
}


def problems(home: Path, text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        pjsip(home, text, **env)
    return e.value.problems


# ---- the trunk ---------------------------------------------------------------


def test_by_address_alone_no_registration_no_auth(tmp_path):
    conf = pjsip(tmp_path, config())
    trunk = section(conf, "carrier", "endpoint")
    assert "auth" not in trunk and "outbound_auth" not in trunk
    assert section(conf, "carrier", "identify")["match"] == ["127.0.0.2"]
    assert not has_section(conf, "carrier", "registration")
    assert "contact" not in section(conf, "carrier", "aor")


def test_registering_trunk_registers_and_answers_challenges(tmp_path):
    conf = pjsip(tmp_path, config(REGISTERING), HOTLINE_TRUNK_PASSWORD="carrier-gave-this")
    reg = section(conf, "carrier", "registration")
    assert reg["server_uri"] == ["sip:sip.carrier.example:5060"]
    assert reg["client_uri"] == ["sip:842838221022@sip.carrier.example:5060"]
    assert reg["contact_user"] == ["842838221022"]
    assert reg["outbound_auth"] == ["carrier-out"] and reg["transport"] == ["transport-udp"]
    # the carrier's calls to our contact name the trunk by its line parameter
    assert reg["line"] == ["yes"] and reg["endpoint"] == ["carrier"]
    assert reg["expiration"] == ["3600"] and reg["auth_rejection_permanent"] == ["no"]
    out = section(conf, "carrier-out", "auth")
    assert out["username"] == ["842838221022"] and out["password"] == ["carrier-gave-this"]
    trunk = section(conf, "carrier", "endpoint")
    assert trunk["outbound_auth"] == ["carrier-out"] and "auth" not in trunk
    # our calls go to the registrar; the example's address is still matched too
    assert section(conf, "carrier", "aor")["contact"] == ["sip:sip.carrier.example:5060"]
    assert section(conf, "carrier", "identify")["match"] == ["127.0.0.2"]


def test_registering_trunk_with_no_address_a_domain_and_its_own_timers(tmp_path):
    trunk = {
        **REGISTERING,
        "match": [],
        "domain": "carrier.example",
        "expiry_seconds": 600,
        "retry_seconds": 20,
        "contact": "sip:sbc.carrier.example:5080",
    }
    conf = pjsip(tmp_path, config(trunk), HOTLINE_TRUNK_PASSWORD="pw")
    assert not has_section(conf, "carrier", "identify")
    reg = section(conf, "carrier", "registration")
    assert reg["client_uri"] == ["sip:842838221022@carrier.example"]
    assert reg["expiration"] == ["600"] and reg["retry_interval"] == ["20"]
    assert section(conf, "carrier", "aor")["contact"] == ["sip:sbc.carrier.example:5080"]


def test_an_account_without_registration_only_answers_challenges(tmp_path):
    trunk = {"username": "hotline", "contact": "sip:127.0.0.2:5060"}
    conf = pjsip(tmp_path, config(trunk), HOTLINE_TRUNK_PASSWORD="pw")
    assert not has_section(conf, "carrier", "registration")
    assert section(conf, "carrier", "endpoint")["outbound_auth"] == ["carrier-out"]
    assert section(conf, "carrier", "identify")["match"] == ["127.0.0.2"]


def test_the_carriers_calls_must_authenticate(tmp_path):
    conf = pjsip(
        tmp_path,
        config({**REGISTERING, "inbound_username": "carrier-in"}),
        HOTLINE_TRUNK_PASSWORD="ours",
        HOTLINE_TRUNK_INBOUND_PASSWORD="theirs",
    )
    trunk = section(conf, "carrier", "endpoint")
    assert trunk["auth"] == ["carrier-in"] and trunk["outbound_auth"] == ["carrier-out"]
    inbound = section(conf, "carrier-in", "auth")
    assert inbound["username"] == ["carrier-in"] and inbound["password"] == ["theirs"]


def test_registration_needs_a_server_and_an_account(tmp_path):
    found = problems(tmp_path / "a", config({"register": True}))
    assert any(p.startswith("trunk.server: register = true needs") for p in found), found
    assert any(p.startswith("trunk.username: register = true needs") for p in found), found
    found = problems(tmp_path / "b", config({"match": []}))
    assert found == [
        "trunk.match: list the carrier's addresses, or set register = true "
        "(its calls are then recognised by our registration)"
    ]
    found = problems(tmp_path / "c", config({**REGISTERING, "server": "sip:x.example"}))
    assert any(p.startswith("trunk.server:") for p in found), found


def test_an_account_with_no_password_is_refused_by_name(tmp_path):
    found = problems(tmp_path, config(REGISTERING))
    assert found == [
        "trunk.password: the carrier's password for trunk.username is not set "
        "(HOTLINE_TRUNK_PASSWORD, or password under [trunk] in var/secrets.toml)"
    ]


def test_a_mistyped_register_is_named(tmp_path):
    text = config().replace('name = "carrier"', 'name = "carrier"\nregistr = true', 1)
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, text)
    assert "trunk.registr: unknown key (did you mean 'register'?)" in e.value.problems


def test_secrets_file_keeps_the_carriers_password_and_makes_the_inbound_one(tmp_path):
    path = make_home(tmp_path, config({**REGISTERING, "inbound_username": "carrier-in"}))
    settings = load_settings(path, env={})
    secrets = secrets_path(settings.state_dir)
    secrets.parent.mkdir(parents=True)
    # the operator writes what the carrier gave (quotes and all)
    secrets.write_text('[trunk]\npassword = "we\\"ird\\\\pw"\n')
    ensure_secrets(settings)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    stored = tomllib.loads(secrets.read_text())
    assert stored["trunk"]["password"] == 'we"ird\\pw'
    made = stored["trunk"]["inbound_password"]
    assert len(made) >= 20 and stored["sip_passwords"]["1001"]
    settings = load_settings(path, env={})
    assert settings.trunk_password.get_secret_value() == 'we"ird\\pw'
    assert settings.trunk_inbound_password.get_secret_value() == made
    assert 'we"ird\\pw' not in repr(settings)  # never printed
    ensure_secrets(settings)  # nothing to add: the same file
    assert tomllib.loads(secrets.read_text()) == stored
    conf = render(settings, AMI_EVENTS)
    assert section(conf["pjsip.conf"], "carrier-out", "auth")["password"] == ['we"ird\\pw']
    for name, text in conf.items():
        if name != "pjsip.conf":
            assert made not in text and "ird" not in text, name


# ---- the phones --------------------------------------------------------------


def test_udp_phones_by_default_no_srtp(tmp_path):
    conf = pjsip(tmp_path, config())
    assert not has_section(conf, "transport-tls", "transport")
    phone = section(conf, "1001", "endpoint")
    assert phone["transport"] == ["transport-udp"] and "media_encryption" not in phone


@pytest.fixture
def cert(tmp_path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path / "certs")


def tls(cert: tuple[Path, Path], **more: object) -> dict:
    return {"tls": True, "tls_cert": str(cert[0]), "tls_key": str(cert[1]), **more}


@pytest.mark.parametrize(
    ("srtp", "encryption", "optimistic"),
    [("no", None, None), ("optional", ["sdes"], ["yes"]), ("required", ["sdes"], None)],
)
def test_tls_phones_with_each_srtp_choice_and_the_trunk_as_it_was(
    tmp_path, cert, srtp, encryption, optimistic
):
    settings = settings_in(tmp_path / "home", config(asterisk=tls(cert, srtp=srtp)))
    conf = render(settings, AMI_EVENTS)["pjsip.conf"]
    transport = section(conf, "transport-tls", "transport")
    assert transport["protocol"] == ["tls"] and transport["bind"] == ["127.0.0.1:5061"]
    files = tls_files(settings)
    assert transport["cert_file"] == [str(files.cert)]
    assert transport["priv_key_file"] == [str(files.key)]
    assert files.cert.is_relative_to(settings.asterisk_dir)  # the chroot sees it
    for agent in settings.agents:
        phone = section(conf, agent.extension, "endpoint")
        assert "transport" not in phone  # over UDP or TLS, whichever it registered on
        assert phone.get("media_encryption") == encryption
        assert phone.get("media_encryption_optimistic") == optimistic
    trunk = section(conf, "carrier", "endpoint")
    assert trunk["transport"] == ["transport-udp"] and "media_encryption" not in trunk


def test_tls_behind_nat_gives_the_public_address_on_tls_too(tmp_path, cert):
    more = tls(cert, bind_address="0.0.0.0", external_address="203.0.113.10", tls_port=5071)
    conf = pjsip(tmp_path / "home", config(asterisk=more))
    transport = section(conf, "transport-tls", "transport")
    assert transport["bind"] == ["0.0.0.0:5071"]
    assert transport["external_signaling_address"] == ["203.0.113.10"]
    assert "192.168.0.0/16" in transport["local_net"]


def test_the_certificate_and_key_are_copied_for_asterisk(tmp_path, cert):
    settings = settings_in(tmp_path / "home", config(asterisk=tls(cert, srtp="required")))
    etc = settings.asterisk_dir / "etc"
    write(settings, etc, AMI_EVENTS)
    files = tls_files(settings)
    assert files.cert.read_bytes() == cert[0].read_bytes()
    assert files.key.read_bytes() == cert[1].read_bytes()
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o640
    assert stat.S_IMODE(files.cert.parent.stat().st_mode) == 0o750
    renewed = self_signed_cert(tmp_path / "renewed")
    cert[0].write_bytes(renewed[0].read_bytes())
    cert[1].write_bytes(renewed[1].read_bytes())
    write(settings, etc, AMI_EVENTS)
    assert files.cert.read_bytes() == renewed[0].read_bytes()
    assert files.key.read_bytes() == renewed[1].read_bytes()


def test_tls_without_a_certificate_is_refused_with_a_clear_message(tmp_path, cert):
    found = problems(tmp_path / "a", config(asterisk={"tls": True}))
    assert found == [
        "asterisk.tls_cert: tls = true needs the path of the certificate (PEM, the full chain)",
        "asterisk.tls_key: tls = true needs the path of the private key (PEM)",
    ]
    missing = tmp_path / "nowhere" / "cert.pem"
    found = problems(tmp_path / "b", config(asterisk=tls((missing, cert[1]))))
    assert found == [f"asterisk.tls_cert: {missing}: no such file"]
    found = problems(tmp_path / "c", config(asterisk=tls(cert, tls_port=5060)))
    assert found == ["asterisk.tls_port: give TLS its own port (5061 is the usual one)"]


@pytest.mark.parametrize("srtp", ["optional", "required"])
def test_srtp_without_tls_is_refused(tmp_path, srtp):
    found = problems(tmp_path, config(asterisk={"srtp": srtp}))
    assert found == [
        f"asterisk.srtp: {srtp!r} needs tls = true (the SRTP keys travel in the SIP "
        "messages, which only TLS keeps secret)"
    ]


def test_srtp_must_be_one_of_three(tmp_path, cert):
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, config(asterisk=tls(cert, srtp="sometimes")))
    assert e.value.problems[0].startswith("asterisk.srtp: Input should be 'no'")


def test_everything_at_once(tmp_path, cert):
    """A registering, both-ways authenticated trunk beside TLS phones with SRTP."""
    conf = pjsip(
        tmp_path / "home",
        config(
            {**REGISTERING, "inbound_username": "carrier-in", "match": []},
            tls(cert, srtp="required"),
        ),
        HOTLINE_TRUNK_PASSWORD="ours",
        HOTLINE_TRUNK_INBOUND_PASSWORD="theirs",
    )
    trunk = section(conf, "carrier", "endpoint")
    assert trunk["transport"] == ["transport-udp"] and "media_encryption" not in trunk
    assert trunk["auth"] == ["carrier-in"] and trunk["outbound_auth"] == ["carrier-out"]
    assert section(conf, "carrier", "registration")["transport"] == ["transport-udp"]
    assert section(conf, "1001", "endpoint")["media_encryption"] == ["sdes"]
    assert has_section(conf, "transport-tls", "transport")
