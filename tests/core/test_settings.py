"""Configuration validation: a wrong value stops the start with a message naming the key."""

import pytest

from core.settings import ConfigError, ensure_secrets, load_settings, require_secrets
from tests.helpers import EXAMPLE, deterministic_env, make_home, replace_block, settings_in


def problems_for(tmp_path, old: str, new: str) -> list[str]:
    text = replace_block(EXAMPLE.read_text(), old, new)
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    return info.value.problems


def test_example_is_valid(tmp_path):
    s = settings_in(tmp_path)
    assert {h.number for h in s.hotlines} == {"1022", "0888247247"}
    assert [(sh.start.hour, sh.end.hour) for sh in s.shifts] == [(6, 14), (14, 22), (22, 6)]
    for team in s.teams:
        for shift in s.shifts:
            assert sum(a.team == team.id and a.shift == shift.id for a in s.agents) == 5


def test_unknown_timezone(tmp_path):
    probs = problems_for(tmp_path, 'timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Asia/Saigonn"')
    assert probs == ["timezone: unknown time zone 'Asia/Saigonn' (e.g. Asia/Ho_Chi_Minh)"]


def test_bad_shift_time_names_the_key(tmp_path):
    probs = problems_for(tmp_path, 'start = "14:00"', 'start = "2pm"')
    assert probs == ["shifts[1].start: must be a time written HH:MM (00:00 to 23:59)"]


def test_shift_gap_and_overlap(tmp_path):
    probs = problems_for(tmp_path, 'end = "22:00"', 'end = "21:00"')
    assert "shifts: nobody is on duty at 21:00" in probs
    probs = problems_for(tmp_path, 'end = "22:00"', 'end = "23:00"')
    assert "shifts: afternoon and night overlap at 22:00" in probs


def test_agent_with_unknown_team_and_duplicate_extension(tmp_path):
    text = EXAMPLE.read_text()
    text = replace_block(text, 'extension = "1002"', 'extension = "1001"')
    text = replace_block(
        text, 'team = "party"\nshift = "morning"', 'team = "parti"\nshift = "morning"'
    )
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    probs = info.value.problems
    assert "agents.extension: '1001' is used more than once" in probs
    assert any(p.startswith("agents[15].team: no team 'parti'") for p in probs)
    assert "invalid configuration in" in str(info.value)


def test_team_without_agents_in_a_shift(tmp_path):
    text = EXAMPLE.read_text()
    for ext in range(2011, 2016):
        text = replace_block(
            text,
            f'extension = "{ext}"\nteam = "party"\nshift = "night"',
            f'extension = "{ext}"\nteam = "party"\nshift = "morning"',
        )
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    assert (
        "agents: team 'party' has nobody on shift 'night'; "
        "calls in that shift would wait for no one" in info.value.problems
    )


def test_menu_key_twice_and_no_agent_option(tmp_path):
    probs = problems_for(tmp_path, 'digit = "2"\naction = "info"', 'digit = "1"\naction = "info"')
    assert probs == ["hotlines[0]: menu: key 1 is used more than once"]
    probs = problems_for(
        tmp_path,
        'digit = "1"\naction = "agent"\nprompt.vi = "Để gặp cán bộ',
        'digit = "1"\naction = "repeat"\nprompt.vi = "Để gặp cán bộ',
    )
    assert probs == ["hotlines[1]: menu: needs an option with action 'agent'"]


def test_emergency_needs_message_and_vietnamese_is_required(tmp_path):
    probs = problems_for(
        tmp_path,
        'message.vi = "Nếu bạn cần công an, xin gọi 113. Cứu hỏa, gọi 114. Cấp cứu, gọi 115."\n',
        "",
    )
    assert any(p.startswith("hotlines[1].menu[1].message.vi: Field required") for p in probs)


def test_unknown_key_is_refused_with_the_likely_one(tmp_path):
    probs = problems_for(tmp_path, "max_wait_seconds = 600", "max_wait_secs = 600")
    assert probs == ["queues.max_wait_secs: unknown key (did you mean 'max_wait_seconds'?)"]
    probs = problems_for(tmp_path, "[recordings]\n", "[recordings]\nzzz = 1\n")
    assert probs == [
        "recordings.zzz: unknown key (the keys here: agents_replay_own, job_lease_seconds, "
        "keep_audio_days, keep_transcripts, max_attempts, min_seconds, model_list_url, "
        "vosk_model, workers)"
    ]
    probs = problems_for(tmp_path, 'timezone = "Asia/Ho_Chi_Minh"', 'timezon = "Asia/Ho_Chi_Minh"')
    assert probs == ["timezon: unknown key (did you mean 'timezone'?)"]


def test_problems_name_their_line(tmp_path):
    text = EXAMPLE.read_text()
    text = replace_block(text, "max_wait_seconds = 600", "max_wait_secs = 600")
    lines = text.splitlines()
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    (line,) = info.value.lines
    assert lines[line - 1].startswith("max_wait_secs = 600")
    assert f"  - line {line}: queues.max_wait_secs: unknown key" in str(info.value)

    # nested arrays of tables: the second hotline's second menu option
    emergency = (
        'message.vi = "Nếu bạn cần công an, xin gọi 113. Cứu hỏa, gọi 114. Cấp cứu, gọi 115."'
    )
    text = replace_block(
        EXAMPLE.read_text(), emergency + "\n", emergency.replace(".vi", ".vj") + "\n"
    )
    lines = text.splitlines()
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    by_key = dict(zip(info.value.problems, info.value.lines, strict=True))
    vj = next(n for p, n in by_key.items() if p.startswith("hotlines[1].menu[1].message.vj"))
    assert lines[vj - 1].startswith('message.vj = "Nếu bạn cần công an')
    headers = [n for n, line in enumerate(lines, start=1) if line == "[[hotlines.menu]]"]
    assert headers[6] < vj < headers[7]  # the first hotline has 5 options, the second 3


