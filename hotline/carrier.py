"""A simulated carrier and agents' phones: a second Asterisk for local test calls.

It sends real SIP calls (G.711 A-law, RFC 4733 DTMF) to the hotline from
127.0.0.2, as a carrier would, and registers every configured agent from
127.0.0.3 as an auto-answering phone.  Callers play a 440 Hz tone after
their keys; agents play a 1000 Hz tone, so a recording's two sides can be
told apart.

It follows the hotline's SIP settings: for a trunk with an account it is
the registrar that wants the account's password (for REGISTERs and for the
hotline's calls) and calls the contact the hotline registered; for
``inbound_username`` its calls authenticate; with ``asterisk.tls`` the
phones register over TLS (and talk SRTP when ``asterisk.srtp`` asks).  The
phones' endpoint is found by the ``line`` parameter of their registrations,
as a softphone's would be, so the trunk endpoint may demand a password.
Supervisors' desk phones (``supervision.phones``) register too:
they answer, play a 1500 Hz tone and record what they hear (under
``heard/``); agents' phones record what they hear as well while the global
``RECORD_HEARD`` is 1 (:meth:`Carrier.record_heard`).  The test suite, the
benchmark and ``hotline test-call`` use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.ami import AMIClient
from core.settings import Settings
from dialplan.render import EMPTY_FILES, modules_conf
from hotline.pbx import AsteriskInstance

log = logging.getLogger(__name__)

CALLER_TONE_HZ = 440
AGENT_TONE_HZ = 1000
# Numbers the carrier lets ring unanswered (a citizen who does not pick up): 0899xxxxxx.
NO_ANSWER_PREFIX = "0899"
SUPERVISOR_TONE_HZ = 1500


@dataclass(frozen=True)
class CarrierAddresses:
    trunk_ip: str = "127.0.0.2"
    agents_ip: str = "127.0.0.3"
    sip_port: int = 5060
    # the phones' TLS transport (TCP, on agents_ip) when the hotline takes TLS
    tls_port: int = 5061
    ami_port: int = 5039
    rtp_start: int = 30000
    rtp_end: int = 40000


def _tone(path: Path, hz: int, seconds: int) -> None:
    """A tone as A-law, what the calls carry: the carrier plays it without transcoding."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "8000",
            "-c",
            "1",
            "-t",
            "al",
            str(path),
            "synth",
            str(seconds),
            "sine",
            str(hz),
            "vol",
            "0.5",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


