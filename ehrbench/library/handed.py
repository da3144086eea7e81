"""The report of a synthetic set someone hands you: a run made of that set and the calibration rows.

The set becomes a generator row whose model is the set itself, scored as a run's repeat 0 would be
(the same metric seeds as ``ehrbench evaluate``); every available calibration generator (a noise
floor such as resampled training rows) is fitted on the real train split on the spot and sampled
to the same size, so the reader sees the floor beside the vendor's numbers. The handed-over row
has no cost figures: its training happened elsewhere.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench.api import Dataset, Generator
from ehrbench.config import RunConfig
from ehrbench.errors import ConfigError, PluginError
from ehrbench.execution.job import GenerationOutcome, JobSpec
from ehrbench.execution.plan import plan_run
from ehrbench.execution.runner import Runner
from ehrbench.matrix import EHRMatrix, Split
from ehrbench.plugins import Registry

INPUT_DATASET = "evaluate-input"


def _fingerprint(*matrices: EHRMatrix) -> str:
    h = hashlib.sha256()
    for m in matrices:
        h.update(np.ascontiguousarray(m.X).tobytes())
        h.update("\0".join(m.codes).encode())
    return h.hexdigest()[:16]


def _classes(name: str, train: EHRMatrix, synthetic: EHRMatrix) -> tuple[type[Generator], type[Dataset]]:
    class HandedOver(Generator):
        description = "a synthetic set handed over to `ehrbench evaluate`: fitted elsewhere, not here"
        default = False

        def fit(self, X_train: np.ndarray, ctx: Any) -> None:
            """Nothing to learn: the model is the set."""

        def sample(self, n: int, ctx: Any) -> np.ndarray:
            return synthetic.X.copy()

    class EvaluateInput(Dataset):
        description = "the real train split handed to `ehrbench evaluate`"

        def load(self) -> EHRMatrix:
            return train

    HandedOver.name = name
    EvaluateInput.name = INPUT_DATASET
    return HandedOver, EvaluateInput


class _GivenSplitRunner(Runner):
    """A runner on the split it is given (no dataset to load and split), with no cost for the handed set."""

    def __init__(self, *args: Any, data_split: Split, info: dict[str, Any], handed: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._given = (data_split, info)
        self._handed = handed

    def _load_data(self) -> tuple[Split, dict[str, Any]]:
        return self._given

    def _record_generation(self, spec: JobSpec, outcome: GenerationOutcome, data_split: Split) -> None:
        if spec.job.generator == self._handed:  # reading an array is not what generating it cost
            outcome.cost = {k: outcome.cost[k] for k in ("device", "n_samples") if k in outcome.cost}
        super()._record_generation(spec, outcome, data_split)


def write_report(
    train: EHRMatrix,
    test: EHRMatrix,
    synthetic: EHRMatrix,
    out: Path,
    registry: Registry,
    metrics: Iterable[str],
    *,
    name: str = "synthetic",
    profile: str = "paper",
    seed: int = 0,
    representation: str = "count",
    calibration: bool = True,
    sources: dict[str, str] | None = None,
) -> Path:
    """Write the self-contained report of ``synthetic`` (and the calibration rows) to ``out``."""
    handed_cls, dataset_cls = _classes(name, train, synthetic)
    try:
        registry.add("generators", handed_cls, "the synthetic set handed to ehrbench evaluate")
        registry.add("datasets", dataset_cls, "the real splits handed to ehrbench evaluate")
    except PluginError as exc:
        raise ConfigError(f"--name {name!r}: {exc}") from None
    floors = [n for n in registry.names("generators", available_only=True)
              if getattr(registry.get("generators", n), "calibration", False)] if calibration else []
    train, test, synthetic = (m.as_representation(representation) for m in (train, test, synthetic))
    with tempfile.TemporaryDirectory(prefix="ehrbench-evaluate-") as tmp:
        run_dir = Path(tmp) / "run"
        config = RunConfig(name=name, dataset=INPUT_DATASET, generators=[name, *floors], metrics=list(metrics),
                           repeats=1, profile=profile, device="cpu", seed=seed, samples=synthetic.n_patients,
                           representation=representation, out=str(run_dir))  # type: ignore[arg-type]
        plan = plan_run(config, registry)
        info = {"name": INPUT_DATASET, "options": dict(sources or {}), "fingerprint": _fingerprint(train, test),
                "simulated": False, "n_patients": train.n_patients + test.n_patients, "n_codes": train.n_codes,
                "representation": representation, "summary": None,
                "notice": None}
        for part in (train, test):
            part.X.flags.writeable = False
        data_split = Split(train, test, seed, test.n_patients / (train.n_patients + test.n_patients))
        finished = _GivenSplitRunner(plan, registry, data_split=data_split, info=info, handed=name).run()
        if finished.report is None:
            raise ConfigError(f"the report could not be built; the reason is logged above (run directory {run_dir}).")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(finished.report, out)
    return out
