"""The bad-input catalogue (issue 23): every kind of bad input a user can give, one table row each.

Each case builds its inputs, calls ``ehrbench`` in this process, and requires exit status 2, no
traceback, and a message that names the problem (the file, cell, option or name) — never a
silent success. Cases that need a finished run share one small run, copied before they damage it.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

PLUGINS = Path(__file__).parent / "plugins"
SMALL = ["--profile", "smoke", "--repeats", "1", "--dataset-option", "patients=200", "--dataset-option", "codes=20",
         "--generators", "independent-marginals", "--metrics", "dimension_wise_probability"]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path, Path], list]  # (scratch folder, a finished run to copy) -> CLI arguments
    expect: tuple[str, ...]  # every string must appear in stderr; "{tmp}" stands for the scratch folder


# What a configuration-file case leaves unsaid: a small run, so that input wrongly accepted costs seconds.
SMALL_TOML = {"generators": '["independent-marginals"]', "metrics": '["dimension_wise_probability"]',
              "repeats": "1", "profile": '"smoke"'}


def toml(text: str) -> Callable[[Path, Path], list]:
    def build(tmp: Path, run: Path) -> list:
        lines = [f"{k} = {v}\n" for k, v in SMALL_TOML.items() if not any(
            line.split("=")[0].strip() == k for line in text.splitlines())]
        tables = "" if "[dataset_options]" in text else "\n[dataset_options]\npatients = 200\ncodes = 20\n"
        (tmp / "bench.toml").write_text("".join(lines) + text + tables)
        return ["run", tmp / "bench.toml", "--out", tmp / "out"]
    return build


def flags(*args: str) -> Callable[[Path, Path], list]:
    return lambda tmp, run: ["run", *SMALL, "--out", tmp / "out", *args]


def _npz(tmp: Path, name: str = "m.npz", **arrays) -> Path:
    path = tmp / name
    np.savez(path, **arrays)
    return path


def matrix_run(make: Callable[[Path], Path], *extra: str) -> Callable[[Path, Path], list]:
    """``run --dataset matrix`` on a file that ``make`` writes."""
    def build(tmp: Path, run: Path) -> list:
        path = make(tmp)
        return ["run", "--dataset", "matrix", "--dataset-option", f"path={path}", *extra, "--generators",
                "independent-marginals", "--metrics", "dimension_wise_probability", "--profile", "smoke",
                "--repeats", "1", "--out", tmp / "out"]
    return build


def good_X(n: int = 60, d: int = 4) -> np.ndarray:
    return (np.arange(n * d).reshape(n, d) % 3).astype(np.float64)


def with_cell(value, dtype=np.float64) -> np.ndarray:
    X = good_X().astype(dtype)
    X[7, 2] = value
    return X


def npz_with(X=None, codes=None, **more) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        data = good_X() if X is None else X
        names = np.array([f"c{j}" for j in range(data.shape[1] if data.ndim == 2 else 1)]) if codes is None else codes
        return _npz(tmp, X=data, codes=names, **more)
    return make


def npy_with(X) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        np.save(tmp / "m.npy", X, allow_pickle=True)
        return tmp / "m.npy"
    return make


def csv_with(text: str, name: str = "m.csv") -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_text(text)
        return tmp / name
    return make


def csv_rows(header: str, bad_row: str, n: int = 60) -> str:
    rows = [",".join(str((i + j) % 3) for j in range(len(header.split(",")))) for i in range(n)]
    rows[5] = bad_row
    return header + "\n" + "\n".join(rows) + "\n"


# -- MIMIC-III extracts ------------------------------------------------------------------------
ADMISSIONS = "row_id,subject_id,hadm_id\n" + "".join(f"{i},{i},{100 + i}\n" for i in range(1, 61))
DIAGNOSES_HEADER = "row_id,subject_id,hadm_id,seq_num,icd9_code\n"
DIAGNOSES = "".join(f"{i},{i},{100 + i},1,{4010 + i % 9}\n" for i in range(1, 61))


def mimic(admissions: str = ADMISSIONS, diagnoses: str = DIAGNOSES_HEADER + DIAGNOSES, out: str = "m.npz",
          out_is_dir: bool = False) -> Callable[[Path, Path], list]:
    def build(tmp: Path, run: Path) -> list:
        (tmp / "ADMISSIONS.csv").write_text(admissions, encoding="utf-8")
        (tmp / "DIAGNOSES_ICD.csv").write_text(diagnoses, encoding="utf-8")
        target = tmp / out
        if out_is_dir:
            target.mkdir(parents=True)
        return ["prepare", "mimic3", "--admissions", tmp / "ADMISSIONS.csv", "--diagnoses", tmp / "DIAGNOSES_ICD.csv",
                "-o", target]
    return build


def dx_row(row: str) -> str:
    return DIAGNOSES_HEADER + DIAGNOSES + row + "\n"


def medgan(matrix, types=None, allow: bool = True) -> Callable[[Path, Path], list]:
    def build(tmp: Path, run: Path) -> list:
        (tmp / "m.matrix").write_bytes(matrix if isinstance(matrix, bytes) else pickle.dumps(matrix, protocol=2))
        args = ["prepare", "mimic3", "--matrix", tmp / "m.matrix", "-o", tmp / "o.npz"]
        if types is not None:
            (tmp / "m.types").write_bytes(pickle.dumps(types, protocol=2))
            args += ["--types", tmp / "m.types"]
        return args + (["--allow-pickle"] if allow else [])
    return build


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


# -- run directories -----------------------------------------------------------------------------
def damaged(change: Callable[[Path], None], *command: str) -> Callable[[Path, Path], list]:
    """A copy of the finished run, changed by ``change``, then ``ehrbench <command> RUN``."""
    def build(tmp: Path, run: Path) -> list:
        copy = tmp / "run"
        shutil.copytree(run, copy)
        change(copy)
        if command[0] == "resume":
            return ["run", *SMALL, "--out", copy, "--resume", *command[1:]]
        return [command[0], copy, *command[1:]]
    return build


def write(name: str, text: str | bytes) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return change


def edit_results(transform: Callable[[list[dict]], list]) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        path = run / "results.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n"
                                for line in transform(records)))
    return change


def first_metric(change: Callable[[dict], None]) -> Callable[[list[dict]], list]:
    def transform(records: list[dict]) -> list:
        for r in records:
            if r["type"] == "metric":
                change(r)
                break
        return records
    return transform


def edit_manifest(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Change run.json's object in place (``change``'s return value is ignored)."""
    def apply(run: Path) -> None:
        path = run / "run.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return apply


