"""The rules of :func:`check_generator` and :func:`check_metric`, each failure naming its rule.

Generator rules: ``registrable``, ``options``, ``sample-contract`` (ndarray, shape, finite,
non-negative integer counts; 0/1 under the binary representation; n = 0, 1 and more rows than
the training set), ``training-data-untouched``, ``reproducible`` (same seed, same sample, bit for
bit), ``seed-used`` (another seed, another sample), ``global-rng`` (numpy's, Python's and
torch's global generators unchanged), ``save-load`` (a loaded model samples what the fitted one
did, when the class can save), ``device`` (a CPU job leaves CUDA uninitialised), ``reporting``
(parameter_count and training_log have their declared types).

Metric rules: ``registrable``, ``options``, ``result-contract`` (a dict of str → real number),
``inputs-untouched``, ``reproducible``, ``global-rng``, ``sizes`` (synthetic and test row counts
may differ), ``degenerate`` (an all-zero synthetic set gets numbers, not an exception).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ehrbench.api import Generator, Metric, RunContext
from ehrbench.errors import ConfigError
from ehrbench.execution.job import _READ_ONLY_WARNING as READ_ONLY_WARNING
from ehrbench.execution.job import read_only, sample_problem
from ehrbench.matrix import EHRMatrix
from ehrbench.plugins import _check_class


class ConformanceError(AssertionError):
    """A plugin class breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, cls: type, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{getattr(cls, '__qualname__', cls)!s} breaks rule '{rule}': {detail}")


def toy_matrix(n_patients: int = 160, n_codes: int = 24, seed: int = 0, binary: bool = False) -> EHRMatrix:
    """A small count matrix with correlated codes, a code no patient has and one every patient has."""
    rng = np.random.default_rng(seed)
    severity = rng.gamma(2.0, 0.5, size=(n_patients, 1))
    rates = rng.uniform(0.05, 0.6, size=n_codes) * severity
    X = rng.poisson(rates).astype(np.float32)
    X[:, 0] = 0  # an empty code
    X[:, 1] = np.maximum(X[:, 1], 1)  # a code every patient has
    if binary:
        X = (X > 0).astype(np.float32)
    return EHRMatrix(X, [f"C{j:03d}" for j in range(n_codes)])


# -- global state -------------------------------------------------------------------------------------
def _global_state() -> dict[str, Any]:
    state: dict[str, Any] = {"numpy": np.random.get_state(), "python": random.getstate()}
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.random.get_rng_state().clone()
    return state


def _same_state(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    changed = []
    a, b = before["numpy"], after["numpy"]
    if not (a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]):
        changed.append("numpy.random")
    if before["python"] != after["python"]:
        changed.append("random")
    if "torch" in before and "torch" in after:
        import torch

        if not torch.equal(before["torch"], after["torch"]):
            changed.append("torch")
    return changed


@contextmanager
def _no_global_rng(cls: type, what: str) -> Iterator[None]:
    before = _global_state()
    yield
    changed = _same_state(before, _global_state())
    if changed:
        raise ConformanceError(cls, "global-rng", f"{what} changed the global random state of {', '.join(changed)}; "
                                                  f"draw from ctx.rng(...) or a generator seeded from ctx.seed instead.")


