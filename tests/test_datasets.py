"""The ``matrix`` (user files) and ``simulated`` dataset plugins."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.datasets import matrix_file, simulated
from ehrbench_plugins.datasets.matrix_file import MatrixFileDataset
from ehrbench_plugins.datasets.simulated import SimulatedDataset, code_names

CSV = "id,038,401,V45,E849\nP1,0,1,2,0\nP2,3,0,0,1\nP3,0,0,1,0\n"


def load(path: Path, **options: object) -> EHRMatrix:
    return MatrixFileDataset.configure({"path": str(path), **options}).load()


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def load_error(path: Path, **options: object) -> str:
    with pytest.raises(InputError) as info:
        load(path, **options)
    message = str(info.value)
    assert str(path) in message
    return message


# ----------------------------------------------------------------------- round trips


def test_hooks_register_the_classes() -> None:
    assert matrix_file.ehrbench_datasets() == [MatrixFileDataset]
    assert simulated.ehrbench_datasets() == [SimulatedDataset]
    assert MatrixFileDataset.name == "matrix" and not MatrixFileDataset.simulated
    assert SimulatedDataset.name == "simulated" and SimulatedDataset.simulated


def test_npz_round_trip(tmp_path: Path) -> None:
    original = EHRMatrix(np.array([[0, 2], [1, 0]]), ["038", "V45"], np.array([7, 9]))
    original.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.X, original.X)
    assert loaded.codes.tolist() == ["038", "V45"]
    assert loaded.ids.tolist() == [7, 9]


def test_npy_round_trip_names_columns_by_position(tmp_path: Path) -> None:
    X = np.array([[0, 1, 2], [3, 0, 0]], dtype=np.int64)
    np.save(tmp_path / "m.npy", X)
    loaded = load(tmp_path / "m.npy")
    np.testing.assert_array_equal(loaded.X, X)
    assert loaded.X.dtype == np.float32
    assert loaded.codes.tolist() == ["0", "1", "2"]
    assert loaded.ids is None


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz", "M.CSV"])
def test_csv_round_trip_keeps_leading_zeros_and_ids(tmp_path: Path, name: str) -> None:
    loaded = load(write(tmp_path / name, CSV), id_column="id")
    assert loaded.codes.tolist() == ["038", "401", "V45", "E849"]
    assert loaded.ids.tolist() == ["P1", "P2", "P3"]
    np.testing.assert_array_equal(loaded.X, [[0, 1, 2, 0], [3, 0, 0, 1], [0, 0, 1, 0]])
    assert loaded.X.dtype == np.float32


def test_csv_without_id_column_uses_every_column(tmp_path: Path) -> None:
    loaded = load(write(tmp_path / "m.csv", "001,002\n1,0\n0,1\n\n\n"))
    assert loaded.codes.tolist() == ["001", "002"]
    assert loaded.ids is None
    assert loaded.n_patients == 2  # trailing blank lines are not patients


def test_fingerprint_hashes_content_and_options(tmp_path: Path) -> None:
    path = write(tmp_path / "m.csv", CSV)
    def fingerprint(**options: object) -> str:
        return MatrixFileDataset.configure({"path": str(path), **options}).fingerprint()

    first = fingerprint()
    assert fingerprint() == first
    assert fingerprint(id_column="id") != first
    write(path, CSV.replace("P1,0,1,2,0", "P1,0,1,2,1"))
    assert fingerprint() != first


# ----------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in load_error(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="not found"):
        MatrixFileDataset.configure({"path": str(tmp_path / "nope.csv")}).fingerprint()


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    assert "not a file" in load_error(tmp_path / "dir.csv")


def test_unknown_extension_lists_supported_ones(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "m.xlsx", CSV))
    for suffix in (".npz", ".npy", ".csv", ".csv.gz"):
        assert suffix in message


@pytest.mark.parametrize("name", ["m.npz", "m.npy", "m.csv.gz"])
def test_corrupt_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\x01garbage\xff" * 20)
    assert "readable" in load_error(path)


def test_npy_must_be_two_dimensional(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.arange(4))
    assert "2-D" in load_error(tmp_path / "m.npy")


def test_empty_csv(tmp_path: Path) -> None:
    assert "empty" in load_error(write(tmp_path / "m.csv", ""))


def test_header_without_rows(tmp_path: Path) -> None:
    assert "no patient rows" in load_error(write(tmp_path / "m.csv", "401,428\n"))


def test_non_numeric_cell_names_line_and_column(tmp_path: Path) -> None:
    text = "id,038,401\nP1,0,1\nP2,1,0\nP3,x2,1\nP4,abc,1\n"
    message = load_error(write(tmp_path / "m.csv", text), id_column="id")
    assert "line 4" in message and "column '038'" in message and "'x2'" in message


def test_non_numeric_cell_reports_first_in_file_order(tmp_path: Path) -> None:
    text = "a,b\n1,1\n1,oops\nbad,1\n"
    message = load_error(write(tmp_path / "m.csv", text))
    assert "line 3" in message and "column 'b'" in message


def test_duplicate_column_names(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "m.csv", "401,038,401\n1,0,1\n"))
    assert "'401'" in message and "twice" in message and "columns 1 and 3" in message


def test_unnamed_column(tmp_path: Path) -> None:
    assert "column 2 has no name" in load_error(write(tmp_path / "m.csv", "401,,428\n1,0,1\n"))


def test_ragged_row_names_the_line(tmp_path: Path) -> None:
    assert "line 3" in load_error(write(tmp_path / "m.csv", "401,428\n1,0\n1,0,1\n"))


def test_an_empty_or_out_of_range_cell_is_named_by_line_and_column_as_written(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "m.csv", "038,401\n0,1\n1,\n"))
    assert "m.csv: line 3, column '401': the cell is empty" in message
    message = load_error(write(tmp_path / "m.csv", "038,401\n0,1\n1,3e38\n1,4e38\n"))
    assert "m.csv: line 4, column '401': '4e38' is beyond the range of float32" in message


@pytest.mark.parametrize(
    ("cell", "what"),
    [("-1", "negative"), ("1.5", "not an integer")],
)
def test_bad_values_name_row_and_column(tmp_path: Path, cell: str, what: str) -> None:
    text = f"038,401\n0,1\n1,{cell}\n"
    message = load_error(write(tmp_path / "m.csv", text))
    assert what in message and "row 1" in message and "column '401'" in message
    assert "line k + 2" in message


def test_bad_npy_value_names_row_and_column(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.array([[0.0, 1.0], [2.0, np.nan]]))
    message = load_error(tmp_path / "m.npy")
    assert "row 1" in message and "column '1'" in message


def test_missing_id_column(tmp_path: Path) -> None:
    message = load_error(write(tmp_path / "m.csv", CSV), id_column="patient")
    assert "'patient'" in message and "header" in message


def test_duplicate_and_empty_ids(tmp_path: Path) -> None:
    dup = load_error(write(tmp_path / "d.csv", "id,401\nA,1\nB,0\nA,1\n"), id_column="id")
    assert "'A'" in dup and "line 2" in dup and "line 4" in dup
    empty = load_error(write(tmp_path / "e.csv", "id,401\nA,1\n,0\n"), id_column="id")
    assert "line 3" in empty and "empty" in empty


def test_id_column_only_for_csv(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="id_column"):
        load(tmp_path / "m.npy", id_column="id")


def test_configure_rejects_unknown_and_missing_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'pth'"):
        MatrixFileDataset.configure({"pth": "x.csv"})
    with pytest.raises(ConfigError, match="missing required option 'path'"):
        MatrixFileDataset.configure({})


# ----------------------------------------------------------------------- simulated


@pytest.fixture(scope="module")
def sim() -> EHRMatrix:
    return SimulatedDataset.configure({"patients": 4000, "seed": 3}).load()


def test_simulated_is_deterministic_per_seed(sim: EHRMatrix) -> None:
    again = SimulatedDataset.configure({"patients": 4000, "seed": 3}).load()
    other = SimulatedDataset.configure({"patients": 4000, "seed": 4}).load()
    np.testing.assert_array_equal(sim.X, again.X)
    assert not np.array_equal(sim.X, other.X)
    assert sim.codes.tolist() == other.codes.tolist()


def test_simulated_full_chunks_do_not_depend_on_size() -> None:
    one_chunk = SimulatedDataset.configure({"patients": 4096, "codes": 50}).load()
    bigger = SimulatedDataset.configure({"patients": 4200, "codes": 50}).load()
    np.testing.assert_array_equal(bigger.X[:4096], one_chunk.X)


def test_simulated_shape_values_ids_meta(sim: EHRMatrix) -> None:
    assert sim.X.shape == (4000, 1071) and sim.X.dtype == np.float32
    assert (sim.X >= 0).all() and (sim.X == np.round(sim.X)).all()
    assert sim.ids.tolist() == list(range(1, 4001))
    assert sim.meta["simulated"] is True and sim.meta["generator"] == "ehrbench simulated v2 (calibrated to MIMIC-III)"


def test_simulated_code_names() -> None:
    names = code_names(1071)
    assert len(set(names)) == 1071
    assert "401" in names and "038" in names
    groups = [0 if c[0].isdigit() else 1 if c[0] == "V" else 2 for c in names]
    assert groups == sorted(groups)
    for g, width in ((0, 3), (1, 3), (2, 4)):
        block = [c for c, k in zip(names, groups) if k == g]
        assert block == sorted(block) and {len(c) for c in block} == {width}
    assert code_names(5) == sorted(code_names(5))


def test_simulated_looks_like_ehr_data(sim: EHRMatrix) -> None:
    present = sim.X > 0
    per_patient = present.sum(axis=1)
    prevalence = present.mean(axis=0)
    assert 0.005 < present.mean() < 0.02
    assert 10 <= per_patient.mean() <= 14 and per_patient.min() >= 1
    assert per_patient.max() > 4 * per_patient.mean()  # long right tail
    assert 0.3 < prevalence.max() < 0.45  # 401, calibrated to 38 %
    assert 0.1 < (prevalence < 0.001).mean() < 0.6
    assert 1.05 < sim.X[present].mean() < 1.5 and sim.X.max() >= 4


def test_simulated_codes_are_correlated(sim: EHRMatrix) -> None:
    present = sim.X > 0
    common = present[:, present.mean(axis=0) > 0.01].astype(np.float64)
    corr = np.corrcoef(common.T)
    np.fill_diagonal(corr, 0.0)
    assert (corr > 0.2).sum() // 2 >= 20


def test_simulated_small_sizes() -> None:
    tiny = SimulatedDataset.configure({"patients": 1, "codes": 3}).load()
    assert tiny.X.shape == (1, 3) and tiny.X.sum() >= 1


def test_simulated_fingerprint_changes_with_options() -> None:
    prints = {
        SimulatedDataset.configure(o).fingerprint()
        for o in ({}, {"seed": 1}, {"patients": 100}, {"codes": 500})
    }
    assert len(prints) == 4
    default = SimulatedDataset.configure({})
    assert default.fingerprint() == SimulatedDataset.configure({}).fingerprint()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"patient": 10}, "unknown option 'patient'"),
        ({"patients": 0}, "patients"),
        ({"codes": 0}, "codes"),
        ({"codes": 5000}, "1234"),
        ({"seed": -1}, "seed"),
    ],
)
def test_simulated_rejects_bad_options(options: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SimulatedDataset.configure(options)
