"""The plugin host: entry points, --plugin files, broken plugins, duplicate names."""

from __future__ import annotations

import pytest

from ehrbench.errors import PluginError, UnknownNameError
from ehrbench.plugins import load_registry


def test_builtins_register_through_entry_points():
    registry = load_registry()
    assert not registry.broken
    assert {"independent-marginals", "train-resample"} <= set(registry.names("generators"))
    assert {"simulated", "matrix"} <= set(registry.names("datasets"))
    assert "dimension_wise_probability" in registry.names("metrics")
    entry = registry.entry("generators", "train-resample")
    assert entry.source.startswith("entry point 'baselines'")


def test_plugin_file_adds_classes(plugin_file):
    registry = load_registry([plugin_file("extra_metric")])
    entry = registry.entry("metrics", "empty_record_share")
    assert entry.source.startswith("file ") and entry.source.endswith("extra_metric.py")
    assert "exploding" not in registry.defaults("metrics")
    assert "empty_record_share" in registry.defaults("metrics")


def test_broken_plugin_is_reported_and_the_rest_works(plugin_file):
    registry = load_registry([plugin_file("broken_import"), plugin_file("extra_metric")])
    [broken] = registry.broken
    assert broken.source.endswith("broken_import.py")
    assert "ModuleNotFoundError" in broken.error and "line 3" in broken.error
    assert "empty_record_share" in registry.names("metrics")
    assert "train-resample" in registry.names("generators")


def test_invalid_classes_are_broken_not_fatal(plugin_file):
    registry = load_registry([plugin_file("bad_class")])
    errors = " ".join(b.error for b in registry.broken)
    assert "snake_case" in errors and "'Bad-Name'" in errors
    assert "not a subclass of ehrbench.Metric" in errors
    assert "dimension_wise_probability" in registry.names("metrics")


def test_duplicate_name_names_both_plugins(plugin_file):
    with pytest.raises(PluginError) as info:
        load_registry([plugin_file("duplicate")])
    message = str(info.value)
    assert "'train-resample'" in message
    assert "entry point 'baselines'" in message and "duplicate.py" in message


def test_missing_plugin_file_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="plugin file not found"):
        load_registry([tmp_path / "nope.py"])


def test_unknown_name_lists_known_ones():
    registry = load_registry()
    with pytest.raises(UnknownNameError) as info:
        registry.get("generators", "train-resampel")
    assert "did you mean 'train-resample'" in str(info.value)
    assert "independent-marginals" in str(info.value)


def test_unavailable_requirement_is_reported(tmp_path):
    source = tmp_path / "needs_missing.py"
    source.write_text(
        "from ehrbench import Generator, hookimpl\n"
        "class NeedsMissing(Generator):\n"
        "    name = 'needs-missing'\n"
        "    requires = ('ehrbench_not_installed_pkg',)\n"
        "    install_hint = 'pip install ehrbench[missing]'\n"
        "    def fit(self, X, ctx): pass\n"
        "    def sample(self, n, ctx): pass\n"
        "@hookimpl\n"
        "def ehrbench_generators():\n"
        "    return [NeedsMissing]\n"
    )
    registry = load_registry([source])
    assert "needs-missing" not in registry.defaults("generators")
    with pytest.raises(UnknownNameError, match=r"pip install ehrbench\[missing\]"):
        registry.get("generators", "needs-missing")


def test_dataset_plugins_add_their_commands_and_the_default_dataset():
    registry = load_registry()
    assert registry.defaults("datasets") == ["simulated"]
    assert "simulate" in registry.commands["ehrbench"] and "mimic3" in registry.commands["prepare"]
    assert registry.commands["prepare"]["mimic3"].source.startswith("entry point 'mimic3'")


def _commands_plugin(path, name, hook="ehrbench_commands", value=None):
    path.write_text(
        "import click\n"
        "from ehrbench import hookimpl\n"
        f"@click.command({name!r})\n"
        "def command():\n"
        "    click.echo('from a plugin')\n"
        "@hookimpl\n"
        f"def {hook}():\n"
        f"    return [{value or 'command'}]\n"
    )
    return path


def test_a_command_name_registered_twice_names_both_plugins(tmp_path):
    with pytest.raises(PluginError) as info:
        load_registry([_commands_plugin(tmp_path / "twice.py", "simulate")])
    assert "command name 'simulate'" in str(info.value) and "twice.py" in str(info.value)
    assert "entry point 'simulated'" in str(info.value)
    registry = load_registry([_commands_plugin(tmp_path / "bad.py", "x", "ehrbench_prepare_commands", "'not a command'")])
    assert any("is not a named click command" in b.error for b in registry.broken)


def test_a_plugin_command_may_not_replace_a_builtin_one(tmp_path, cli, monkeypatch):
    from ehrbench.cli import app as main

    registry = load_registry([_commands_plugin(tmp_path / "clash.py", "report")])
    monkeypatch.setattr(main, "_plugins", lambda: registry)
    result = cli("--help")
    assert result.code == 2 and "command name 'report' is registered twice: by ehrbench itself" in result.err
    assert "clash.py" in result.err
    added = load_registry([_commands_plugin(tmp_path / "hello.py", "hello")])
    monkeypatch.setattr(main, "_plugins", lambda: added)
    assert cli("hello").out == "from a plugin\n"