def set_key(key: str, value) -> Callable[[dict], None]:
    return lambda data: data.__setitem__(key, value)


def in_dir(make: Callable[[Path], list]) -> Callable[[Path, Path], list]:
    return lambda tmp, run: make(tmp)


def evaluate(synthetic: Callable[[Path], Path], *extra: str) -> Callable[[Path, Path], list]:
    def build(tmp: Path, run: Path) -> list:
        from ehrbench.matrix import EHRMatrix

        codes = [f"c{j}" for j in range(4)]
        EHRMatrix(good_X(), codes).save(tmp / "train.npz")
        EHRMatrix(good_X(), codes).save(tmp / "test.npz")
        return ["evaluate", "--train", tmp / "train.npz", "--test", tmp / "test.npz", "--synthetic", synthetic(tmp),
                "--metrics", "dimension_wise_probability", *extra]
    return build


def synthetic_npz(X, codes=None) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        names = np.array([f"c{j}" for j in range(4)]) if codes is None else codes
        return _npz(tmp, "s.npz", X=X, codes=names)
    return make


CASES = [
    # -- configuration files -----------------------------------------------------------------
    Case("toml-missing", lambda tmp, run: ["run", tmp / "absent.toml"], ("absent.toml", "configuration file not found")),
    Case("toml-is-a-folder", lambda tmp, run: ["run", tmp], ("configuration file not found",)),
    Case("toml-syntax", toml("repeats = = 3\n"), ("bench.toml", "not valid TOML")),
    Case("toml-not-utf8", lambda tmp, run: ((tmp / "b.toml").write_bytes(b"name = \"\xff\xfe\"\n"),
                                            ["run", tmp / "b.toml"])[1], ("b.toml",)),
    Case("toml-unknown-key", toml("repeatz = 3\n"), ("bench.toml", "unknown key 'repeatz'", "did you mean 'repeats'")),
    Case("toml-repeats-zero", toml("repeats = 0\n"), ("repeats must be at least 1",)),
    Case("toml-repeats-text", toml('repeats = "three"\n'), ("key 'repeats'", "expected an integer")),
    Case("toml-repeats-fraction", toml("repeats = 1.5\n"), ("key 'repeats'", "expected an integer")),
    Case("toml-repeats-bool", toml("repeats = true\n"), ("key 'repeats'", "expected an integer")),
    Case("toml-profile", toml('profile = "fast"\n'), ("key 'profile'", "'fast' is not one of")),
    Case("toml-representation", toml('representation = "dense"\n'), ("key 'representation'", "'dense' is not one of")),
    Case("toml-device", toml('device = "tpu"\n'), ("key 'device'", "'tpu' is not one of")),
    Case("toml-executor", toml('executor = "cluster"\n'), ("key 'executor'", "'cluster' is not one of")),
    Case("toml-seed-text", toml('seed = "x"\n'), ("key 'seed'", "expected an integer")),
    Case("toml-samples-zero", toml("samples = 0\n"), ("samples must be at least 1",)),
    Case("toml-test-fraction-high", toml("test_fraction = 1.5\n"), ("test_fraction must be between 0 and 1",)),
    Case("toml-test-fraction-zero", toml("test_fraction = 0\n"), ("test_fraction must be between 0 and 1",)),
    Case("toml-timeout-negative", toml("timeout = -1\n"), ("timeout must be a positive number of seconds",)),
    Case("toml-name-climbs", toml('name = "../../x"\n'), ("name '../../x' cannot name a file or folder",)),
    Case("toml-name-slash", toml('name = "a/b"\n'), ("name 'a/b' cannot name a file or folder",)),
    Case("toml-name-hidden", toml('name = ".hidden"\n'), ("name '.hidden' cannot name a file or folder",)),
    Case("toml-name-absolute", toml('name = "/etc"\n'), ("name '/etc' cannot name a file or folder",)),
    Case("toml-weights-negative", toml("[weights]\nprivacy = -1\n"), ("'privacy' must be a non-negative number",)),
    Case("toml-weights-unknown", toml("[weights]\nspeed = 1\n"), ("unknown category 'speed'",)),
    Case("toml-weights-zero", toml("[weights]\nfidelity = 0\nutility = 0\nprivacy = 0\n"),
         ("every category weight is 0",)),
    Case("toml-generator-options-not-table", toml("[generator_options]\ntvae = 3\n"),
         ("generator_options.tvae must be a table",)),
    Case("toml-generator-unknown", toml('generators = ["nope"]\n'), ("unknown generator 'nope'",)),
    Case("toml-metric-unknown", toml('metrics = ["nope"]\n'), ("unknown metric 'nope'",)),
    Case("toml-dataset-unknown", toml('dataset = "nope"\n'), ("unknown dataset 'nope'",)),
    Case("toml-generator-option-unknown",
         toml('generators = ["independent-marginals"]\n[generator_options.independent-marginals]\nfoo = 1\n'),
         ("unknown option 'foo'",)),
    Case("toml-generator-option-for-unknown", toml("[generator_options.nope]\nfoo = 1\n"), ("unknown generator 'nope'",)),
    Case("toml-dataset-option-unknown", toml("[dataset_options]\nfoo = 1\n"), ("unknown option 'foo'",)),
    Case("toml-dataset-option-type", toml('[dataset_options]\npatients = "many"\n'),
         ("option 'patients'", "expected an integer")),
    Case("toml-jobs-zero", toml('executor = "process"\njobs = 0\n'), ("jobs must be at least 1",)),
    Case("toml-jobs-local", toml('executor = "local"\njobs = 2\n'), ("needs executor 'process' or 'ray'",)),
    Case("toml-no-generators", toml("generators = []\n"), ("no generators to run",)),
    Case("toml-generators-number", toml("generators = 5\n"), ("key 'generators'", "expected a list")),
    Case("toml-weights-text", toml('[weights]\nprivacy = "high"\n'), ("'privacy' must be a non-negative number",)),
    Case("toml-seed-fraction", toml("seed = 1.5\n"), ("key 'seed'", "expected an integer")),
    Case("toml-timeout-zero", toml("timeout = 0\n"), ("timeout must be a positive number of seconds",)),
    Case("toml-cpus-zero", toml("cpus_per_job = 0\n"), ("cpus_per_job must be positive",)),
    Case("toml-report-text", toml('report = "maybe"\n'), ("key 'report'", "expected true or false")),
    Case("toml-metric-options-not-table", toml("[metric_options]\nlog_cluster = 3\n"),
         ("metric_options.log_cluster must be a table",)),
    Case("toml-generator-twice", toml('generators = ["train-resample", "train-resample"]\n'), ("lists a name twice",)),
    # -- command-line flags ----------------------------------------------------------------
    Case("flag-repeats-zero", flags("--repeats", "0"), ("repeats must be at least 1",)),
    Case("flag-repeats-text", flags("--repeats", "x"), ("'--repeats'", "'x' is not a valid integer")),
    Case("flag-profile", flags("--profile", "fast"), ("'fast' is not one of",)),
    Case("flag-samples-zero", flags("--samples", "0"), ("samples must be at least 1",)),
    Case("flag-generators-empty", flags("--generators", ","), ("expected a comma-separated list of names",)),
    Case("flag-generator-typo", flags("--generators", "train-resampel"),
         ("unknown generator 'train-resampel'", "did you mean 'train-resample'")),
    Case("flag-metric-typo", flags("--metrics", "dimension_wise_probabilty"),
         ("unknown metric 'dimension_wise_probabilty'", "did you mean 'dimension_wise_probability'")),
    Case("flag-dataset-option-no-equals", flags("--dataset-option", "patients"), ("--dataset-option expects KEY=VALUE",)),
    Case("flag-plugin-missing", flags("--plugin", "/nonexistent/plugin.py"), ("plugin file not found",)),
    Case("flag-resume-without-out", lambda tmp, run: ["run", "--resume"], ("--resume needs --out",)),
    Case("flag-out-not-empty", lambda tmp, run: ((tmp / "full").mkdir(), (tmp / "full" / "x").write_text("x"),
                                                ["run", *SMALL, "--out", tmp / "full"])[-1],
         ("already exists and is not empty",)),
    Case("flag-out-is-a-file", lambda tmp, run: ((tmp / "f").write_text("x"), ["run", *SMALL, "--out", tmp / "f"])[1],
         ("{tmp}/f", "is a file")),
    Case("flag-out-under-a-file", lambda tmp, run: ((tmp / "f").write_text("x"),
                                                   ["run", *SMALL, "--out", tmp / "f" / "run"])[1],
         ("{tmp}/f", "is a file, not a directory")),
    Case("flag-jobs-local", flags("--jobs", "3", "--executor", "local"), ("needs executor 'process' or 'ray'",)),
    Case("flag-jobs-zero", flags("--jobs", "0", "--executor", "process"), ("jobs must be at least 1",)),
    Case("flag-cpus-zero", flags("--cpus-per-job", "0"), ("cpus_per_job must be positive",)),
    Case("flag-gpus-negative", flags("--gpus-per-job", "-1"), ("gpus_per_job must be 0 or more",)),
    Case("flag-executor", flags("--executor", "threads"), ("'threads' is not one of",)),
    # -- matrix files: .npz ----------------------------------------------------------------
    Case("npz-missing", matrix_run(lambda tmp: tmp / "absent.npz"), ("absent.npz", "file not found")),
    Case("npz-is-a-folder", matrix_run(lambda tmp: (tmp / "d.npz").mkdir() or tmp / "d.npz"), ("d.npz", "is not a file")),
    Case("npz-suffix", matrix_run(csv_with("a\n1\n", "m.txt")), ("m.txt", "unsupported file type")),
    Case("npz-not-zip", matrix_run(csv_with("not a zip", "m.npz")), ("m.npz", "not a readable .npz")),
    Case("npz-no-X", matrix_run(lambda tmp: _npz(tmp, codes=np.array(["a"]))), ("m.npz", "missing array X")),
    Case("npz-no-codes", matrix_run(lambda tmp: _npz(tmp, X=good_X())), ("m.npz", "missing array codes")),
    Case("npz-nan", matrix_run(npz_with(with_cell(np.nan))), ("m.npz", "row 7, column 'c2'", "not a finite number")),
    Case("npz-inf", matrix_run(npz_with(with_cell(np.inf))), ("m.npz", "row 7, column 'c2'", "not a finite number")),
    Case("npz-negative", matrix_run(npz_with(with_cell(-1))), ("m.npz", "row 7, column 'c2'", "is negative")),
    Case("npz-fraction", matrix_run(npz_with(with_cell(0.5))), ("m.npz", "row 7, column 'c2'", "is not an integer")),
    Case("npz-beyond-float32", matrix_run(npz_with(with_cell(1e39))),
         ("m.npz", "row 7, column 'c2'", "1e+39 is beyond the range of float32")),
    Case("npz-int-beyond-float32", matrix_run(npz_with(with_cell(2**128 - 1, dtype=np.float64))),
         ("m.npz", "row 7, column 'c2'", "beyond the range of float32")),
    Case("npz-complex", matrix_run(npz_with(with_cell(1 + 2j, dtype=np.complex128))),
         ("m.npz", "row 7, column 'c2'", "(1+2j) is a complex number")),
    Case("npz-complex-real-valued", matrix_run(npz_with(good_X().astype(np.complex64))),
         ("m.npz", "is a complex number")),
    Case("npz-text-values", matrix_run(npz_with(np.array([["a", "b"]] * 40), codes=np.array(["x", "y"]))),
         ("m.npz", "expected numbers")),
    Case("npz-object-values", matrix_run(npz_with(np.array([[1, None]] * 40, dtype=object), codes=np.array(["x", "y"]))),
         ("m.npz", "pickle")),
    Case("npz-duplicate-codes", matrix_run(npz_with(codes=np.array(["a", "b", "a", "c"]))),
         ("m.npz", "'a' appears more than once")),
    Case("npz-code-count", matrix_run(npz_with(codes=np.array(["a", "b"]))), ("m.npz", "2 code names for a matrix of 4")),
    Case("npz-zero-columns", matrix_run(npz_with(np.zeros((60, 0)), codes=np.array([], dtype=str))),
         ("m.npz", "no code columns")),
    Case("npz-zero-rows", matrix_run(npz_with(np.zeros((0, 4)))), ("m.npz", "no rows")),
    Case("npz-one-dimensional", matrix_run(npz_with(np.zeros(4))), ("m.npz", "expected a 2-D")),
    Case("npz-meta-not-json", matrix_run(npz_with(meta=np.array("{not json"))), ("m.npz", "'meta' is not valid JSON")),
    Case("npz-meta-list", matrix_run(npz_with(meta=np.array("[1, 2]"))), ("m.npz", "'meta' must hold a JSON object")),
    Case("npz-meta-simulated-no", matrix_run(npz_with(meta=np.array('{"simulated": "no"}'))),
         ("m.npz", "meta 'simulated' must be true or false, got 'no'")),
    Case("npz-ids-count", matrix_run(npz_with(ids=np.arange(5))), ("m.npz", "5 patient ids for 60 rows")),
    Case("npz-two-patients", matrix_run(npz_with(good_X(2))), ("the dataset has 2 patient(s)", "at least 10 patients")),
    Case("npz-three-patients", matrix_run(npz_with(good_X(3))), ("the dataset has 3 patient(s)", "at least 10 patients")),
    Case("npz-six-test-rows", matrix_run(npz_with(good_X(20))), ("the dataset has 20 patient(s)", "6 for testing")),
    Case("npz-one-test-row", matrix_run(npz_with(good_X(4))), ("the dataset has 4 patient(s)", "1 for testing")),
    Case("npz-id-column", matrix_run(npz_with(), "--dataset-option", "id_column=pid"),
         ("option 'id_column' applies to .csv and .csv.gz files only",)),
    # -- .npy -------------------------------------------------------------------------------
    Case("npy-one-dimensional", matrix_run(npy_with(np.zeros(5))), ("m.npy", "expected a 2-D")),
    Case("npy-object", matrix_run(npy_with(np.array([[1, None]], dtype=object))), ("m.npy", "without pickle")),
    Case("npy-beyond-float32", matrix_run(npy_with(with_cell(1e39))), ("m.npy", "row 7, column '2'", "beyond the range of float32")),
    Case("npy-complex", matrix_run(npy_with(with_cell(3j, dtype=np.complex128))), ("m.npy", "row 7, column '2'", "complex")),
    Case("npy-zero-columns", matrix_run(npy_with(np.zeros((60, 0)))), ("m.npy", "no code columns")),
    Case("npy-nan", matrix_run(npy_with(with_cell(np.nan))), ("m.npy", "row 7, column '2'", "not a finite number")),
    Case("npy-garbage", matrix_run(csv_with("garbage", "m.npy")), ("m.npy", "not a readable .npy")),
    # -- .csv ---------------------------------------------------------------------------------
    Case("csv-empty", matrix_run(csv_with("")), ("m.csv", "empty")),
    Case("csv-header-only", matrix_run(csv_with("a,b\n")), ("m.csv", "no patient rows")),
    Case("csv-text-cell", matrix_run(csv_with(csv_rows("a,b,c", "1,x,2"))), ("m.csv", "line 7, column 'b'", "'x' is not a number")),
    Case("csv-negative", matrix_run(csv_with(csv_rows("a,b,c", "1,-2,2"))), ("m.csv", "row 5, column 'b'", "is negative")),
    Case("csv-fraction", matrix_run(csv_with(csv_rows("a,b,c", "1,0.5,2"))), ("m.csv", "row 5, column 'b'", "not an integer")),
    Case("csv-beyond-float32", matrix_run(csv_with(csv_rows("a,b,c", "1,1e39,2"))),
         ("m.csv", "line 7, column 'b'", "'1e39' is beyond the range of float32")),
    Case("csv-infinity", matrix_run(csv_with(csv_rows("a,b,c", "1,inf,2"))), ("m.csv", "line 7, column 'b'", "'inf' is not a finite")),
    Case("csv-empty-cell", matrix_run(csv_with(csv_rows("a,b,c", "1,,2"))), ("m.csv", "line 7, column 'b'", "the cell is empty")),
    Case("csv-duplicate-header", matrix_run(csv_with(csv_rows("a,b,a", "1,1,1"))), ("m.csv", "'a' appears twice")),
    Case("csv-unnamed-column", matrix_run(csv_with(csv_rows("a,,c", "1,1,1"))), ("m.csv", "column 2 has no name")),
    Case("csv-extra-field", matrix_run(csv_with(csv_rows("a,b,c", "1,1,1,1"))), ("m.csv", "not a well-formed CSV")),
    Case("csv-id-column-missing", matrix_run(csv_with(csv_rows("a,b,c", "1,1,1")), "--dataset-option", "id_column=pid"),
         ("m.csv", "id column 'pid'", "not in the header")),
    Case("csv-duplicate-id", matrix_run(csv_with("pid,a\n" + "".join(f"{i % 30},1\n" for i in range(60))),
                                        "--dataset-option", "id_column=pid"),
         ("m.csv", "patient id '0' appears on line 2 and again on line 32")),
    Case("csv-empty-id", matrix_run(csv_with("pid,a\n" + "".join(f"{'' if i == 3 else i},1\n" for i in range(60))),
                                    "--dataset-option", "id_column=pid"),
         ("m.csv", "line 5, column 'pid': the patient id is empty")),
    Case("csv-only-id-column", matrix_run(csv_with("pid\n1\n2\n"), "--dataset-option", "id_column=pid"),
         ("m.csv", "no code columns")),
    Case("csv-binary", matrix_run(lambda tmp: (tmp / "m.csv").write_bytes(b"\x00\x01\x02\xff" * 50) and tmp / "m.csv"),
         ("m.csv",)),
    Case("csv-gz-corrupt", matrix_run(lambda tmp: (tmp / "m.csv.gz").write_bytes(b"\x1f\x8b\x08garbage") and tmp / "m.csv.gz"),
         ("m.csv.gz", "not a readable CSV")),
    # -- MIMIC-III CSVs (prepare mimic3) ------------------------------------------------------
    Case("mimic-code-arabic-indic-digits", mimic(diagnoses=dx_row("61,1,101,2,٤٠١٩")),
         ("DIAGNOSES_ICD.csv", "line 62", "column 'icd9_code'", "'٤٠١٩' is not an ICD-9 diagnosis code")),
    Case("mimic-code-full-width-digits", mimic(diagnoses=dx_row("61,1,101,2,４０１９")),
         ("DIAGNOSES_ICD.csv", "line 62", "'４０１９' is not an ICD-9 diagnosis code")),
    Case("mimic-code-v-arabic-digits", mimic(diagnoses=dx_row("61,1,101,2,V٤٥")), ("'V٤٥' is not an ICD-9",)),
    Case("mimic-subject-arabic-indic-digits", mimic(diagnoses=dx_row("61,٧,101,2,4019")),
         ("DIAGNOSES_ICD.csv", "line 62", "column 'subject_id'", "'٧' is not a whole number")),
    Case("mimic-subject-full-width-digits", mimic(admissions=ADMISSIONS + "61,６１,161\n"),
         ("ADMISSIONS.csv", "line 62", "column 'subject_id'", "'６１' is not a whole number")),
    Case("mimic-hadm-full-width", mimic(diagnoses=dx_row("61,1,１０１,2,4019")),
         ("DIAGNOSES_ICD.csv", "column 'hadm_id'", "not a whole number")),
    Case("mimic-extra-field", mimic(diagnoses=dx_row("61,1,101,2,4019,EXTRA")),
         ("DIAGNOSES_ICD.csv", "not a well-formed CSV", "line 62")),
    Case("mimic-extra-empty-field", mimic(diagnoses=dx_row("61,1,101,2,4019,")),
         ("DIAGNOSES_ICD.csv", "not a well-formed CSV", "line 62")),
    Case("mimic-code-e-arabic-digits", mimic(diagnoses=dx_row("61,1,101,2,E٨٤٩")), ("'E٨٤٩' is not an ICD-9",)),
    Case("mimic-code-with-dot", mimic(diagnoses=dx_row("61,1,101,2,401.9")), ("'401.9' is not an ICD-9",)),
    Case("mimic-code-lowercase-v", mimic(diagnoses=dx_row("61,1,101,2,v450")), ("'v450' is not an ICD-9",)),
    Case("mimic-code-padded", mimic(diagnoses=dx_row("61,1,101,2, 4019")), ("' 4019' is not an ICD-9",)),
    Case("mimic-missing-column", mimic(diagnoses="row_id,subject_id,icd9_code\n1,1,4019\n"),
         ("DIAGNOSES_ICD.csv", "no column 'HADM_ID'")),
    Case("mimic-duplicate-column", mimic(diagnoses="row_id,SUBJECT_ID,subject_id,hadm_id,icd9_code\n1,1,1,101,4019\n"),
         ("DIAGNOSES_ICD.csv", "repeats column")),
    Case("mimic-empty-diagnoses", mimic(diagnoses=""), ("DIAGNOSES_ICD.csv", "empty")),
    Case("mimic-header-only", mimic(diagnoses=DIAGNOSES_HEADER), ("DIAGNOSES_ICD.csv", "no usable diagnosis rows")),
    Case("mimic-no-admissions", mimic(admissions="row_id,subject_id,hadm_id\n"), ("ADMISSIONS.csv", "no admissions")),
    Case("mimic-duplicate-admission", mimic(admissions=ADMISSIONS + "61,2,101\n"), ("ADMISSIONS.csv", "admission 101 appears again")),
    Case("mimic-negative-id", mimic(diagnoses=dx_row("61,-1,101,2,4019")), ("'-1' is not a whole number",)),
    Case("mimic-huge-id", mimic(diagnoses=dx_row("61,99999999999999999999,101,2,4019")), ("not a whole number",)),
    Case("mimic-out-is-a-folder", mimic(out="outdir.npz", out_is_dir=True), ("{tmp}/outdir.npz", "is a directory")),
    Case("mimic-out-under-a-file", lambda tmp, run: ((tmp / "f").write_text("x"),
                                                    mimic(out="f/m.npz")(tmp, run))[1], ("{tmp}/f", "is a file, not a directory")),
    Case("mimic-admissions-missing", lambda tmp, run: ["prepare", "mimic3", "--admissions", tmp / "no.csv", "--diagnoses",
                                                      tmp / "no2.csv", "-o", tmp / "m.npz"], ("no.csv", "not found")),
    Case("mimic-no-sources", lambda tmp, run: ["prepare", "mimic3", "-o", tmp / "m.npz"], ("admissions",)),
    Case("mimic-zip", lambda tmp, run: ((tmp / "a.csv").write_bytes(b"PK\x03\x04" + b"\x00" * 40),
                                        mimic()(tmp, run), ["prepare", "mimic3", "--admissions", tmp / "a.csv",
                                                            "--diagnoses", tmp / "DIAGNOSES_ICD.csv", "-o", tmp / "m.npz"])[2],
         ("a.csv", "zip archive")),
    # -- medGAN pickles -----------------------------------------------------------------------
    Case("medgan-without-allow-pickle", medgan(np.ones((60, 3)), allow=False), ("--allow-pickle",)),
    Case("medgan-code-in-pickle", medgan(pickle.dumps(_Exploit())), ("m.matrix", "refused to load global")),
    Case("medgan-beyond-float32", medgan(with_cell(1e39)), ("m.matrix", "row 7, column '2'", "beyond the range of float32")),
    Case("medgan-complex", medgan(with_cell(2j, dtype=np.complex128)), ("m.matrix", "complex")),
    Case("medgan-not-2d", medgan(np.ones(5)), ("m.matrix", "expected a pickled 2-D NumPy array")),
    Case("medgan-not-array", medgan({"a": 1}), ("m.matrix", "expected a pickled 2-D NumPy array (patients × codes), got dict")),
    Case("medgan-truncated", medgan(pickle.dumps(np.ones((60, 3)), protocol=2)[:40]), ("m.matrix", "not a pickle")),
    Case("medgan-types-bad-column", medgan(np.ones((60, 3)), types={"D_401": 7}), ("m.types", "maps to column 7")),
    Case("medgan-types-gap", medgan(np.ones((60, 3)), types={"D_401": 0, "D_402": 1}), ("m.types", "no code is mapped to column 2")),
    Case("medgan-types-not-dict", medgan(np.ones((60, 3)), types=[1, 2]), ("m.types", "expected a pickled dict")),
    # -- evaluate -----------------------------------------------------------------------------
    Case("evaluate-missing", lambda tmp, run: ["evaluate", "--train", tmp / "a.npz", "--test", tmp / "b.npz",
                                               "--synthetic", tmp / "c.npz"], ("a.npz", "file not found")),
    Case("evaluate-beyond-float32", evaluate(synthetic_npz(with_cell(1e39))), ("s.npz", "row 7, column 'c2'", "beyond the range")),
    Case("evaluate-complex", evaluate(synthetic_npz(with_cell(1j, dtype=np.complex128))), ("s.npz", "complex")),
    Case("evaluate-nan", evaluate(synthetic_npz(with_cell(np.nan))), ("s.npz", "not a finite number")),
    Case("evaluate-zero-columns", evaluate(synthetic_npz(np.zeros((60, 0)), np.array([], dtype=str))),
         ("s.npz", "no code columns")),
    Case("evaluate-other-codes", evaluate(synthetic_npz(good_X(), np.array(["c0", "c1", "c2", "zz"]))),
         ("code columns differ",)),
    Case("evaluate-unknown-metric", evaluate(synthetic_npz(good_X()), "--metrics", "nope"), ("unknown metric 'nope'",)),
    # -- run directories ------------------------------------------------------------------------
    Case("report-no-run", lambda tmp, run: ["report", tmp], ("no run.json here",)),
    Case("report-missing-dir", lambda tmp, run: ["report", tmp / "absent"], ("no run.json here",)),
    Case("leaderboard-no-results", lambda tmp, run: ["leaderboard", tmp], ("no results.jsonl here",)),
    Case("compare-no-run", lambda tmp, run: ["compare", tmp, run], ("no results.jsonl here",)),
    Case("run-json-not-json", damaged(write("run.json", "{broken"), "resume"), ("run.json", "not valid JSON")),
    Case("run-json-binary", damaged(write("run.json", b"\xff\xfe\x00"), "report"), ("run.json", "not valid JSON")),
    Case("run-json-list", damaged(write("run.json", "[]"), "report"), ("run.json", "expected a JSON object")),
    Case("run-json-no-config", damaged(edit_manifest(lambda d: d.pop("config")), "resume"), ("run.json", "no 'config' table")),
    Case("run-json-config-text", damaged(edit_manifest(set_key("config", "x")), "resume"),
         ("run.json", "field 'config' must be a JSON object")),
    Case("run-json-dataset-number", damaged(edit_manifest(set_key("dataset", 5)), "report"),
         ("run.json", "field 'dataset' must be a JSON object")),
    Case("run-json-generators-text", damaged(edit_manifest(set_key("generators", "abc")), "leaderboard"),
         ("run.json", "field 'generators' must be a JSON array")),
    Case("run-json-resumed-text", damaged(edit_manifest(set_key("resumed_at", "yesterday")), "report"),
         ("run.json", "field 'resumed_at' must be a JSON array")),
    Case("run-json-missing-resume", damaged(lambda run: (run / "run.json").unlink(), "resume"), ("no run.json here",)),
    Case("results-bad-line", damaged(edit_results(lambda rs: ["{not json", *rs]), "leaderboard"),
         ("results.jsonl", "line 1 is not valid JSON")),
    Case("results-array-line", damaged(edit_results(lambda rs: [*rs[:2], [1, 2], *rs[2:]]), "leaderboard"),
         ("results.jsonl", "line 3 is not an ehrbench record", "expected a JSON object, got list")),
    Case("results-unknown-type", damaged(edit_results(lambda rs: [*rs, {**rs[0], "type": "bonus"}]), "leaderboard"),
         ("results.jsonl", "unknown record type 'bonus'")),
    Case("results-no-generator", damaged(edit_results(first_metric(lambda r: r.pop("generator"))), "leaderboard"),
         ("results.jsonl", "generator name None cannot name a file or folder")),
    Case("results-repeat-text", damaged(edit_results(first_metric(lambda r: r.__setitem__("repeat", "x"))), "leaderboard"),
         ("results.jsonl", "field 'repeat' must be a non-negative integer, got 'x'")),
    Case("results-value-text", damaged(edit_results(first_metric(lambda r: r.__setitem__("value", "high"))), "leaderboard"),
         ("results.jsonl", "field 'value' must be a number, got 'high'")),
    Case("results-attempt-missing", damaged(edit_results(first_metric(lambda r: r.pop("attempt"))), "leaderboard"),
         ("results.jsonl", "field 'attempt' must be a string")),
    Case("results-crafted-generator", damaged(edit_results(first_metric(lambda r: r.__setitem__("generator", "../x"))), "report"),
         ("results.jsonl", "generator name '../x' cannot name a file or folder")),
    Case("results-duplicate-row", damaged(edit_results(lambda rs: [*rs, next(r for r in rs if r["type"] == "metric")]),
                                          "leaderboard"), ("counts 2 values for generator 'independent-marginals'",)),
    Case("results-status", damaged(edit_results(lambda rs: [*rs, {**rs[-1], "status": "maybe"}]), "leaderboard"),
         ("results.jsonl", "field 'status' must be 'ok' or 'failed', got 'maybe'")),
    Case("results-curves", damaged(edit_results(lambda rs: [*rs, {**rs[0], "type": "training", "curves": [1]}]), "report"),
         ("results.jsonl", "field 'curves' must be an object")),
    Case("results-not-utf8", damaged(write("results.jsonl", b"\xff\xfe\xfa\n"), "leaderboard"), ("results.jsonl", "not UTF-8")),
    Case("reference-damaged", damaged(write("reference.npz", "garbage"), "report"), ("reference.npz", "not a readable reference")),
    Case("sample-damaged", damaged(write("samples/independent-marginals/repeat-0.npz", "garbage"), "report"),
         ("repeat-0.npz", "not a readable .npz")),
    Case("resume-not-a-run", lambda tmp, run: ((tmp / "x").write_text("x"), ["run", *SMALL, "--out", tmp, "--resume"])[1],
         ("no run.json here",)),
    Case("resume-changed-config", damaged(lambda run: None, "resume", "--repeats", "2"), ("these differ: repeats: 1 → 2",)),
    Case("leaderboard-output-folder", damaged(lambda run: None, "leaderboard", "--format", "csv", "--output", "/"),
         ("--output / is a directory",)),
    Case("leaderboard-output-under-file", lambda tmp, run: ((tmp / "f").write_text("x"),
                                                           ["leaderboard", run, "--format", "csv", "--output", tmp / "f" / "x.csv"])[1],
         ("{tmp}/f", "cannot write")),
    Case("leaderboard-output-without-format", lambda tmp, run: ["leaderboard", run, "--output", tmp / "x.csv"],
         ("--output needs --format",)),
    Case("leaderboard-weights", lambda tmp, run: ["leaderboard", run, "--format", "json", "--weights", "speed=1"],
         ("unknown category 'speed'",)),
    Case("compare-format", lambda tmp, run: ["compare", run, run, "--format", "xls"], ("'xls' is not one of",)),
    # -- plugins --------------------------------------------------------------------------------
    Case("plugin-syntax-error", lambda tmp, run: ((tmp / "p.py").write_text("def (:\n"),
                                                  ["run", *SMALL[:-4], "--generators", "mine", "--plugin", tmp / "p.py",
                                                   "--out", tmp / "o"])[1],
         ("p.py is broken", "SyntaxError", "unknown generator 'mine'", "failed to load")),
    Case("plugin-exits-at-import", lambda tmp, run: ["run", *SMALL[:-4], "--generators", "mine", "--plugin",
                                                     PLUGINS / "exits_at_import.py", "--out", tmp / "o"],
         ("exits_at_import.py is broken", "sys.exit('this plugin refuses to load')", "unknown generator 'mine'")),
    Case("plugin-no-sample", lambda tmp, run: ["run", *SMALL[:-4], "--generators", "no-sample", "--plugin",
                                               PLUGINS / "half_generators.py", "--out", tmp / "o"],
         ("NoSample (no-sample) does not implement sample()", "unknown generator 'no-sample'")),
    Case("plugin-duplicate-name", lambda tmp, run: ["run", *SMALL, "--plugin", PLUGINS / "duplicate.py", "--out", tmp / "o"],
         ("is registered twice",)),
    Case("plugin-is-a-folder", lambda tmp, run: ["run", *SMALL, "--plugin", tmp, "--out", tmp / "o"], ("plugin file not found",)),
    # -- the simulated dataset and its command ---------------------------------------------------
    Case("simulate-zero-patients", lambda tmp, run: ["simulate", "--patients", "0", "--out", tmp / "s.npz"], ("patients",)),
    Case("simulate-out-is-a-file", lambda tmp, run: ((tmp / "f").write_text("x"),
                                                    ["simulate", "--patients", "50", "--codes", "10", "--out", tmp / "f"])[1],
         ("{tmp}/f", "is a file, not a directory")),
    Case("simulated-too-few-patients", flags("--dataset-option", "patients=5"),
         ("the dataset has 5 patient(s)", "at least 10 patients")),
    Case("simulated-zero-codes", flags("--dataset-option", "codes=0"), ("codes",)),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from ehrbench.cli import main

    run = tmp_path_factory.mktemp("catalogue") / "run"
    try:
        main(["run", *SMALL, "--out", str(run)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return run


def test_the_catalogue_covers_every_kind_and_names_each_case_once():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    kinds = {n.split("-")[0] for n in names}
    assert kinds >= {"toml", "flag", "npz", "npy", "csv", "mimic", "medgan", "evaluate", "report", "leaderboard",
                     "run", "results", "resume", "plugin", "simulate", "simulated"}
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_exit_2_with_a_message_that_names_it(cli, tmp_path, finished_run, case):
    scratch = tmp_path / "in"
    scratch.mkdir()
    args = case.build(scratch, finished_run)
    result = cli(*args)
    text = " ".join(result.err.split())
    assert result.code == 2, f"exit {result.code}; stderr: {result.err}\nstdout: {result.out[-2000:]}"
    assert "Traceback" not in result.err and "Traceback" not in result.out
    for part in case.expect:
        assert " ".join(part.replace("{tmp}", str(scratch)).split()) in text, text
    assert not (scratch / "out" / "leaderboard.csv").exists()  # nothing was scored as if the input were good
