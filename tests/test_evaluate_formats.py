"""`ehrbench evaluate` reads every format the `matrix` dataset reads, and names utility targets by code."""

from __future__ import annotations

import gzip
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from ehrbench.matrix import EHRMatrix

CODES = ["401", "038", "V30", "428", "250", "E849"]
METRICS = "dimension_wise_probability,pairwise_correlation_difference,tstr_auroc"


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(5)
    return {name: rng.integers(0, 3, size=(n, len(CODES))) for name, n in (("train", 80), ("test", 50), ("synthetic", 40))}


def write(tmp_path, arrays, fmt: str) -> dict[str, str]:
    paths = {}
    for name, X in arrays.items():
        frame = pd.DataFrame(X, columns=CODES)
        path = tmp_path / f"{name}{fmt}"
        if fmt == ".npz":
            EHRMatrix(X.astype(np.float32), CODES).save(path)
        elif fmt == ".object.npz":  # np.array(df.columns) has object dtype: NumPy pickles it
            np.savez(path, X=X, codes=np.array(frame.columns))
        elif fmt == ".csv":
            frame.to_csv(path, index=False)
        elif fmt == ".csv.gz":
            with gzip.open(path, "wt") as fh:
                frame.to_csv(fh, index=False)
        paths[name] = str(path)
    return paths


def scores(cli, paths) -> dict:
    result = cli("evaluate", "--train", paths["train"], "--test", paths["test"], "--synthetic", paths["synthetic"],
                 "--metrics", METRICS, "--profile", "smoke", "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


@pytest.mark.parametrize("fmt", [".object.npz", ".csv", ".csv.gz"])
def test_every_matrix_format_gives_the_npz_scores(cli, tmp_path, arrays, fmt):
    (tmp_path / "ref").mkdir()
    reference = scores(cli, write(tmp_path / "ref", arrays, ".npz"))
    assert scores(cli, write(tmp_path, arrays, fmt)) == reference


def test_npy_files_are_read_with_numbered_columns(cli, tmp_path, arrays):
    paths = {}
    for name, X in arrays.items():
        np.save(tmp_path / f"{name}.npy", X)
        paths[name] = str(tmp_path / f"{name}.npy")
    assert scores(cli, paths)["tstr_auroc.target_1_code"] in {str(j) for j in range(len(CODES))}


def test_utility_targets_are_named_by_code(cli, tmp_path, arrays):
    found = scores(cli, write(tmp_path, arrays, ".csv"))
    assert not any(k.endswith("_column") for k in found)
    code = found["tstr_auroc.target_1_code"]
    prevalence = (arrays["train"] > 0).mean(axis=0)
    assert code == CODES[int(np.argmax(prevalence))]  # the most prevalent code of the training matrix
    table = cli("evaluate", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
                "--synthetic", str(tmp_path / "synthetic.csv"), "--metrics", "tstr_auroc", "--profile", "smoke")
    assert "tstr_auroc.target_1_code" in table.out and f" {code} " in table.out


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_an_object_array_that_is_not_text_is_refused_without_running_it(cli, tmp_path, arrays):
    write(tmp_path, arrays, ".npz")
    evil = tmp_path / "evil.npz"
    np.savez(evil, X=arrays["synthetic"], codes=np.array([Payload(), *CODES[1:]], dtype=object))
    assert b"print" in pickle.dumps(Payload())
    result = cli("evaluate", "--train", tmp_path / "train.npz", "--test", tmp_path / "test.npz", "--synthetic", evil)
    assert result.code == 2 and "--synthetic" in result.err and "evil.npz" in result.err
    assert "refused to load 'builtins.print'" in result.err and "this ran" not in result.out  # print() never ran
