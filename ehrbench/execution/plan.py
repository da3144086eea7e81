"""Planning a run: every name and option checked, and the grid of jobs (generator × repeat) laid out.

Planning happens before anything runs, so bad input fails in a second, not after an hour of
training. The plan resolves what the configuration leaves open (the default dataset, the default
generators and metrics, the device) without changing the configuration itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrbench.api import Generator, Metric
from ehrbench.config import RunConfig
from ehrbench.errors import ConfigError, EhrbenchError, path_component
from ehrbench.execution import variants as variants_
from ehrbench.execution.device import resolve_device
from ehrbench.execution.job import Job
from ehrbench.plugins import Entry, Registry
from ehrbench.seeding import derive_seed


@dataclass
class RunPlan:
    """A validated run: the config as given, with names resolved and plugins configured."""

    config: RunConfig
    dataset: str
    generators: list[str]
    metrics: list[str]
    device: str
    metric_instances: dict[str, Metric] = field(default_factory=dict)
    # The variant rows among ``generators`` (execution/variants.py); the others are registered names.
    variants: dict[str, variants_.Variant] = field(default_factory=dict)

    def jobs(self) -> list[Job]:
        """The grid. A job's seed derives from the run seed, its row's name and its repeat, so the
        variants of one generator draw different seeds, as two generators do."""
        return [
            Job(g, k, derive_seed(self.config.seed, "generator", g, k))
            for k in range(self.config.repeats)
            for g in self.generators
        ]

    def base_name(self, row: str) -> str:
        """The registered generator a row runs: itself, or a variant's generator."""
        variant = self.variants.get(row)
        return variant.generator if variant else row

    def generator_entry(self, registry: Registry, row: str) -> Entry:
        return registry.entry("generators", self.base_name(row))

    def generator_cls(self, registry: Registry, row: str) -> type[Generator]:
        return self.generator_entry(registry, row).cls

    def generator_options(self, row: str) -> dict[str, Any]:
        """The options a row overrides over its generator's profile (see :mod:`variants`)."""
        given = self.config.generator_options
        variant = self.variants.get(row)
        if variant is None:
            return dict(given.get(row, {}))
        return {**given.get(variant.generator, {}), **variant.options, **given.get(row, {})}

    def configure_generator(self, registry: Registry, row: str) -> Generator:
        """The row's generator, configured for the run's profile; bad options name the row."""
        try:
            return self.generator_cls(registry, row).configure(self.config.profile, self.generator_options(row))
        except EhrbenchError as exc:
            if row in self.variants:
                raise ConfigError(f"variant '{row}': {exc}") from None
            raise

    def entries(self, registry: Registry) -> list[Entry]:
        """The registry entries of every plugin class the run uses: dataset, generators, metrics."""
        generators = list(dict.fromkeys(self.base_name(g) for g in self.generators))
        return [registry.entry("datasets", self.dataset),
                *(registry.entry("generators", g) for g in generators),
                *(registry.entry("metrics", m) for m in self.metrics)]

    def importable(self, registry: Registry) -> bool:
        """Whether a fresh interpreter can import every plugin class of the run (by module name, or
        as a ``--plugin`` file); a class defined in ``__main__`` or inside a function it cannot."""
        return all(e.cls.__module__ != "__main__" and "<locals>" not in e.cls.__qualname__
                   for e in self.entries(registry))

    def default_directory(self) -> Path:
        """``runs/<name or dataset>-<profile>-<time>``: where a run goes without ``--out``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{self.config.name or self.dataset}-{self.config.profile}-{stamp}"
        return Path("runs") / path_component(name, "run name")


def _default_dataset(registry: Registry) -> str:
    defaults = registry.defaults("datasets")
    if len(defaults) != 1:
        found = f"{', '.join(defaults)} all claim to be" if defaults else "no available dataset is"
        raise ConfigError(f"{found} the default dataset; name one with --dataset (`ehrbench list datasets`).")
    return defaults[0]


def plan_run(config: RunConfig, registry: Registry) -> RunPlan:
    """Check every name and option before anything runs, so bad input fails in a second."""
    dataset = config.dataset if config.dataset is not None else _default_dataset(registry)
    registry.get("datasets", dataset).configure(config.dataset_options, config.profile)
    variants = variants_.expand(config.variants, registry)
    generators = config.generators if config.generators is not None else registry.defaults("generators")
    # Variants join the run's generators (a variant named in --generators as well counts once).
    generators = [*generators, *(v for v in variants if v not in generators)]
    metrics = config.metrics if config.metrics is not None else registry.defaults("metrics")
    if not generators:
        raise ConfigError("no generators to run: name some with --generators.")
    if not metrics:
        raise ConfigError("no metrics to compute: name some with --metrics.")
    for kind, names in (("generators", generators), ("metrics", metrics)):
        if len(set(names)) != len(names):
            raise ConfigError(f"{kind} lists a name twice: {', '.join(names)}.")
    for name in config.generator_options:
        if name not in variants:
            registry.entry("generators", name)
    for name in config.metric_options:
        registry.entry("metrics", name)
    for name in generators:
        if name not in variants:
            registry.entry("generators", name)
    plan = RunPlan(config, dataset, list(generators), list(metrics), "cpu", {}, variants)
    for name in generators:
        plan.configure_generator(registry, name)
    plan.metric_instances = {
        name: registry.get("metrics", name).configure(config.metric_options.get(name), config.profile)
        for name in metrics
    }
    plan.device = resolve_device(config.device, any(plan.generator_cls(registry, g).uses_torch for g in generators))
    return plan
