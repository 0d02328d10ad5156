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

from core.settings import LANGUAGES, Hotline, Settings

log = logging.getLogger(__name__)

VOICES = {"vi": "vi-vn-x-south", "en": "en-us"}
SHARED = ("invalid", "no_input", "connecting", "all_busy", "goodbye")
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
        for h in settings.hotlines:
            out[(lang, greeting_id(h))] = h.greeting.get(lang)
            out[(lang, menu_id(h))] = " ".join(o.prompt.get(lang) for o in h.menu)
            for o in h.menu:
                if o.message is not None:
                    out[(lang, message_id(h, o.digit))] = o.message.get(lang)
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
