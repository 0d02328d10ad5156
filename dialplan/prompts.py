"""IVR prompts: generated from the configuration's texts with espeak-ng.

Each prompt has an id and a language and lives at
``<prompts_dir>/<lang>/<id>.wav`` (8 kHz, 16-bit mono: what Asterisk plays
without transcoding effort).  An operator's own recording at
``<custom_prompts_dir>/<lang>/<id>.<wav|mp3|ogg|...>`` replaces the generated
one.  Asterisk plays them by absolute path without the extension.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from core.settings import LANGUAGES, Hotline, MenuOption, Settings

log = logging.getLogger(__name__)

VOICES = {"vi": "vi-vn-x-south", "en": "en-us"}
SHARED = ("invalid", "no_input", "connecting", "all_busy", "goodbye", "emergency_connecting")
# The overflow flow's prompts (agi/overflow.py), one text each ...
OVERFLOW = (
    "callback_number",
    "callback_confirm",
    "callback_enter",
    "callback_invalid",
    "callback_done",
    "voice_message_start",
    "voice_message_done",
)
# The satisfaction survey's prompts (agi/survey.py).
SURVEY = ("survey_rate", "survey_thanks", "survey_reopen_offer", "survey_reopened")
# ... and the digits the overflow flow reads a number back with.
DIGITS = {
    "vi": ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"),
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
}


# The report follow-up's fragments (agi/follow.py): ``follow_<name>`` for each text of
# ``ivr.follow.prompts``, ``status-<status>``, ``topic-<topic id>``, and the dates.
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def follow_texts(settings: Settings, language: str) -> dict[str, str]:
    """Every fragment the report follow-up plays, by prompt id (see agi/report_speech.py)."""
    f = settings.ivr.follow
    out = {f"follow_{name}": text.get(language) for name, text in f.prompts}
    out |= {f"status-{name}": text.get(language) for name, text in f.statuses}
    out |= {f"topic-{t.id}": t.name.get(language) for t in settings.tickets.topics}
    for day in range(1, 32):
        out[f"day-{day}"] = f"ngày {day}" if language == "vi" else f"the {_ordinal(day)}"
    for month in range(1, 13):
        out[f"month-{month}"] = (
            f"tháng {month}" if language == "vi" else f"of {MONTHS_EN[month - 1]}"
        )
    return out


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def result_call_texts(settings: Settings, language: str) -> dict[str, str]:
    """The result call's fragments (agi/result_call.py), ``result_call_<name>``; the
    digits are shared, the agency and the answer are spoken at run time."""
    said = settings.result_calls.prompts
    out = {f"result_call_{name}": text.get(language) for name, text in said}
    out["result_call_full_answer"] = settings.ivr.follow.prompts.full_answer.get(language)
    # "one moment, please" while a text is spoken (shared with the follow-up)
    out["follow_wait"] = settings.ivr.follow.prompts.wait.get(language)
    return out


def follows(settings: Settings) -> bool:
    """Whether some hotline offers the report follow-up (its prompts are then made)."""
    return any(o.action == "follow" for h in settings.hotlines for o in h.menu)


def overflow_offer_texts(settings: Settings, language: str) -> dict[str, str]:
    """The offer while waiting and the final one, with only the choices configured."""
    p, o = settings.ivr.prompts, settings.queues.overflow
    choices = []
    if o.callbacks:
        choices.append(p.offer_callback.get(language))
    if o.voice_messages:
        choices.append(p.offer_voice_message.get(language))
    offer = [p.offer_intro.get(language), *choices, p.offer_keep_waiting.get(language)]
    return {
        "overflow_offer": " ".join(offer),
        "overflow_final": " ".join([p.offer_final.get(language), *choices]),
    }


def greeting_id(hotline: Hotline) -> str:
    return f"greeting-{hotline.id}"


def menu_id(hotline: Hotline) -> str:
    return f"menu-{hotline.id}"


def message_id(hotline: Hotline, digit: str) -> str:
    name = {"*": "star", "#": "hash"}.get(digit, digit)
    return f"message-{hotline.id}-{name}"


def notice_id(hotline: Hotline) -> str:
    return f"notice-{hotline.id}"


def blocked_id(hotline: Hotline) -> str:
    return f"blocked-{hotline.id}"


def emergency_option(hotline: Hotline) -> MenuOption | None:
    """The hotline's emergency option: the only one a blocked caller is offered."""
    return next((o for o in hotline.menu if o.action == "emergency"), None)


def blocked_text(settings: Settings, hotline: Hotline, language: str) -> str:
    """What a caller on the blocked list hears: the message, then the emergency
    option's own prompt ("for an emergency, press 0"), where the hotline has one."""
    option = emergency_option(hotline)
    said = [settings.blocklist.message.get(language)]
    if option is not None:
        said.append(option.prompt.get(language))
    return " ".join(said)


def emergency_choose_id(hotline: Hotline, digit: str) -> str:
    return message_id(hotline, digit).replace("message-", "emergency-", 1)


def emergency_choose_text(option: MenuOption, language: str) -> str:
    """The sub-menu of an emergency option that connects: its own text, or one per number."""
    if option.choose is not None:
        return option.choose.get(language)
    # digits spelt one by one: "1 1 3" is read "one one three", not "one hundred ..."
    if language == "en":
        said = (
            f"To be put through to {' '.join(n)}, press {i}."
            for i, n in enumerate(option.numbers, 1)
        )
    else:
        said = (
            f"Để được nối máy tới số {' '.join(n)}, bấm phím {i}."
            for i, n in enumerate(option.numbers, 1)
        )
    return " ".join(said)


