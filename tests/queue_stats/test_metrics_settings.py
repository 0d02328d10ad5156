"""The queue statistics settings ([stats]: short abandons, /metrics access) are
validated at start, naming the key."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from core.settings import ConfigError
from tests.helpers import EXAMPLE, settings_in


def test_default_is_loopback_only(tmp_path: Path):
    stats = settings_in(tmp_path).stats
    assert stats.metrics_allow == [
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    ]
    assert stats.metrics_token_file is None


def test_networks_and_a_bad_address(tmp_path: Path):
    text = EXAMPLE.read_text().replace(
        "short_abandon_seconds = 5",
        'short_abandon_seconds = 5\nmetrics_allow = ["10.1.2.0/24", "127.0.0.1"]',
    )
    stats = settings_in(tmp_path / "a", text).stats
    assert ipaddress.ip_address("10.1.2.9") in stats.metrics_allow[0]
    assert ipaddress.ip_address("127.0.0.1") in stats.metrics_allow[1]

    bad = text.replace('"10.1.2.0/24"', '"10.1.2.300/24"')
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path / "b", bad)
    assert "stats.metrics_allow" in str(e.value)


@pytest.mark.parametrize("value", ["-1", "121", '"5s"'])
def test_a_bad_short_abandon_threshold_is_refused_naming_the_key(tmp_path: Path, value: str):
    text = EXAMPLE.read_text().replace(
        "short_abandon_seconds = 5", f"short_abandon_seconds = {value}"
    )
    with pytest.raises(ConfigError) as e:
        settings_in(tmp_path, text)
    assert "stats.short_abandon_seconds" in str(e.value)


def test_no_short_abandons(tmp_path: Path):
    text = EXAMPLE.read_text().replace("short_abandon_seconds = 5", "short_abandon_seconds = 0")
    assert settings_in(tmp_path, text).stats.short_abandon_seconds == 0
