"""Run configuration: TOML + CLI precedence, unknown keys, resume agreement."""

from __future__ import annotations

import pytest

from ehrbench.config import resolve_config
from ehrbench.errors import ConfigError


def test_precedence_defaults_file_flags(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('repeats = 5\nprofile = "smoke"\n[dataset_options]\npatients = 100\n')
    cfg = resolve_config(file, {"repeats": 2, "generators": None})
    assert cfg.repeats == 2 and cfg.profile == "smoke"
    assert cfg.dataset is None  # the dataset plugin marked default, resolved by the plan
    assert cfg.dataset_options == {"patients": 100}


@pytest.mark.parametrize(
    "text, message",
    [
        ("repeat = 3\n", "unknown key 'repeat' (did you mean 'repeats'?)"),
        ("repeats = 0\n", "repeats must be at least 1"),
        ('profile = "fast"\n', "'fast' is not one of"),
        ("repeats = [\n", "not valid TOML"),
        ('device = "tpu"\n', "key 'device'"),
        ("generator_options = 3\n", "expected a table"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path, text, message):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as info:
        resolve_config(file, {})
    assert message in str(info.value)
    assert str(file) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve_config(tmp_path / "none.toml", {})


def test_resume_keeps_stored_values_and_rejects_changes():
    stored = resolve_config(None, {"repeats": 4, "profile": "smoke"}).to_dict()
    same = resolve_config(None, {"repeats": 4, "timeout": 10}, stored)
    assert same.repeats == 4 and same.profile == "smoke" and same.timeout == 10
    with pytest.raises(ConfigError, match="repeats: 4 → 2"):
        resolve_config(None, {"repeats": 2}, stored)