def _call(cls: type, rule: str, what: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, its exception turned into the rule's failure."""
    try:
        return fn()
    except ConformanceError:
        raise
    except Exception as exc:
        raise ConformanceError(cls, rule, f"{what} raised {type(exc).__name__}: {exc}") from exc


# -- options --------------------------------------------------------------------------------------------
def _check_options(cls: type, configure: Callable[[Mapping[str, Any] | None, str], Any]) -> None:
    for profile in ("smoke", "quick", "paper"):
        _call(cls, "options", f"configuring profile '{profile}'", lambda p=profile: configure(None, p))
    try:
        configure({"no_such_option_xyz": 1}, "smoke")
    except ConfigError as exc:
        if "no_such_option_xyz" not in str(exc):
            raise ConformanceError(cls, "options", f"an unknown option's error does not name it: {exc}") from None
    except Exception as exc:
        raise ConformanceError(cls, "options", f"an unknown option raised {type(exc).__name__}, not ConfigError: "
                                               f"{exc}") from None
    else:
        raise ConformanceError(cls, "options", "an unknown option was accepted")
    options_cls = getattr(cls, "Options", None)
    if not (isinstance(options_cls, type) and dataclasses.is_dataclass(options_cls)):
        raise ConformanceError(cls, "options", f"Options must be a dataclass, got {options_cls!r}")
    for f in dataclasses.fields(options_cls):
        # No option takes an arbitrary object; numbers and text out of range must fail as clearly.
        for value in (object(), -1, 0, "no-such-value"):
            try:
                configure({f.name: value}, "smoke")
            except ConfigError:
                continue
            except Exception as exc:
                raise ConformanceError(cls, "options", f"option '{f.name}' = {value!r} raised {type(exc).__name__} "
                                                       f"instead of ConfigError ({exc}); raise ValueError in "
                                                       f"Options.__post_init__.") from None


# -- generators -----------------------------------------------------------------------------------------
def _ctx(seed: int, representation: str, scratch: Path, device: str = "cpu") -> RunContext:
    return RunContext(seed=seed, device=device, representation=representation, profile="smoke",  # type: ignore[arg-type]
                      scratch_dir=scratch)


def _fit_sample(cls: type, generator: Generator, X: np.ndarray, ctx: RunContext, n: int) -> np.ndarray:
    copy = X.copy()
    with warnings.catch_warnings():  # torch warns when it wraps the read-only array a job hands over
        warnings.filterwarnings("ignore", message=READ_ONLY_WARNING)
        _call(cls, "fit", "fit()", lambda: generator.fit(read_only(X), ctx))
    if not np.array_equal(copy, X):
        raise ConformanceError(cls, "training-data-untouched", "fit() changed the training matrix")
    return _sample(cls, generator, ctx, n, X.shape[1])


def _sample(cls: type, generator: Generator, ctx: RunContext, n: int, d: int) -> np.ndarray:
    samples = _call(cls, "sample", f"sample({n})", lambda: generator.sample(n, ctx))
    problem = sample_problem(samples, n, d, ctx.representation)
    if problem:
        raise ConformanceError(cls, "sample-contract", problem)
    return samples


def check_generator(
    cls: type[Generator],
    *,
    profile: str = "smoke",
    options: Mapping[str, Any] | None = None,
    representations: tuple[str, ...] = ("count", "binary"),
    train: EHRMatrix | None = None,
    device: str = "cpu",
    deterministic: bool = False,
) -> None:
    """Raise :class:`ConformanceError` naming the first rule ``cls`` breaks; return None when it keeps them all.

    ``options`` override the ``profile``'s (e.g. fewer epochs); ``train`` replaces the small matrix
    made here. Each representation costs two fits (``reproducible``). ``deterministic`` skips
    ``seed-used`` for a generator without randomness by design.
    """
    problem = _check_class("generators", cls)
    if problem:
        raise ConformanceError(cls, "registrable", problem)
    _check_options(cls, lambda values, p: cls.configure(p, values))
    if getattr(cls, "uses_torch", False):
        import torch  # noqa: F401  (imported now, so its global generator is watched from the start)

    def make() -> Generator:
        return _call(cls, "options", f"configure('{profile}', {dict(options or {})})",
                     lambda: cls.configure(profile, options))

    for representation in representations:
        data = train if train is not None else toy_matrix(binary=representation == "binary")
        X = data.as_representation(representation).X
        n = X.shape[0] + 7  # not the training size
        with tempfile.TemporaryDirectory(prefix="ehrbench-check-") as tmp:
            scratch = Path(tmp)
            ctx = _ctx(1234, representation, scratch / "scratch", device)
            (scratch / "scratch").mkdir()
            first_model = make()
            with _no_global_rng(cls, "fit() and sample()"):
                first = _fit_sample(cls, first_model, X, ctx, n)
            _sample(cls, first_model, ctx, 1, X.shape[1])
            empty = _call(cls, "sample", "sample(0)", lambda: first_model.sample(0, ctx))
            if not isinstance(empty, np.ndarray) or empty.shape != (0, X.shape[1]):
                raise ConformanceError(cls, "sample-contract", f"sample(0) must return an empty (0, {X.shape[1]}) "
                                                               f"array, got {getattr(empty, 'shape', empty)!r}")
            if not deterministic:
                other = _sample(cls, first_model, dataclasses.replace(ctx, seed=ctx.seed + 1), n, X.shape[1])
                if np.array_equal(first, other):
                    raise ConformanceError(cls, "seed-used", f"sampling with seeds {ctx.seed} and {ctx.seed + 1} gave "
                                                             f"the same matrix ({representation}); draw from "
                                                             f"ctx.rng(...), or pass deterministic=True if the "
                                                             f"generator has no randomness by design.")
            second = _fit_sample(cls, make(), X, ctx, n)
            if not np.array_equal(first, second):
                rows = int((first != second).any(axis=1).sum())
                raise ConformanceError(cls, "reproducible", f"two fits with seed {ctx.seed} sampled different matrices "
                                                            f"({rows} of {n} rows differ, {representation}); derive "
                                                            f"every random stream from ctx.seed.")
            if cls.can_save() and not cls.releases_real_records:
                _check_save_load(cls, first_model, make(), ctx, scratch, first, n, X.shape[1])
            _check_reporting(cls, first_model)
            if device == "cpu" and "torch" in sys.modules:
                import torch

                if torch.cuda.is_initialized():
                    raise ConformanceError(cls, "device", "a job on device 'cpu' initialised CUDA; put tensors on "
                                                          "ctx.device, never on a fixed 'cuda'.")


def _check_save_load(cls: type, fitted: Generator, fresh: Generator, ctx: RunContext, scratch: Path,
                     expected: np.ndarray, n: int, d: int) -> None:
    model = scratch / "model"
    model.mkdir()
    _call(cls, "save-load", "save()", lambda: fitted.save(model))
    _call(cls, "save-load", "load()", lambda: fresh.load(model, ctx))
    loaded = _call(cls, "save-load", "sample() after load()", lambda: fresh.sample(n, ctx))
    problem = sample_problem(loaded, n, d, ctx.representation)
    if problem:
        raise ConformanceError(cls, "save-load", f"after load(): {problem}")
    if not np.array_equal(loaded, expected):
        raise ConformanceError(cls, "save-load", "the loaded model samples another matrix than the fitted one with "
                                                 "the same seed; save everything sample() uses.")


def _check_reporting(cls: type, generator: Generator) -> None:
    count = _call(cls, "reporting", "parameter_count()", generator.parameter_count)
    if count is not None and (isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0):
        raise ConformanceError(cls, "reporting", f"parameter_count() must be None or a non-negative int, got {count!r}")
    log = _call(cls, "reporting", "training_log()", generator.training_log)
    if not isinstance(log, Mapping):
        raise ConformanceError(cls, "reporting", f"training_log() must return a dict, got {type(log).__name__}")
    for key, values in log.items():
        try:
            [float(v) for v in values]
        except (TypeError, ValueError):
            raise ConformanceError(cls, "reporting", f"training_log()['{key}'] is not a list of numbers") from None


# -- metrics --------------------------------------------------------------------------------------------
def _check_result(cls: type, result: Any, what: str) -> dict[str, float]:
    if not isinstance(result, Mapping) or not result:
        raise ConformanceError(cls, "result-contract", f"{what} must return a non-empty dict of key → number, got "
                                                       f"{result!r}")
    for key, value in result.items():
        if not isinstance(key, str):
            raise ConformanceError(cls, "result-contract", f"{what}: key {key!r} is not a string")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConformanceError(cls, "result-contract", f"{what}: '{key}' is {value!r}, not a real number")
    return dict(result)


def _same_result(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(float(a[k])) and math.isnan(float(b[k]))) or float(a[k]) == float(b[k]) for k in a)


