"""Shared helpers of the test suite."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.config import Config

from core.settings import Settings, load_settings
from hotline.system import alembic_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "hotline.example.toml"


def deterministic_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Secrets from the environment, fixed so rendered files are reproducible."""
    text = EXAMPLE.read_text()
    env = {"HOTLINE_AMI_SECRET": "test-ami-secret"}
    for ext in re.findall(r'^extension = "(\d+)"', text, re.M):
        env[f"HOTLINE_SIP_PASSWORD_{ext}"] = f"pw{ext}"
    env.update(extra or {})
    return env


def make_home(home: Path, config_text: str | None = None) -> Path:
    """A hotline home folder with config/hotline.toml; returns the config path."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = home / "config" / "hotline.toml"
    path.write_text(config_text if config_text is not None else EXAMPLE.read_text())
    return path


def settings_in(home: Path, config_text: str | None = None, **env: str) -> Settings:
    path = make_home(home, config_text)
    return load_settings(path, env=deterministic_env(env))


def replace_block(text: str, old: str, new: str) -> str:
    assert old in text, f"fixture text not found: {old!r}"
    return text.replace(old, new, 1)


def alembic_cfg(url: str) -> Config:
    """Alembic's configuration for the database at ``url`` (the project's migrations)."""
    return alembic_config(url)
