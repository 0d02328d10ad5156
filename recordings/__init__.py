"""Recordings after the call.

Transcription jobs and workers, transcripts and their search, replay,
access audit and retention.
"""
