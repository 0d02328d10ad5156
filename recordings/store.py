"""Writing transcripts (once per call) and their searchable segments."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.db import Database
from core.text import fold
from recordings.models import Transcript, TranscriptSegment


def transcript_text(segments: list[dict[str, Any]]) -> str:
    """The plain text of a merged transcript: one line per utterance."""
    return "\n".join(f"{seg['speaker']}: {seg['text']}" for seg in segments)


async def save_transcript(
    db: Database,
    call_id: int,
    segments: list[dict[str, Any]],
    *,
    model: str,
    audio_seconds: float,
    now: datetime,
) -> bool:
    """Store the transcript of ``call_id``; False when one was already there.

    The transcript and its segments go in one transaction, and ``call_id`` is
    unique: a job delivered twice stores exactly one transcript.
    """
    async with db.session() as s:
        if (await s.execute(select(Transcript.id).where(Transcript.call_id == call_id))).first():
            return False
    try:
        async with db.session() as s:
            s.add(
                Transcript(
                    call_id=call_id,
                    text=transcript_text(segments),
                    segments_json=json.dumps(segments, ensure_ascii=False),
                    model=model[:200],
                    audio_seconds=audio_seconds,
                    created_at=now,
                )
            )
            for seq, seg in enumerate(segments):
                s.add(
                    TranscriptSegment(
                        call_id=call_id,
                        seq=seq,
                        speaker=seg["speaker"],
                        start=seg["start"],
                        end=seg["end"],
                        text=seg["text"],
                        search_text=fold(seg["text"]),
                    )
                )
    except IntegrityError:
        return False
    return True


async def delete_transcript(db: Database, call_id: int) -> None:
    async with db.session() as s:
        await s.execute(delete(TranscriptSegment).where(TranscriptSegment.call_id == call_id))
        await s.execute(delete(Transcript).where(Transcript.call_id == call_id))
