"""SDV generators (tvae, ctgan, gaussian-copula), their workarounds and their isolation.

Tests that fit need the ``sdv`` extra and are skipped with a reason without it; the listing
and import-isolation tests run either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _extras import needs_extra

from ehrbench.api import RunContext
from ehrbench.errors import ConfigError
from ehrbench.plugins import load_registry
from ehrbench_plugins.generators.sdv import synthesizers as sdv_plugin
from ehrbench_plugins.generators.sdv.synthesizers import CTGAN, TVAE, GaussianCopula, column_names

SDV_NAMES = ("tvae", "ctgan", "gaussian-copula")
CLASSES = (TVAE, CTGAN, GaussianCopula)
needs_sdv = needs_extra("sdv")


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    """120 × 6 counts: a correlated pair, a rare code, a constant-zero code."""
    rng = np.random.default_rng(3)
    n = 120
    shared = rng.random(n) < 0.4
    X = np.zeros((n, 6), dtype=np.float32)
    X[:, 0] = shared * rng.integers(1, 4, n)
    X[:, 1] = shared
    X[:, 2] = rng.random(n) < 0.1
    X[:, 3] = rng.poisson(0.7, n)
    X[:, 5] = rng.random(n) < 0.5
    return X


def smoke_fit(cls: type, X: np.ndarray, seed: int = 0, representation: str = "count"):
    gen = cls.configure("smoke")
    gen.fit(X, RunContext(seed=seed, profile="smoke", representation=representation))  # type: ignore[arg-type]
    return gen


# -- registration, listing and the core's independence from SDV ---------------------------------
def test_registered_with_requirement_and_hint() -> None:
    assert sdv_plugin.ehrbench_generators() == [TVAE, CTGAN, GaussianCopula]
    for cls in CLASSES:
        assert cls.requires == ("sdv",) and "ehrbench[sdv]" in cls.install_hint
        assert set(cls.profiles) == {"smoke", "quick", "paper"}
    assert TVAE.uses_torch and CTGAN.uses_torch and not GaussianCopula.uses_torch
    # None fits meaningfully within the default run's per-job budget on a CPU (DESIGN.md §8).
    assert not (TVAE.default or CTGAN.default or GaussianCopula.default)


def test_paper_profile_is_sdvs_defaults() -> None:
    tvae = TVAE.configure("paper").options
    assert (tvae.epochs, tvae.batch_size, tvae.embedding_dim) == (300, 500, 128)
    assert tvae.compress_dims == tvae.decompress_dims == (128, 128) and tvae.max_rows == 0
    ctgan = CTGAN.configure("paper").options
    assert (ctgan.epochs, ctgan.batch_size, ctgan.pac) == (300, 500, 10)
    assert ctgan.generator_dim == ctgan.discriminator_dim == (256, 256) and ctgan.max_rows == 0


def test_listed_unavailable_with_hint_when_sdv_is_missing(monkeypatch, cli) -> None:
    real_find_spec = __import__("importlib").util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "sdv" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr("importlib.util.find_spec", find_spec)
    registry = load_registry()
    for name in SDV_NAMES:
        assert "ehrbench[sdv]" in registry.entries["generators"][name].unavailable
        assert name not in registry.defaults("generators")
    result = cli("list", "generators")
    assert result.code == 0 and "ehrbench[sdv]" in result.out and "tvae" in result.out
    result = cli("run", "--generators", "tvae", "--profile", "smoke")
    assert result.code == 2 and "not available" in result.err and "ehrbench[sdv]" in result.err


def test_core_and_plugin_module_never_import_sdv() -> None:
    code = textwrap.dedent(
        """
        import sys
        import ehrbench.cli
        from ehrbench.plugins import load_registry
        registry = load_registry()
        import ehrbench_plugins.generators.sdv
        registry.entries["generators"]["tvae"].cls.configure("quick")  # registered with or without SDV
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("sdv", "ctgan", "rdt", "copulas")))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (CTGAN, {"batch_size": 25}, "multiple of pac"),
        (TVAE, {"epochs": 0}, "epochs must be positive"),
        (TVAE, {"compress_dims": "64,0"}, "compress_dims must be positive"),
        (TVAE, {"max_rows": 1}, "max_rows"),
        (GaussianCopula, {"default_distribution": "cauchy"}, "is not one of"),
        (TVAE, {"column_sdtype": "boolean"}, "is not one of"),
        (CTGAN, {"epoch": 3}, "did you mean 'epochs'"),
    ],
)
def test_bad_options_are_config_errors(cls: type, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cls.configure("quick", options)


def test_column_names_are_fixed_width_and_prefix_free() -> None:
    names = column_names(1071)
    assert names[0] == "c00000" and names[-1] == "c01070" and len(set(map(len, names))) == 1


# -- fitting and sampling (smoke) --------------------------------------------------------------
@pytest.fixture(scope="module", params=CLASSES, ids=lambda c: c.name)
def fitted(request, counts: np.ndarray):
    """One smoke fit per class (seed 4), with the global RNG states around it."""
    import torch

    before = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    gen = smoke_fit(request.param, counts, seed=4)
    after = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    return gen, before, after


@needs_sdv
def test_smoke_fit_sample_contract_on_counts(fitted, counts: np.ndarray) -> None:
    gen = fitted[0]
    out = gen.sample(150, RunContext(seed=1))
    assert out.shape == (150, counts.shape[1]) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all() and (out == np.round(out)).all()
    assert out.max() <= counts.max()
    assert (out[:, 4] == 0).all()  # a code never seen in training is never generated
    assert gen.sample(0, RunContext(seed=1)).shape == (0, counts.shape[1])


@needs_sdv
def test_seeded_and_global_rngs_untouched(fitted, counts: np.ndarray) -> None:
    import torch

    gen, before, after = fitted
    assert np.array_equal(before[0], after[0]) and torch.equal(before[1], after[1])
    first = gen.sample(80, RunContext(seed=9))
    np.testing.assert_array_equal(first, gen.sample(80, RunContext(seed=9)))
    assert not np.array_equal(first, gen.sample(80, RunContext(seed=10)))
    refit = smoke_fit(type(gen), counts, seed=4)
    np.testing.assert_array_equal(first, refit.sample(80, RunContext(seed=9)))


@needs_sdv
def test_training_log_and_parameters(fitted) -> None:
    gen = fitted[0]
    expected = {"tvae": {"loss"}, "ctgan": {"generator_loss", "discriminator_loss"}, "gaussian-copula": set()}
    log = gen.training_log()
    assert set(log) == expected[gen.name] and all(len(v) == 1 for v in log.values())
    if gen.uses_torch:
        assert gen.parameter_count() > 0
    else:
        assert gen.parameter_count() is None


@needs_sdv
@pytest.mark.parametrize("cls", CLASSES)
def test_binary_representation_gives_zero_one(cls: type, counts: np.ndarray) -> None:
    binary = (counts > 0).astype(np.float32)
    out = smoke_fit(cls, binary, representation="binary").sample(100, RunContext(seed=2))
    assert set(np.unique(out)) <= {0.0, 1.0}


@needs_sdv
def test_gaussian_copula_keeps_a_strong_correlation(counts: np.ndarray) -> None:
    """A check that the copula is fitted, not independent: codes 0 and 1 co-occur in training."""
    out = smoke_fit(GaussianCopula, counts).sample(2000, RunContext(seed=5))
    assert np.corrcoef(out[:, 0] > 0, out[:, 1] > 0)[0, 1] > 0.5
    assert abs((out[:, 2] > 0).mean() - (counts[:, 2] > 0).mean()) < 0.1


@needs_sdv
def test_max_rows_fits_on_a_seeded_subset(counts: np.ndarray) -> None:
    """Smoke batches hold 50 rows: all 120 rows take 3 batches an epoch, a 50-row subset one."""
    full = smoke_fit(TVAE, counts)
    assert len(full._synthesizer.get_loss_values()) == 3
    subset = TVAE.configure("smoke", {"max_rows": 50})
    subset.fit(counts, RunContext(seed=0))
    assert len(subset._synthesizer.get_loss_values()) == 1
    copula = GaussianCopula.configure("smoke", {"max_rows": 40})
    copula.fit(counts, RunContext(seed=0))
    assert copula._synthesizer._num_rows == 40  # SDV records how many rows it was fitted on


@needs_sdv
def test_sample_before_fit_and_bad_input_are_clear() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        TVAE.configure("smoke").sample(3, RunContext(seed=0))
    with pytest.raises(ValueError, match="at least 2 rows"):
        TVAE.configure("smoke").fit(np.zeros((1, 3), np.float32), RunContext(seed=0))


# -- the workarounds ---------------------------------------------------------------------------
@needs_sdv
@pytest.mark.parametrize("discrete", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_sequential_transform_equals_sdvs_joblib_path(discrete: bool) -> None:
    """Same matrix, and the same encoder random states afterwards, as the parallel path."""
    import pandas as pd
    from ctgan.data_transformer import DataTransformer

    from ehrbench_plugins.generators.sdv.speedup import sequential_column_transform

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.poisson(1.0, (500, 4)).astype(np.int32), columns=column_names(4))
    transformer = DataTransformer()
    transformer.fit(df, list(df.columns) if discrete else [])

    def states() -> list:
        return [info.transform.random_states["transform"].get_state()[1].copy()
                for info in transformer._column_transform_info_list]

    before = states()
    joblib_out = transformer.transform(df)  # 500 rows or more: ctgan's joblib path
    assert all(np.array_equal(a, b) for a, b in zip(before, states()))
    original = DataTransformer._parallel_transform
    with sequential_column_transform() as applied:
        assert applied and DataTransformer._parallel_transform is not original
        sequential_out = transformer.transform(df)
    assert DataTransformer._parallel_transform is original
    np.testing.assert_array_equal(joblib_out, sequential_out)
    assert all(np.array_equal(a, b) for a, b in zip(before, states()))


@needs_sdv
def test_workarounds_are_undone_after_an_error() -> None:
    from ctgan.data_transformer import DataTransformer
    from sdv.metadata._single_table import _SingleTableMetadata

    from ehrbench_plugins.generators.sdv.speedup import wide_table_workarounds

    originals = (DataTransformer._parallel_transform, _SingleTableMetadata.__dict__["_get_invalid_column_values"])
    with pytest.raises(KeyError), wide_table_workarounds() as applied:
        assert applied == (True, True)
        raise KeyError("boom")
    assert (DataTransformer._parallel_transform,
            _SingleTableMetadata.__dict__["_get_invalid_column_values"]) == originals


@needs_sdv
def test_numeric_validation_shortcut_keeps_sdvs_verdicts() -> None:
    """Numeric columns pass as before; a string in a numerical column is still rejected."""
    import pandas as pd
    from sdv.errors import InvalidDataError

    from ehrbench_plugins.generators.sdv.environment import import_sdv
    from ehrbench_plugins.generators.sdv.speedup import numeric_validation_shortcut

    sdv = import_sdv()
    metadata = sdv.Metadata.load_from_dict(sdv_plugin.metadata_dict(["c00000", "c00001"], "numerical"))
    good = pd.DataFrame({"c00000": [0, 1, 2], "c00001": [0.0, 1.0, np.nan]})
    bad = pd.DataFrame({"c00000": [0, 1, 2], "c00001": [0, "x", 1]})
    with numeric_validation_shortcut() as applied:
        assert applied
        metadata.validate_data({"ehr": good})
        with pytest.raises(InvalidDataError, match="c00001"):
            metadata.validate_data({"ehr": bad})


@needs_sdv
def test_no_home_files_and_no_network(tmp_path: Path) -> None:
    """Import, fit and sample in a fresh process whose $HOME is empty and sockets are blocked."""
    home = tmp_path / "home"
    home.mkdir()
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise AssertionError(f"network access attempted: {args!r}")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import numpy as np
        from ehrbench.api import RunContext
        from ehrbench_plugins.generators.sdv.synthesizers import GaussianCopula
        from ehrbench_plugins.generators.sdv.environment import sdv_data_dir
        X = (np.random.default_rng(0).random((60, 4)) < 0.3).astype(np.float32)
        for cls in (GaussianCopula,):  # the import is what writes; one fit covers the rest
            gen = cls.configure("smoke")
            gen.fit(X, RunContext(seed=0))
            gen.sample(10, RunContext(seed=0))
        print(sdv_data_dir())
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert list(home.rglob("*")) == []
    assert not Path(out.stdout.strip()).exists()  # the private data dir is removed at exit


# -- through the runner ------------------------------------------------------------------------
RUN_NAMES = ("tvae", "gaussian-copula")  # ctgan's smoke fit is covered above and is the slowest


@needs_sdv
def test_cli_run_with_the_sdv_generators(cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = cli("run", "--generators", ",".join(RUN_NAMES),
                 "--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=150",
                 "--dataset-option", "codes=12", "--metrics", "dimension_wise_probability", "--out", out)
    assert result.code == 0, result.err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    jobs = {r["generator"]: r for r in records if r["type"] == "job"}
    assert {name: jobs[name]["status"] for name in RUN_NAMES} == dict.fromkeys(RUN_NAMES, "ok")
    for name in RUN_NAMES:
        assert (out / "samples" / name / "repeat-0.npz").is_file()
    assert not (out / "models").exists() or not any((out / "models").rglob("COMPLETE"))