def prompt_path(settings: Settings, prompt_id: str, language: str) -> str:
    """Absolute path, without extension, as Asterisk's Playback wants it."""
    return str(settings.prompts_dir / language / prompt_id)


def prompt_texts(settings: Settings) -> dict[tuple[str, str], str]:
    """Every (language, prompt id) the IVR may play, with its text."""
    out: dict[tuple[str, str], str] = {}
    for lang in LANGUAGES:
        for pid in SHARED:
            out[(lang, pid)] = getattr(settings.ivr.prompts, pid).get(lang)
        for pid in (*OVERFLOW, *SURVEY):
            out[(lang, pid)] = getattr(settings.ivr.prompts, pid).get(lang)
        for pid, text in overflow_offer_texts(settings, lang).items():
            out[(lang, pid)] = text
        for d, word in enumerate(DIGITS[lang]):
            out[(lang, f"digit-{d}")] = word
        if follows(settings):
            for pid, text in follow_texts(settings, lang).items():
                out[(lang, pid)] = text
        if settings.result_calls.enabled:
            for pid, text in result_call_texts(settings, lang).items():
                out[(lang, pid)] = text
        for h in settings.hotlines:
            out[(lang, greeting_id(h))] = h.greeting.get(lang)
            out[(lang, notice_id(h))] = h.recording_notice.get(lang)
            out[(lang, blocked_id(h))] = blocked_text(settings, h, lang)
            out[(lang, menu_id(h))] = " ".join(o.prompt.get(lang) for o in h.menu)
            for o in h.menu:
                if o.message is not None:
                    out[(lang, message_id(h, o.digit))] = o.message.get(lang)
                if o.action == "emergency" and o.connect:
                    out[(lang, emergency_choose_id(h, o.digit))] = emergency_choose_text(o, lang)
    return out


def _espeak(text: str, language: str, out_wav: Path) -> None:
    voice = VOICES.get(language, language)
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "150", "-w", str(out_wav), text],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _to_asterisk_wav(src: Path, dst: Path) -> None:
    from pydub import AudioSegment  # imported here: pydub warns at import without ffmpeg

    # pydub leaves files it opens by name open: hand it file objects we close.
    with src.open("rb") as f:
        audio = AudioSegment.from_file(f, format=src.suffix.lstrip(".") or None)
    audio = audio.set_channels(1).set_frame_rate(8000).set_sample_width(2)
    tmp = dst.with_suffix(".tmp.wav")
    with tmp.open("wb") as out:
        audio.export(out, format="wav")
    tmp.replace(dst)
    telephone_twins(dst)


def telephone_twins(wav: Path) -> None:
    """Write A-law and mu-law copies beside a prompt.

    Asterisk plays the format that costs least to send: with these, a prompt
    reaches an A-law caller without transcoding, which counts in a flood.
    """
    for ext, kind in (("alaw", "al"), ("ulaw", "ul")):
        out = wav.with_suffix(f".{ext}")
        subprocess.run(
            ["sox", str(wav), "-t", kind, "-r", "8000", "-c", "1", str(out)],
            check=True,
            capture_output=True,
            timeout=60,
        )


def _custom(settings: Settings, language: str, prompt_id: str) -> Path | None:
    folder = settings.path(settings.paths.custom_prompts_dir) / language
    if not folder.is_dir():
        return None
    return next((p for p in sorted(folder.glob(f"{prompt_id}.*")) if p.is_file()), None)


def generate(settings: Settings, *, force: bool = False) -> dict[str, int]:
    """Make every prompt file; unchanged texts are not spoken again.

    Returns counts: generated, custom, unchanged.
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    counts = {"generated": 0, "custom": 0, "unchanged": 0}
    root = settings.prompts_dir
    manifest_path = root / "manifest.json"
    manifest: dict[str, str] = {}
    if manifest_path.exists() and not force:
        manifest = json.loads(manifest_path.read_text())
    with tempfile.TemporaryDirectory() as tmpdir:
        for (lang, pid), text in sorted(prompt_texts(settings).items()):
            dst = root / lang / f"{pid}.wav"
            dst.parent.mkdir(parents=True, exist_ok=True)
            custom = _custom(settings, lang, pid)
            if custom is not None:
                key = f"custom:{custom.stat().st_mtime_ns}:{custom.stat().st_size}"
            else:
                key = "tts:" + hashlib.sha256(f"{VOICES.get(lang)}|{text}".encode()).hexdigest()
            complete = dst.exists() and dst.with_suffix(".alaw").exists()
            if manifest.get(f"{lang}/{pid}") == key and complete:
                counts["unchanged"] += 1
                continue
            if custom is not None:
                _to_asterisk_wav(custom, dst)
                counts["custom"] += 1
            else:
                raw = Path(tmpdir) / f"{lang}-{pid}.wav"
                _espeak(text, lang, raw)
                _to_asterisk_wav(raw, dst)
                counts["generated"] += 1
            manifest[f"{lang}/{pid}"] = key
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    log.info("prompts: %s", counts)
    return counts
