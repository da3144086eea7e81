"""EHRMatrix: validation messages, binary view, .npz round trip, the seeded split."""

from __future__ import annotations

import numpy as np
import pytest

from ehrbench.errors import InputError
from ehrbench.matrix import EHRMatrix, from_arrays, split


def small() -> EHRMatrix:
    return EHRMatrix(np.array([[0, 2, 1], [3, 0, 0], [0, 0, 5], [1, 1, 1]], dtype=float), ["038", "401", "E849"], ids=[10, 11, 12, 13])


def test_binary_view():
    m = small().binary()
    assert m.X.tolist() == [[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 1]]
    assert m.X.dtype == np.float32


def test_npz_round_trip_keeps_codes_ids_and_meta(tmp_path):
    m = small()
    m.meta = {"source": "test"}
    m.save(tmp_path / "m.npz")
    back = EHRMatrix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.X, m.X)
    assert back.codes.tolist() == ["038", "401", "E849"]
    assert back.ids.tolist() == [10, 11, 12, 13]
    assert back.meta == {"source": "test"}
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(
    "value, message",
    [(np.nan, "row 1, column '401': value nan is not a finite number"),
     (-1.0, "row 1, column '401': value -1.0 is negative"),
     (0.5, "row 1, column '401': value 0.5 is not an integer")],
)
def test_values_are_checked_with_row_and_column(value, message):
    X = np.ones((3, 2))
    X[1, 1] = value
    with pytest.raises(InputError) as info:
        from_arrays(X, ["038", "401"], source="data.npz")
    assert str(info.value).startswith("data.npz: ") and message in str(info.value)


def test_binary_values_above_one_rejected():
    with pytest.raises(InputError, match="above 1"):
        from_arrays(np.array([[0, 2]]), ["a", "b"], binary=True)


def test_duplicate_codes_and_length_mismatch():
    with pytest.raises(InputError, match="'a' appears more than once"):
        EHRMatrix(np.zeros((1, 2)), ["a", "a"])
    with pytest.raises(InputError, match="3 code names for a matrix of 2 columns"):
        EHRMatrix(np.zeros((1, 2)), ["a", "b", "c"])


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        EHRMatrix.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not a zip")
    with pytest.raises(InputError, match="garbage.npz: not a readable .npz"):
        EHRMatrix.load(garbage)
    np.savez(tmp_path / "nocodes.npz", X=np.zeros((2, 2)))
    with pytest.raises(InputError, match="missing array codes"):
        EHRMatrix.load(tmp_path / "nocodes.npz")
    np.savez(tmp_path / "nan.npz", X=np.array([[0.0, np.nan]]), codes=np.array(["a", "b"]))
    with pytest.raises(InputError, match=r"nan.npz: row 0, column 'b'"):
        EHRMatrix.load(tmp_path / "nan.npz")


def test_check_same_codes_messages():
    a = EHRMatrix(np.zeros((1, 3)), ["x", "y", "z"])
    with pytest.raises(InputError, match="codes missing from S \\(first: 'z'\\)"):
        a.check_same_codes(EHRMatrix(np.zeros((1, 2)), ["x", "y"]), "T", "S")
    with pytest.raises(InputError, match="column 0 is 'x' in T but 'y' in S"):
        a.check_same_codes(EHRMatrix(np.zeros((1, 3)), ["y", "x", "z"]), "T", "S")


def test_split_is_seeded_disjoint_and_70_30():
    m = EHRMatrix(np.arange(100, dtype=float).reshape(100, 1), ["a"], ids=np.arange(100))
    s1, s2, s3 = split(m, 1), split(m, 1), split(m, 2)
    assert (s1.train.n_patients, s1.test.n_patients) == (70, 30)
    assert set(s1.train.ids) | set(s1.test.ids) == set(range(100))
    assert not set(s1.train.ids) & set(s1.test.ids)
    assert s1.test.ids.tolist() == s2.test.ids.tolist()
    assert s1.test.ids.tolist() != s3.test.ids.tolist()
    assert s1.manifest() == {"seed": 1, "test_fraction": 0.3, "n_train": 70, "n_test": 30}


@pytest.mark.parametrize("n", [1, 2, 3, 20, 31])
def test_split_refuses_a_dataset_too_small_for_ten_patients_a_side(n):
    with pytest.raises(InputError, match=f"the dataset has {n} patient.*at least 10 patients"):
        split(EHRMatrix(np.zeros((n, 1)), ["a"]), 0)


def test_the_smallest_split_allowed_has_ten_patients_in_test():
    s = split(EHRMatrix(np.zeros((32, 1)), ["a"]), 0)
    assert (s.train.n_patients, s.test.n_patients) == (22, 10)
