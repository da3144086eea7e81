"""``run.json``: what a run is and what it ran on, written when it starts and completed when it ends.

Everything a later reader needs without loading a plugin is here: the configuration, the plugin
sources, the dataset (fingerprint, split, whether it is simulated, the published results its
plugin supplies), the metrics' options and trade-off axes, the device and the package versions.
"""

from __future__ import annotations

from typing import Any

from ehrbench.execution.device import describe_device
from ehrbench.execution.executors import Executor
from ehrbench.execution.plan import RunPlan
from ehrbench.matrix import Split
from ehrbench.plugins import Registry
from ehrbench.rundir.directory import RunDirectory
from ehrbench.rundir.environment import environment, now


def _packages(plan: RunPlan, registry: Registry, executor: Executor) -> tuple[list[str], list[str]]:
    """(distributions, modules) whose versions the run depends on, from what its plugins declare."""
    entries = plan.entries(registry)
    distributions = [e.distribution for e in entries if e.distribution]
    modules = [m for e in entries for m in getattr(e.cls, "requires", ())]
    modules += ["torch" for e in entries if getattr(e.cls, "uses_torch", False)]
    return distributions, [*modules, *executor.requires]


def run_manifest(plan: RunPlan, registry: Registry, run: RunDirectory, dataset: dict[str, Any], data: Split,
                 n_samples: int, executor: Executor, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The content of ``run.json`` for a run starting (``previous`` None) or resuming."""
    dataset_cls = registry.get("datasets", plan.dataset)
    return {
        "config": {**plan.config.to_dict(), "out": plan.config.out or str(run)},
        "generators": plan.generators,
        "metrics": plan.metrics,
        "metric_options": {n: m.options_dict() for n, m in plan.metric_instances.items()},
        # Every generator's options as its profile and the user's overrides resolve them.
        "generator_options": {n: plan.configure_generator(registry, n).options_dict() for n in plan.generators},
        # Each variant row's registered generator (execution/variants.py); absent rows run themselves.
        "variants": {n: v.generator for n, v in plan.variants.items()},
        "tradeoff_axes": {n: m.tradeoff_axis for n, m in plan.metric_instances.items() if m.tradeoff_axis is not None},
        "plugins": {
            "generators": {n: plan.generator_entry(registry, n).source for n in plan.generators},
            "metrics": {n: registry.entry("metrics", n).source for n in plan.metrics},
        },
        "dataset": {**dataset, "published": [p.to_dict() for p in dataset_cls.published]},
        "split": data.manifest(),
        "n_samples": n_samples,
        "device": describe_device(plan.device),
        # Where the jobs ran (``executor = auto`` resolved): results do not depend on it, costs may.
        "execution": {"executor": executor.name, "jobs": getattr(executor, "jobs", 1)},  # ray: None, the cluster's capacity
        "environment": environment(*_packages(plan, registry, executor)),
        "created_at": previous["created_at"] if previous else now(),
        "resumed_at": (previous.get("resumed_at", []) + [now()]) if previous else [],
        "finished_at": None,
    }
