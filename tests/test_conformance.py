"""ehrbench.testing: every built-in keeps the contract; each broken class fails naming its rule."""

from __future__ import annotations

import pytest

from conftest import PLUGINS
from ehrbench.plugins import load_plugin_file, load_registry
from ehrbench.testing import ConformanceError, check_generator, check_metric

REGISTRY = load_registry()
broken = load_plugin_file(PLUGINS / "nonconforming.py")


@pytest.mark.parametrize("name", REGISTRY.names("generators", available_only=True))
def test_builtin_generator_keeps_the_contract(name):
    check_generator(REGISTRY.get("generators", name))  # smoke profile, count and binary: seconds each


@pytest.mark.parametrize("name", REGISTRY.names("metrics", available_only=True))
def test_builtin_metric_keeps_the_contract(name):
    check_metric(REGISTRY.get("metrics", name))


def test_a_conforming_class_passes():
    check_generator(broken._Marginals)


@pytest.mark.parametrize("cls, rule, words", [
    (broken.WrongShape, "sample-contract", "shape"),
    (broken.Fractional, "sample-contract", "integer"),
    (broken.Unseeded, "reproducible", "seed 1234"),
    (broken.GlobalSeeded, "global-rng", "numpy.random"),
    (broken.FixedSeed, "seed-used", "the same matrix"),
    (broken.ForgetfulSave, "save-load", "loaded model"),
    (broken.WritesTraining, "training-data-untouched", "changed the training matrix"),
    (broken.BadProfile, "options", "unknown option 'epoch'"),
    (broken.AssertingOptions, "options", "raised AssertionError instead of ConfigError"),
])
def test_broken_generator_fails_naming_the_rule(cls, rule, words):
    with pytest.raises(ConformanceError) as info:
        check_generator(cls)
    assert info.value.rule == rule
    assert f"breaks rule '{rule}'" in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("cls, rule", [
    (broken.ConstantMetric, "result-contract"),
    (broken.RandomMetric, "reproducible"),
    (broken.EmptyChokes, "degenerate"),
])
def test_broken_metric_fails_naming_the_rule(cls, rule):
    with pytest.raises(ConformanceError) as info:
        check_metric(cls)
    assert info.value.rule == rule


def test_a_generator_without_randomness_may_say_so():
    check_generator(broken.FixedSeed, deterministic=True)


def test_not_a_generator_is_not_registrable():
    with pytest.raises(ConformanceError, match="breaks rule 'registrable'"):
        check_generator(broken.ConstantMetric)
