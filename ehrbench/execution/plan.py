"""Planning a run: every name and option checked, and the grid of jobs (generator × repeat) laid out.

Planning happens before anything runs, so bad input fails in a second, not after an hour of
training. The plan resolves what the configuration leaves open (the default dataset, the default
generators and metrics, the device) without changing the configuration itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ehrbench.api import Metric
from ehrbench.config import RunConfig
from ehrbench.errors import ConfigError, path_component
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

    def jobs(self) -> list[Job]:
        return [
            Job(g, k, derive_seed(self.config.seed, "generator", g, k))
            for k in range(self.config.repeats)
            for g in self.generators
        ]

    def entries(self, registry: Registry) -> list[Entry]:
        """The registry entries of every plugin class the run uses: dataset, generators, metrics."""
        return [registry.entry("datasets", self.dataset),
                *(registry.entry("generators", g) for g in self.generators),
                *(registry.entry("metrics", m) for m in self.metrics)]

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
    generators = config.generators if config.generators is not None else registry.defaults("generators")
    metrics = config.metrics if config.metrics is not None else registry.defaults("metrics")
    if not generators:
        raise ConfigError("no generators to run: name some with --generators.")
    if not metrics:
        raise ConfigError("no metrics to compute: name some with --metrics.")
    for kind, names in (("generators", generators), ("metrics", metrics)):
        if len(set(names)) != len(names):
            raise ConfigError(f"{kind} lists a name twice: {', '.join(names)}.")
    for kind, key in (("generators", "generator_options"), ("metrics", "metric_options")):
        for name in getattr(config, key):
            registry.entry(kind, name)
    for name in generators:
        cls = registry.get("generators", name)
        cls.configure(config.profile, config.generator_options.get(name))
    metric_instances = {
        name: registry.get("metrics", name).configure(config.metric_options.get(name), config.profile)
        for name in metrics
    }
    needs_torch = any(registry.get("generators", g).uses_torch for g in generators)
    return RunPlan(config, dataset, list(generators), list(metrics), resolve_device(config.device, needs_torch),
                   metric_instances)