class Carrier:
    """The carrier instance; see the module docstring."""

    def __init__(
        self,
        pbx: Settings,
        state_dir: Path,
        root: Path | None,
        addresses: CarrierAddresses | None = None,
        *,
        agent_talk_seconds: int = 3600,
        register_agents: bool = True,
        registrar_password: str | None = None,
        inbound_password: str | None = None,
    ) -> None:
        self.pbx = pbx
        # what the hotline's registration and calls must give, and what the
        # carrier's calls give the hotline: the trunk's passwords unless a
        # test wants them refused
        self.registrar_password = registrar_password
        self.inbound_password = inbound_password
        # check the hotline's TLS certificate (it must name the hotline's address)
        self.verify_tls = False
        self.register_agents = register_agents
        self.addr = addresses or CarrierAddresses()
        self.agent_talk_seconds = agent_talk_seconds
        # how long the emergency desk (113, 114, 115) talks before it hangs up
        self.emergency_talk_seconds = 6
        self.secret = uuid.uuid4().hex
        self.instance = AsteriskInstance(name="carrier", state_dir=state_dir, root=root)
        self.sounds = state_dir / "sounds"
        # what phones heard (wav, the read side of the phone's channel)
        self.heard_dir = state_dir / "heard"
        self.ami: AMIClient | None = None

    # ---- configuration ------------------------------------------------------
    def write_config(self) -> None:
        inst, a = self.instance, self.addr
        inst.write_asterisk_conf()
        _tone(self.sounds / "caller.alaw", CALLER_TONE_HZ, 40)
        _tone(self.sounds / "agent.alaw", AGENT_TONE_HZ, 40)
        _tone(self.sounds / "supervisor.alaw", SUPERVISOR_TONE_HZ, 40)
        self.heard_dir.mkdir(parents=True, exist_ok=True)
        pbx = self.pbx
        regs = self._phones(inst.etc_dir) if self.register_agents else ""
        files = {
            "modules.conf": modules_conf(),
            "logger.conf": "[logfiles]\nmessages.log => notice,warning,error\n",
            "rtp.conf": f"[general]\nrtpstart={a.rtp_start}\nrtpend={a.rtp_end}\n",
            "cdr.conf": "[general]\nenable=no\n",
            "manager.conf": (
                f"[general]\nenabled=yes\nbindaddr={a.trunk_ip}\nport={a.ami_port}\n\n"
                f"[carrier]\nsecret={self.secret}\nread=all\nwrite=all\n"
                "eventfilter(action(include),name(OriginateResponse))=\n"
                "eventfilter(action(include),name(UserEvent))=\n"
                "eventfilter(action(include),name(Hangup))=\n"
                "eventfilter(action(include),name(CoreShowChannel))=\n"
                "eventfilter(action(include),name(CoreShowChannelsComplete))=\n"
            ),
            "pjsip.conf": self._pjsip() + regs,
            "extensions.conf": (
                "[general]\nstatic=yes\n\n"
                "[globals]\n"
                f"AGENT_TALK={self.agent_talk_seconds}\n"
                f"EMERGENCY_TALK={self.emergency_talk_seconds}\n"
                "; a directory to record what answered phones hear in (AMI Setvar; empty: not)\n"
                "CARRIER_RECORD=\n"
                "; agents' phones record what they hear while 1 (Carrier.record_heard)\n"
                "RECORD_HEARD=0\n\n"
                "; calls from the hotline to an agent's phone: answer and talk\n"
                "[agent-phones]\n"
                + "".join(
                    f"exten => {p.extension},1,Answer()\n"
                    " same => n,UserEvent(SupervisorAnswered,Extension: ${EXTEN})\n"
                    f" same => n,MixMonitor({self.heard_dir}/${{EXTEN}}-${{UNIQUEID}}.wav,"
                    f"r({self.heard_dir}/${{EXTEN}}-${{UNIQUEID}}-in.wav))\n"
                    " same => n,Set(TIMEOUT(absolute)=${AGENT_TALK})\n"
                    f" same => n,Playback({self.sounds}/supervisor)\n"
                    " same => n,Wait(${AGENT_TALK})\n"
                    " same => n,Hangup()\n"
                    for p in pbx.supervision.phones
                )
                + "; ... or to the police, fire brigade, ambulance: their desk answers\n"
                "exten => _11[345],1,Answer()\n"
                " same => n,UserEvent(EmergencyAnswered,Number: ${EXTEN},"
                "Caller: ${CALLERID(num)})\n"
                " same => n,Set(TIMEOUT(absolute)=${EMERGENCY_TALK})\n"
                f" same => n,Playback({self.sounds}/agent)\n"
                " same => n,Wait(${EMERGENCY_TALK})\n"
                " same => n,Hangup()\n"
                "; ... or to a citizen who does not pick up (08 99...): it rings, unanswered\n"
                f"exten => _{NO_ANSWER_PREFIX}XXXXXX,1,Ringing()\n"
                " same => n,Wait(600)\n"
                " same => n,Hangup()\n"
                "exten => _X.,1,Answer()\n"
                ' same => n,ExecIf($["${CARRIER_RECORD}" != ""]?MixMonitor('
                "${CARRIER_RECORD}/${UNIQUEID}.wav,r(${CARRIER_RECORD}/${EXTEN}-heard.wav)))\n"
                " same => n,UserEvent(AgentAnswered,Extension: ${EXTEN},Caller: ${CALLERID(num)})\n"
                ' same => n,ExecIf($["${RECORD_HEARD}" = "1"]?MixMonitor('
                f"{self.heard_dir}/${{EXTEN}}-${{UNIQUEID}}.wav,"
                f"r({self.heard_dir}/${{EXTEN}}-${{UNIQUEID}}-in.wav)))\n"
                " same => n,Set(TIMEOUT(absolute)=${AGENT_TALK})\n"
                f" same => n,Playback({self.sounds}/agent)\n"
                " same => n,Wait(${AGENT_TALK})\n"
                " same => n,Hangup()\n\n"
                "; the citizen's side of a test call (variables set by Originate)\n"
                "[caller]\n"
                "; what the caller hears, while RECORD_HEARD is 1 (heard/caller<number>-...)\n"
                'exten => script,1,ExecIf($["${RECORD_HEARD}" = "1"]?MixMonitor('
                f"{self.heard_dir}/caller${{CALLERID(num)}}-${{UNIQUEID}}.wav,"
                f"r({self.heard_dir}/caller${{CALLERID(num)}}-${{UNIQUEID}}-in.wav)))\n"
                " same => n,Wait(${CALL_WAIT})\n"
                ' same => n,ExecIf($["${CALL_DIGITS}" != ""]'
                "?SendDTMF(${CALL_DIGITS},${CALL_DTMF_GAP}))\n"
                "; when the keys went out (a test times what the hotline did next)\n"
                ' same => n,ExecIf($["${CALL_DIGITS}" != ""]'
                "?UserEvent(CallerKeys,Caller: ${CALLERID(num)},Digits: ${CALL_DIGITS}))\n"
                "; on cue: the second keys wait for the test's CALL_CUED (at most a minute)\n"
                " same => n,Set(CUE_UNTIL=$[${EPOCH} + 60])\n"
                ' same => n,While($["${CALL_CUE}" = "1" & "${CALL_CUED}" != "1"'
                " & ${EPOCH} < ${CUE_UNTIL}])\n"
                " same => n,Wait(0.1)\n"
                " same => n,EndWhile()\n"
                ' same => n,ExecIf($["${CALL_DIGITS2}" != ""]?Wait(${CALL_WAIT2}))\n'
                ' same => n,ExecIf($["${CALL_DIGITS2}" != ""]'
                "?SendDTMF(${CALL_DIGITS2},${CALL_DTMF_GAP}))\n"
                " same => n,ExecIf($[${CALL_HOLD} <= 0]?Hangup())\n"
                " same => n,Set(TIMEOUT(absolute)=${CALL_HOLD})\n"
                ' same => n,ExecIf($["${CALL_SOUND}" != ""]?Playback(${CALL_SOUND})'
                f":Playback({self.sounds}/caller))\n"
                " same => n,Wait(3600)\n"
                " same => n,Hangup()\n"
            ),
        }
        for name in (*EMPTY_FILES, "features.conf"):
            files.setdefault(name, "")
        for name, text in files.items():
            (inst.etc_dir / name).write_text(text)

    def _pjsip(self) -> str:
        """The carrier's SIP side: its trunk to the hotline, and the phones' transports.

        With the hotline's ``trunk.username``, the hotline's REGISTERs and
        calls must authenticate (``registrar_password``); with ``register``
        the carrier calls the contact the hotline registered instead of its
        address; with ``inbound_username`` its own calls answer the hotline's
        challenge.
        """
        a, pbx = self.addr, self.pbx
        trunk = pbx.trunk
        pbx_sip = f"{pbx.asterisk.bind_address}:{pbx.asterisk.sip_port}"
        aor = trunk.username if trunk.registers and trunk.username else "pbx"
        text = (
            "[global]\ntype=global\nendpoint_identifier_order=ip,username\n"
            "user_agent=test-carrier\n\n"
            f"[transport-trunk]\ntype=transport\nprotocol=udp\nbind={a.trunk_ip}:{a.sip_port}\n\n"
            f"[transport-agents]\ntype=transport\nprotocol=udp\n"
            f"bind={a.agents_ip}:{a.sip_port}\n\n"
            "[pbx]\ntype=endpoint\ntransport=transport-trunk\ncontext=agent-phones\n"
            "disallow=all\nallow=alaw\ndtmf_mode=rfc4733\ndirect_media=no\n"
            f"rtp_symmetric=yes\naors={aor}\nsend_pai=yes\n"
        )
        if trunk.username:
            text += "auth=pbx-account\n"
        if trunk.inbound_username:
            text += "outbound_auth=pbx-inbound\n"
        if aor == "pbx":
            text += f"\n[pbx]\ntype=aor\ncontact=sip:{pbx_sip}\n"
        else:
            text += f"\n[{aor}]\ntype=aor\nmax_contacts=1\nremove_existing=yes\n"
        text += f"\n[pbx]\ntype=identify\nendpoint=pbx\nmatch={pbx.asterisk.bind_address}\n"
        if trunk.username:
            password = self.registrar_password
            if password is None:
                password = pbx.trunk_password.get_secret_value()
            text += (
                f"\n[pbx-account]\ntype=auth\nauth_type=userpass\nusername={trunk.username}\n"
                f"password={password}\n"
            )
        if trunk.inbound_username:
            inbound_password = self.inbound_password
            if inbound_password is None:
                inbound_password = pbx.trunk_inbound_password.get_secret_value()
            text += (
                "\n[pbx-inbound]\ntype=auth\nauth_type=userpass\n"
                f"username={trunk.inbound_username}\n"
                f"password={inbound_password}\n"
            )
        return text + "\n"

    def registration(self, ext: str) -> str:
        """The name of the phone ``ext``'s registration (``pjsip send unregister …``).

        Named by transport: a switch to TLS is a new registration, not the old
        one changed under its own feet.
        """
        return f"reg-{'tls' if self.pbx.asterisk.tls else 'udp'}-{ext}"

    def _phones(self, etc_dir: Path) -> str:
        """The agents' phones: registrations (over TLS when the hotline takes it)
        and the endpoint the hotline's calls to them arrive on, recognised by
        the ``line`` parameter of the registered contact."""
        a, ast = self.addr, self.pbx.asterisk
        media = ""
        if ast.tls:
            ca = etc_dir / "hotline-ca.pem"
            if ast.tls_cert is not None:
                ca.write_bytes(self.pbx.path(ast.tls_cert).read_bytes())
            transport = "transport-phones-tls"
            server = f"sip:{ast.bind_address}:{ast.tls_port};transport=tls"
            client = f"{ast.bind_address}:{ast.tls_port}"
            text = (
                f"[{transport}]\ntype=transport\nprotocol=tls\nbind={a.agents_ip}:{a.tls_port}\n"
                f"method=tlsv1_2\nca_list_file={ca}\n"
                f"verify_server={'yes' if self.verify_tls else 'no'}\n\n"
            )
            if ast.srtp != "no":
                media = "media_encryption=sdes\n"
        else:
            transport = "transport-agents"
            client = f"{ast.bind_address}:{ast.sip_port}"
            server = f"sip:{client}"
            text = ""
        text += (
            f"[phones]\ntype=endpoint\ntransport={transport}\ncontext=agent-phones\n"
            "disallow=all\nallow=alaw\ndtmf_mode=rfc4733\ndirect_media=no\n"
            f"rtp_symmetric=yes\n{media}\n"
        )
        for ext in self.pbx.phone_extensions:
            text += (
                f"[{self.registration(ext)}]\ntype=registration\ntransport={transport}\n"
                f"outbound_auth=auth-{ext}\nserver_uri={server}\n"
                f"client_uri=sip:{ext}@{client}\ncontact_user={ext}\n"
                "line=yes\nendpoint=phones\n"
                "retry_interval=2\nforbidden_retry_interval=5\nexpiration=600\n"
                "max_retries=100000\n\n"
                f"[auth-{ext}]\ntype=auth\nauth_type=userpass\nusername={ext}\n"
                f"password={self.pbx.sip_password(ext)}\n\n"
            )
        return text

    def reconfigure(
        self,
        pbx: Settings,
        *,
        registrar_password: str | None = None,
        inbound_password: str | None = None,
    ) -> None:
        """Follow the hotline's new SIP settings (trunk, TLS) without a restart:
        the carrier's pjsip.conf is written again and reloaded."""
        self.pbx = pbx
        self.registrar_password = registrar_password
        self.inbound_password = inbound_password
        self.write_config()
        self.instance.cli("module reload res_pjsip.so", timeout=30)

    def pbx_registered(self) -> bool:
        """Whether the hotline holds a registration here (its trunk account's contact)."""
        username = self.pbx.trunk.username
        if not username:
            return False
        out = self.instance.cli(f"pjsip show aor {username}")
        return f"{username}/sip:" in out

    # ---- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        self.write_config()
        self.instance.start()

    def stop(self) -> None:
        self.instance.stop()

    async def connect(self) -> AMIClient:
        self.ami = AMIClient(self.addr.trunk_ip, self.addr.ami_port, "carrier", self.secret)
        await self.ami.start()
        await self.ami.wait_logged_in(30)
        return self.ami

    async def close(self) -> None:
        if self.ami is not None:
            await self.ami.stop()
            self.ami = None

    def registered(self) -> int:
        out = self.instance.cli("pjsip show registrations")
        return out.count("Registered")

    async def wait_registered(self, timeout: float = 30) -> None:
        want = len(self.pbx.phone_extensions) if self.register_agents else 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.registered() >= want:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"only {self.registered()}/{want} agent phones registered")

    async def record_heard(self, on: bool = True) -> None:
        """Agents' phones and callers record what they hear from their next call on
        (``heard/``; a caller's as ``caller<number>``)."""
        assert self.ami is not None, "connect() first"
        await self.ami.action(
            {"Action": "Setvar", "Variable": "RECORD_HEARD", "Value": "1" if on else "0"}
        )

    def heard(self, extension: str) -> list[Path]:
        """What ``extension``'s phone heard, one file per call, oldest first."""
        files = self.heard_dir.glob(f"{extension}-*-in.wav")
        return sorted(files, key=lambda p: p.stat().st_mtime)

    def add_sound(self, name: str, audio: Path) -> str:
        """Make ``audio`` (any format sox reads) a sound the caller can play; returns its name."""
        self.sounds.mkdir(parents=True, exist_ok=True)
        out = self.sounds / f"{name}.alaw"
        cmd = ["sox", str(audio), "-r", "8000", "-c", "1", "-t", "al", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return name

    # ---- calls ----------------------------------------------------------------
    async def call(
        self,
        number: str,
        *,
        caller_id: str | None = '"Citizen" <0901234567>',
        digits: str = "",
        wait: float = 1.0,
        digits2: str = "",
        wait2: float = 0.0,
        hold: int = 10,
        dtmf_gap_ms: int = 250,
        caller_sound: str | None = None,
        cue: bool = False,
    ) -> str:
        """Place one call to the hotline; returns the carrier-side channel's id.

        The caller waits ``wait`` s, sends ``digits`` (then ``digits2`` after
        ``wait2`` s), then talks (a 440 Hz tone) and hangs up ``hold`` seconds
        after its keys, wherever the call is by then (0: at once).
        ``caller_sound`` (a name from :meth:`add_sound`) is what the caller
        says instead of the tone.  With ``cue``, the caller waits for
        :meth:`cue` (at most a minute) before the ``wait2`` that leads to
        ``digits2``: a test sends keys meant for the queue once it has seen the
        caller there, not after a guess at how long the menu takes.
        """
        assert self.ami is not None, "connect() first"
        channel_id = f"call-{uuid.uuid4().hex[:12]}"
        action = {
            "Action": "Originate",
            "Channel": f"PJSIP/{number}@pbx",
            "Context": "caller",
            "Exten": "script",
            "Priority": "1",
            "Async": "true",
            "Timeout": "30000",
            "ChannelId": channel_id,
            "Variable": [
                f"CALL_WAIT={wait}",
                f"CALL_DIGITS={digits}",
                f"CALL_DIGITS2={digits2}",
                f"CALL_WAIT2={wait2}",
                f"CALL_HOLD={hold}",
                f"CALL_DTMF_GAP={dtmf_gap_ms}",
                f"CALL_SOUND={self.sounds / caller_sound if caller_sound else ''}",
                f"CALL_CUE={1 if cue else 0}",
            ],
        }
        if caller_id is not None:
            action["CallerID"] = caller_id
        await self.ami.action(action, as_list=False)
        return channel_id

    async def active(self, channel_id: str) -> bool:
        """Whether the caller's channel of a call placed with :meth:`call` is still up."""
        return await self._channel(channel_id) is not None

    async def hangup_all(self, timeout: float = 15) -> int:
        """Hang up every channel of the carrier (callers and phones); how many were up.

        Returns once none is left, so the PBX has seen every call end.
        """
        assert self.ami is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        first = None
        while True:
            events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
            channels = [e["Channel"] for e in events if e.get("Event") == "CoreShowChannel"]
            if first is None:
                first = len(channels)
            if not channels:
                return first
            if loop.time() > deadline:
                raise TimeoutError(f"carrier channels still up: {channels}")
            for channel in channels:
                with contextlib.suppress(Exception):  # gone meanwhile
                    await self.ami.action({"Action": "Hangup", "Channel": channel})
            await asyncio.sleep(0.3)

    async def record_answered_in(self, folder: Path | None) -> None:
        """Record, in ``folder``, what every phone the carrier answers hears
        (``<number>-heard.wav``); None stops it."""
        assert self.ami is not None
        value = str(folder) if folder is not None else ""
        if folder is not None:
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await self.ami.action({"Action": "Setvar", "Variable": "CARRIER_RECORD", "Value": value})

    async def _channel(self, channel_id: str) -> str | None:
        assert self.ami is not None
        events = await self.ami.action({"Action": "CoreShowChannels"}, as_list=True)
        for e in events:
            if e.get("Event") == "CoreShowChannel" and e.get("Uniqueid") == channel_id:
                return str(e["Channel"])
        return None

    async def hangup(self, channel_id: str) -> None:
        assert self.ami is not None
        channel = await self._channel(channel_id)
        if channel is not None:
            await self.ami.action({"Action": "Hangup", "Channel": channel})

    async def cue(self, channel_id: str) -> None:
        """Let a caller placed with ``cue=True`` go on to its second keys."""
        assert self.ami is not None
        channel = await self._channel(channel_id)
        if channel is None:
            raise LookupError(f"caller {channel_id} is gone before its cue")
        reply = await self.ami.action(
            {"Action": "Setvar", "Channel": channel, "Variable": "CALL_CUED", "Value": "1"},
            as_list=False,
        )
        if reply.get("Response") != "Success":
            raise RuntimeError(f"cue for {channel}: {reply}")
