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