def test_problems_from_cross_checks_name_their_line(tmp_path):
    text = replace_block(
        EXAMPLE.read_text(),
        'team = "party"\nshift = "morning"',
        'team = "parti"\nshift = "morning"',
    )
    lines = text.splitlines()
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    by_key = dict(zip(info.value.problems, info.value.lines, strict=True))
    team = next(n for p, n in by_key.items() if p.startswith("agents[15].team: no team 'parti'"))
    assert lines[team - 1] == 'team = "parti"'
    agent_headers = [n for n, line in enumerate(lines, start=1) if line == "[[agents]]"]
    assert agent_headers[15] < team < agent_headers[16]


def test_out_of_range_value(tmp_path):
    probs = problems_for(tmp_path, "max_retries = 2", "max_retries = 50")
    assert probs == ["ivr.max_retries: Input should be less than or equal to 5"]


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, "timezone = \n")
    assert info.value.problems[0].startswith("not valid TOML")
    assert "line 1" in info.value.problems[0]  # tomllib's own position
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml", env={})
    assert "file not found" in info.value.problems[0]


def test_secrets_generated_into_private_file_and_env_wins(tmp_path):
    path = make_home(tmp_path)
    s = load_settings(path, env={})
    with pytest.raises(ConfigError) as info:
        require_secrets(s)
    assert info.value.problems[0].startswith("ami_secret: not set")
    secrets_file = ensure_secrets(s)
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    s2 = load_settings(path, env={})
    require_secrets(s2)
    assert len(s2.ami_secret.get_secret_value()) >= 20
    assert "ami" not in repr(s2.ami_secret)  # never printed
    s3 = load_settings(path, env={"HOTLINE_AMI_SECRET": "from-env"})
    assert s3.ami_secret.get_secret_value() == "from-env"
    # a second ensure keeps what exists
    before = secrets_file.read_text()
    ensure_secrets(s2)
    assert secrets_file.read_text() == before


def test_database_url_env_and_relative_sqlite(tmp_path):
    s = settings_in(tmp_path)
    assert s.database == f"sqlite:///{tmp_path.resolve()}/var/hotline.db"
    with pytest.raises(ConfigError) as info:
        load_settings(
            make_home(tmp_path), env=deterministic_env({"HOTLINE_DATABASE_URL": "mysql://x"})
        )
    assert info.value.problems == ["database_url: must start with sqlite:/// or postgresql://"]


def test_processes_the_application_starts_read_the_same_file(tmp_path):
    """A configuration kept outside <home>/config/ (say /etc/hotline/) reaches the workers."""
    from hotline.app import worker_command

    etc = tmp_path / "etc" / "hotline"
    etc.mkdir(parents=True)
    path = etc / "city.toml"
    commented = '# vosk_model = "/var/lib/hotline/vosk-model-small-vn-0.4"'
    assert commented in EXAMPLE.read_text()
    path.write_text(
        EXAMPLE.read_text().replace(commented, 'vosk_model = "/var/lib/hotline/vosk-vn"')
    )
    s = load_settings(path, env={**deterministic_env(), "HOTLINE_HOME": str(tmp_path / "home")})
    assert s.config_path == path.resolve()
    cmd = worker_command(s)
    assert cmd is not None
    assert cmd[cmd.index("--config") + 1] == str(path.resolve())
    assert cmd[cmd.index("--model") + 1] == "/var/lib/hotline/vosk-vn"


def test_supervisor_phone_that_is_an_agents_is_refused(tmp_path):
    text = EXAMPLE.read_text()
    text = replace_block(text, 'extension = "1901"', 'extension = "1001"')
    with pytest.raises(ConfigError) as info:
        settings_in(tmp_path, text)
    assert "supervision.phones[0].extension: 1001 is also an agent's" in info.value.problems


def test_restricted_reports_settings_and_their_old_name(tmp_path):
    s = settings_in(tmp_path)
    c = s.tickets.confidential
    assert (c.domains, c.topics, c.oversight_scope) == (
        ["party"],
        ["complaints", "corruption"],
        "all",
    )
    # the earlier key is read as confidential.topics
    text = replace_block(
        EXAMPLE.read_text(),
        "overdue_check_seconds = 60",
        'overdue_check_seconds = 60\nnever_public_topics = ["corruption"]',
    )
    text = replace_block(
        text, 'topics = ["complaints", "corruption"]   # denunciations, corruption', ""
    )
    old = settings_in(tmp_path, text)
    assert old.tickets.confidential.topics == old.tickets.never_public_topics == ["corruption"]
    probs = problems_for(tmp_path, 'oversight_scope = "all"', 'oversight_scope = "some"')
    assert len(probs) == 1 and probs[0].startswith("tickets.confidential.oversight_scope:")
    probs = problems_for(
        tmp_path,
        'topics = ["complaints", "corruption"]   # denunciations, corruption',
        'topics = ["bribes"]',
    )
    assert probs == ["tickets: confidential.topics: no topic bribes"]