def check_metric(cls: type[Metric], *, profile: str = "smoke", options: Mapping[str, Any] | None = None,
                 representations: tuple[str, ...] = ("count", "binary")) -> None:
    """Raise :class:`ConformanceError` naming the first rule ``cls`` breaks; return None when it keeps them all."""
    problem = _check_class("metrics", cls)
    if problem:
        raise ConformanceError(cls, "registrable", problem)
    _check_options(cls, lambda values, p: cls.configure(values, p))
    metric = _call(cls, "options", f"configure({dict(options or {})}, '{profile}')",
                   lambda: cls.configure(options, profile))
    for representation in representations:
        data = toy_matrix(200, binary=representation == "binary")
        train, test = data.rows(np.arange(0, 140)), data.rows(np.arange(140, 200))
        synthetic = toy_matrix(90, seed=7, binary=representation == "binary")
        for m in (train, test, synthetic):
            m.X.flags.writeable = False
        ctx = RunContext(seed=99, representation=representation, profile=profile)  # type: ignore[arg-type]
        copies = [m.X.copy() for m in (train, test, synthetic)]
        with _no_global_rng(cls, "compute()"):
            first = _check_result(cls, _call(cls, "sizes", "compute() with 140 train, 60 test and 90 synthetic rows",
                                             lambda: metric.compute(train, test, synthetic, ctx)), "compute()")
        if any(not np.array_equal(c, m.X) for c, m in zip(copies, (train, test, synthetic))):
            raise ConformanceError(cls, "inputs-untouched", "compute() changed an input matrix")
        second = _check_result(cls, metric.compute(train, test, synthetic, ctx), "compute()")
        if not _same_result(first, second):
            raise ConformanceError(cls, "reproducible", f"two calls with seed {ctx.seed} gave {first} and {second}; "
                                                        f"derive every random stream from ctx.seed.")
        empty = synthetic.with_data(np.zeros_like(synthetic.X))
        _check_result(cls, _call(cls, "degenerate", "compute() on an all-zero synthetic set",
                                 lambda: metric.compute(train, test, empty, ctx)), "compute() on all-zero data")
