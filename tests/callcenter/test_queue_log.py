"""queue_log parsing and incremental reading."""

from __future__ import annotations

from datetime import UTC, datetime

from callcenter.queue_log import QueueLogReader, parse_line

LINES = [
    "1795344736|pbx-1795344736.14|t1022-night|NONE|ENTERQUEUE||0901234567|1",
    "1795344745|pbx-1795344736.14|t1022-night|PJSIP/1011|CONNECT|9|pbx-1795344745.15|2",
    "1795344805|pbx-1795344736.14|t1022-night|PJSIP/1011|COMPLETECALLER|9|60|1",
]


def test_parse_line():
    e = parse_line(LINES[1] + "\n")
    assert e is not None
    assert e.at == datetime.fromtimestamp(1795344745, UTC)
    assert (e.callid, e.queue, e.agent, e.event) == (
        "pbx-1795344736.14",
        "t1022-night",
        "PJSIP/1011",
        "CONNECT",
    )
    assert e.field(0) == "9" and e.field(7) == ""
    assert parse_line("garbage") is None and parse_line("x|a|b|c|D") is None


def test_reader_reads_only_new_whole_lines_and_survives_rotation(tmp_path):
    log, state = tmp_path / "queue_log", tmp_path / "offset.json"
    reader = QueueLogReader(log, state)
    assert reader.read_new() == ([], 0)  # no file yet
    log.write_text(LINES[0] + "\n" + LINES[1][:20])  # second line half written
    entries, offset = reader.read_new()
    assert [e.event for e in entries] == ["ENTERQUEUE"]
    reader.commit(offset)
    with log.open("a") as f:
        f.write(LINES[1][20:] + "\n" + LINES[2] + "\n")
    entries, offset = reader.read_new()
    assert [e.event for e in entries] == ["CONNECT", "COMPLETECALLER"]
    # not committed: read again
    assert [e.event for e in reader.read_new()[0]] == ["CONNECT", "COMPLETECALLER"]
    reader.commit(offset)
    assert reader.read_new()[0] == []
    # rotated: a new file starts from the beginning
    log.unlink()
    log.write_text(LINES[2] + "\n")
    assert [e.event for e in reader.read_new()[0]] == ["COMPLETECALLER"]


def test_entries_written_just_before_a_rotation_are_read_from_the_rotated_file(tmp_path):
    log, state = tmp_path / "queue_log", tmp_path / "offset.json"
    reader = QueueLogReader(log, state)
    log.write_text(LINES[0] + "\n")
    entries, offset = reader.read_new()
    reader.commit(offset)
    with log.open("a") as f:  # Asterisk wrote on, then logrotate renamed the file
        f.write(LINES[1] + "\n")
    log.rename(tmp_path / "queue_log.1")
    (tmp_path / "queue_log.2.gz").write_bytes(b"older, compressed")
    log.write_text(LINES[2] + "\n")  # and Asterisk reopened a new one
    entries, offset = reader.read_new()
    assert [e.event for e in entries] == ["CONNECT", "COMPLETECALLER"]
    reader.commit(offset)
    assert reader.read_new()[0] == []
    # copytruncate: the same file, shorter than the offset: read from its start
    log.write_text(LINES[0] + "\n")
    assert [e.event for e in reader.read_new()[0]] == ["ENTERQUEUE"]
