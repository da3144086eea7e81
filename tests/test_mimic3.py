"""The ``mimic3`` dataset, ``ehrbench prepare mimic3`` and the bundled ``mimic3-demo``."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.datasets import mimic3
from ehrbench_plugins.datasets.icd9 import group_of, sort_groups
from ehrbench_plugins.datasets.mimic3 import DEMO_DIR, Mimic3Dataset, Mimic3DemoDataset

# ----------------------------------------------------------------------- tiny extracts

# Hand-made extract. Patient 7: admissions 100 and 101; patient 9: admission 200 (no rows).
# Expected (count): 7 → 038:1 (from 0389), 041:1 (0414), 401:3 (4019, 4010 in 100; 4019 in 101),
# V45:1 (V4501), E849:1 (E8497).
ADMISSIONS = [("1", "7", "100"), ("2", "7", "101"), ("3", "9", "200")]
DIAGNOSES = [
    ("1", "7", "100", "1", "0389"),
    ("2", "7", "100", "2", "4019"),
    ("3", "7", "100", "3", "4010"),
    ("4", "7", "100", "4", "0414"),
    ("5", "7", "101", "1", "4019"),
    ("6", "7", "101", "2", "V4501"),
    ("7", "7", "101", "3", "E8497"),
]
EXPECTED_CODES = ["038", "041", "401", "V45", "E849"]
EXPECTED = np.array([[1, 1, 3, 1, 1], [0, 0, 0, 0, 0]], dtype=np.float32)


def write_table(path: Path, header: list[str], rows: list[tuple[str, ...]], dialect: str) -> Path:
    """``credentialed``: upper-case quoted header, quoted strings, CRLF, gzip; ``demo``: plain."""
    if dialect == "credentialed":
        head = ",".join(f'"{h.upper()}"' for h in header)
        body = [",".join(f'"{v}"' if header[j] == "icd9_code" or not v.isdigit() else v
                         for j, v in enumerate(r)) for r in rows]
        text = "\r\n".join([head, *body]) + "\r\n"
        with gzip.open(path, "wt", newline="") as fh:
            fh.write(text)
    else:
        text = "\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n"
        path.write_text(text, newline="")
    return path


def extract(tmp_path: Path, dialect: str, admissions=ADMISSIONS, diagnoses=DIAGNOSES) -> tuple[Path, Path]:
    suffix = ".csv.gz" if dialect == "credentialed" else ".csv"
    adm = write_table(tmp_path / f"ADMISSIONS{suffix}", ["row_id", "subject_id", "hadm_id"], admissions, dialect)
    dx = write_table(tmp_path / f"DIAGNOSES_ICD{suffix}",
                     ["row_id", "subject_id", "hadm_id", "seq_num", "icd9_code"], diagnoses, dialect)
    return adm, dx


def load(adm: Path, dx: Path, **options: object) -> EHRMatrix:
    return Mimic3Dataset.configure({"admissions": str(adm), "diagnoses": str(dx), **options}).load()


# ----------------------------------------------------------------------- grouping


def test_grouping_rules() -> None:
    assert [group_of(c) for c in ("4019", "0389", "038", "V4501", "V45", "E8497", "E849", "40391")] == [
        "401", "038", "038", "V45", "V45", "E849", "E849", "403"]
    assert sort_groups(["V45", "E849", "401", "038", "V01", "E800", "999"]) == [
        "038", "401", "999", "V01", "V45", "E800", "E849"]


# ----------------------------------------------------------------------- dialects


@pytest.mark.parametrize("dialect", ["credentialed", "demo"])
def test_both_dialects_give_the_hand_computed_matrix(tmp_path: Path, dialect: str) -> None:
    adm, dx = extract(tmp_path, dialect)
    if dialect == "credentialed":
        assert gzip.open(dx, "rt", newline="").readline() == '"ROW_ID","SUBJECT_ID","HADM_ID","SEQ_NUM","ICD9_CODE"\r\n'
        assert '"0389"' in gzip.open(dx, "rt").read()
    m = load(adm, dx)
    assert m.codes.tolist() == EXPECTED_CODES  # 0389 → 038, never 38 or 389
    assert m.ids.tolist() == [7, 9]
    np.testing.assert_array_equal(m.X, EXPECTED)
    s = m.meta["summary"]
    assert s["patients"] == 2 and s["admissions"] == 3 and s["admissions_without_diagnoses"] == 1
    assert s["patients_without_diagnoses"] == 1 and s["rows_used"] == 7 and s["codes"] == 5
    binary = load(adm, dx, binary=True)
    np.testing.assert_array_equal(binary.X, (EXPECTED > 0).astype(np.float32))
    assert binary.meta["representation"] == "binary"


def test_compression_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    adm, dx = extract(tmp_path, "credentialed")
    renamed = tmp_path / "diagnoses.txt"
    dx.rename(renamed)
    np.testing.assert_array_equal(load(adm, renamed).X, EXPECTED)


def test_dropped_rows_are_counted(tmp_path: Path) -> None:
    rows = [*DIAGNOSES,
            ("8", "7", "100", "5", ""),  # empty code
            ("9", "7", "999", "1", "4019"),  # admission not in ADMISSIONS
            ("10", "8", "100", "6", "4019")]  # subject disagrees with the admission
    m = load(*extract(tmp_path, "demo", diagnoses=rows))
    np.testing.assert_array_equal(m.X, EXPECTED)
    assert m.meta["summary"]["rows_dropped"] == {
        "empty_icd9_code": 1, "hadm_id_not_in_admissions": 1, "subject_id_differs_from_admission": 1}
    assert m.meta["summary"]["diagnosis_rows"] == 10


def test_titles_attach_from_d_icd_diagnoses(tmp_path: Path) -> None:
    titles = tmp_path / "D_ICD_DIAGNOSES.csv"
    titles.write_text('row_id,icd9_code,short_title,long_title\n1,4010,Mal hypertens,"Malignant essential hypertension"\n'
                      '2,4019,Hypertension NOS,Unspecified essential hypertension\n3,0389,Septicemia NOS,Unspecified septicemia\n')
    m = load(*extract(tmp_path, "demo"), titles=str(titles))
    assert m.meta["titles"] == {"038": "Unspecified septicemia", "401": "Unspecified essential hypertension"}
    assert m.meta["summary"]["codes_without_title"] == 3


# ----------------------------------------------------------------------- bad input (CLI, exit 2)


def prepare(cli, adm: Path, dx: Path, out: Path, *extra: str):
    return cli("prepare", "mimic3", "--admissions", adm, "--diagnoses", dx, "-o", out, *extra)


def assert_error(result, path: Path, *parts: str) -> None:
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    assert str(path) in result.err, result.err
    for part in parts:
        assert part in result.err, result.err


def test_missing_column_names_file_line_and_column(cli, tmp_path: Path) -> None:
    adm, dx = extract(tmp_path, "credentialed")
    bad = tmp_path / "bad.csv"
    bad.write_text("row_id,subject_id,seq_num,icd9_code\n1,7,1,4019\n")
    assert_error(prepare(cli, adm, bad, tmp_path / "m.npz"), bad, "line 1", "HADM_ID", "DIAGNOSES_ICD")


def test_unparseable_ids_name_line_and_column(cli, tmp_path: Path) -> None:
    rows = [*DIAGNOSES[:3], ("4", "7x", "100", "4", "0414"), *DIAGNOSES[4:]]
    adm, bad = extract(tmp_path, "credentialed", diagnoses=rows)
    assert_error(prepare(cli, adm, bad, tmp_path / "m.npz"), bad, "line 5", "column 'SUBJECT_ID' (column 2)", "'7x'")
    adm_rows = [ADMISSIONS[0], ("2", "7", ""), ADMISSIONS[2]]
    (tmp_path / "c").mkdir()
    bad_adm, dx2 = extract(tmp_path / "c", "demo", admissions=adm_rows)
    assert_error(prepare(cli, bad_adm, dx2, tmp_path / "m.npz"), bad_adm, "line 3", "column 'hadm_id'", "empty")


def test_line_numbers_count_quoted_multiline_fields(cli, tmp_path: Path) -> None:
    adm = tmp_path / "adm.csv"
    adm.write_text('"SUBJECT_ID","HADM_ID","DIAGNOSIS"\r\n7,100,"CHEST PAIN\r\nRULE OUT MI"\r\n\r\n7,1.5,"SEPSIS"\r\n')
    _, dx = extract(tmp_path, "demo")
    assert_error(prepare(cli, adm, dx, tmp_path / "m.npz"), adm, "line 5", "column 'HADM_ID' (column 2)", "'1.5'")


def test_malformed_code_is_an_error_not_trimmed(cli, tmp_path: Path) -> None:
    rows = [*DIAGNOSES[:2], ("3", "7", "100", "3", "401.9"), *DIAGNOSES[3:]]
    adm, dx = extract(tmp_path, "demo", diagnoses=rows)
    assert_error(prepare(cli, adm, dx, tmp_path / "m.npz"), dx, "line 4", "column 'icd9_code'", "'401.9'")


def test_duplicate_admission(cli, tmp_path: Path) -> None:
    adm, dx = extract(tmp_path, "demo", admissions=[*ADMISSIONS, ("4", "9", "101")])
    assert_error(prepare(cli, adm, dx, tmp_path / "m.npz"), adm, "line 5", "101", "line 3")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10, "not a CSV text file"),
        (b"PK\x03\x04" + b"\x00" * 40, "zip archive"),
        (b"\x1f\x8b\x08\x00garbage-not-gzip", "cannot be read"),
        (b"just some words\nwithout the columns\n", "no column 'SUBJECT_ID'"),
    ],
)
def test_files_that_are_not_mimic_csv(cli, tmp_path: Path, content: bytes, expected: str) -> None:
    _, dx = extract(tmp_path, "demo")
    bad = tmp_path / "ADMISSIONS.csv.gz"
    bad.write_bytes(content)
    assert_error(prepare(cli, bad, dx, tmp_path / "m.npz"), bad, expected)


def test_header_only_tables(cli, tmp_path: Path) -> None:
    adm, dx = extract(tmp_path, "demo")
    empty_dx = tmp_path / "dx.csv"
    empty_dx.write_text("row_id,subject_id,hadm_id,seq_num,icd9_code\n")
    assert_error(prepare(cli, adm, empty_dx, tmp_path / "m.npz"), empty_dx, "no usable diagnosis rows")
    empty_adm = tmp_path / "adm.csv"
    empty_adm.write_text("row_id,subject_id,hadm_id\r\n")
    assert_error(prepare(cli, empty_adm, dx, tmp_path / "m.npz"), empty_adm, "no admissions")


def test_missing_file_and_missing_options(cli, tmp_path: Path) -> None:
    _, dx = extract(tmp_path, "demo")
    assert_error(prepare(cli, tmp_path / "nope.csv", dx, tmp_path / "m.npz"), tmp_path / "nope.csv", "not found")
    result = cli("prepare", "mimic3", "--diagnoses", dx, "-o", tmp_path / "m.npz")
    assert result.code == 2 and "admissions" in result.err
    with pytest.raises(ConfigError, match="allow_pickle"):
        Mimic3Dataset.configure({"matrix": str(tmp_path / "x.matrix")})
    with pytest.raises(ConfigError, match="not both"):
        Mimic3Dataset.configure({"matrix": "x", "admissions": "a", "diagnoses": "d", "allow_pickle": True})


# ----------------------------------------------------------------------- CLI output


def test_prepare_writes_npz_with_summary(cli, tmp_path: Path) -> None:
    rows = [*DIAGNOSES, ("8", "7", "100", "5", "")]
    adm, dx = extract(tmp_path, "credentialed", diagnoses=rows)
    result = prepare(cli, adm, dx, tmp_path / "m.npz")
    assert result.code == 0, result.err
    assert "patients 2" in result.out and "admissions 3 (1 without diagnosis rows)" in result.out
    assert "used 7, dropped 1 (empty ICD9_CODE 1" in result.out and "codes 5" in result.out
    saved = EHRMatrix.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(saved.X, EXPECTED)
    assert saved.meta["summary"]["rows_dropped"]["empty_icd9_code"] == 1
    assert saved.meta["simulated"] is False


# ----------------------------------------------------------------------- medGAN pickles


def test_medgan_pickle_needs_the_flag_and_reorders_columns(cli, tmp_path: Path) -> None:
    X = np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32)
    (tmp_path / "m.matrix").write_bytes(pickle.dumps(X, protocol=2))
    (tmp_path / "m.types").write_bytes(pickle.dumps({"D_V45": 0, "D_401": 1, "D_038": 2}, protocol=2))
    args = ("prepare", "mimic3", "--matrix", tmp_path / "m.matrix", "--types", tmp_path / "m.types", "-o", tmp_path / "o.npz")
    refused = cli(*args)
    assert refused.code == 2 and "--allow-pickle" in refused.err
    result = cli(*args, "--allow-pickle")
    assert result.code == 0, result.err
    assert "unpickling can run code" in result.err
    m = EHRMatrix.load(tmp_path / "o.npz")
    assert m.codes.tolist() == ["038", "401", "V45"]
    np.testing.assert_array_equal(m.X, [[2, 0, 1], [0, 3, 0]])


def test_medgan_pickle_refuses_code(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.matrix").write_bytes(pickle.dumps(Exploit()))
    dataset = Mimic3Dataset.configure({"matrix": str(tmp_path / "evil.matrix"), "allow_pickle": True})
    with pytest.warns(UserWarning, match="unpickling"), pytest.raises(InputError, match="refused to load global"):
        dataset.load()


# ----------------------------------------------------------------------- the bundled demo


@pytest.fixture(scope="module")
def demo() -> EHRMatrix:
    return Mimic3DemoDataset.configure({}).load()


def test_demo_shape_total_and_summary(demo: EHRMatrix) -> None:
    assert demo.X.shape == (100, 275)
    assert demo.X.sum() == 1761  # every diagnosis row counted once
    s = demo.meta["summary"]
    assert (s["patients"], s["admissions"], s["diagnosis_rows"], s["rows_used"]) == (100, 129, 1761, 1761)
    assert s["distinct_full_codes"] == 581 and s["codes_without_title"] == 0
    assert "Open Database License" in demo.meta["notice"] and demo.meta["simulated"] is False


def test_demo_known_cells(demo: EHRMatrix) -> None:
    cell = lambda subject, code: demo.X[list(demo.ids).index(subject), list(demo.codes).index(code)]  # noqa: E731
    assert cell(10006, "424") == 2  # 4241 and 4240 in one admission
    assert cell(10006, "038") == 1  # 03819: leading zero kept
    assert cell(10006, "E879") == 1 and cell(10006, "V09") == 1 and cell(10006, "428") == 1
    assert cell(41976, "401") == 13 and cell(41976, "427") == 12  # across 15 admissions
    assert demo.meta["titles"]["401"] == "Unspecified essential hypertension"
    assert demo.meta["titles"]["486"] == "Pneumonia, organism unspecified"
    assert demo.codes.tolist() == sort_groups(demo.codes.tolist())


def test_bundled_files_match_the_demo_checksums() -> None:
    readme = (DEMO_DIR / "README.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64}) (\S+)$", readme, re.M))
    assert set(sums) == {"LICENSE.txt", "ADMISSIONS.csv", "DIAGNOSES_ICD.csv", "D_ICD_DIAGNOSES.csv"}
    for name, digest in sums.items():
        path = DEMO_DIR / name if name.endswith(".txt") else DEMO_DIR / f"{name}.gz"
        data = path.read_bytes() if name.endswith(".txt") else gzip.decompress(path.read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, name
    assert "Open Database License" in (DEMO_DIR / "LICENSE.txt").read_text()


def test_prepare_on_demo_files_matches_the_dataset(cli, tmp_path: Path, demo: EHRMatrix) -> None:
    result = cli("prepare", "mimic3", "--admissions", DEMO_DIR / "ADMISSIONS.csv.gz",
                 "--diagnoses", DEMO_DIR / "DIAGNOSES_ICD.csv.gz",
                 "--titles", DEMO_DIR / "D_ICD_DIAGNOSES.csv.gz", "-o", tmp_path / "demo.npz")
    assert result.code == 0, result.err
    saved = EHRMatrix.load(tmp_path / "demo.npz")
    np.testing.assert_array_equal(saved.X, demo.X)
    assert saved.meta["titles"] == demo.meta["titles"]


def test_run_on_the_demo(cli, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = cli("run", "--dataset", "mimic3-demo", "--profile", "smoke", "--repeats", "1",
                 "--generators", "train-resample,independent-marginals",
                 "--metrics", "dimension_wise_probability,pairwise_correlation_difference", "--out", out)
    assert result.code == 0, result.err
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["dataset"]["name"] == "mimic3-demo" and manifest["dataset"]["simulated"] is False
    assert manifest["dataset"]["n_patients"] == 100 and manifest["dataset"]["n_codes"] == 275


def test_fingerprint_follows_file_content(tmp_path: Path) -> None:
    adm, dx = extract(tmp_path, "demo")
    first = Mimic3Dataset.configure({"admissions": str(adm), "diagnoses": str(dx)}).fingerprint()
    dx.write_text(dx.read_text().replace("4010", "4011"))
    assert Mimic3Dataset.configure({"admissions": str(adm), "diagnoses": str(dx)}).fingerprint() != first
    assert mimic3.ehrbench_datasets() == [Mimic3Dataset, Mimic3DemoDataset]


def test_the_mimic3_plugin_supplies_the_papers_published_values() -> None:
    [paper] = Mimic3Dataset.published
    assert "ScoEHR" in paper.source and paper.representation == "binary"
    assert paper.values["scoehr"] == {"dimension_wise_probability": 0.0029, "pairwise_correlation_difference": 21.8,
                                      "log_cluster": -6.0, "synthetic_ranking_agreement": 0.87}
    assert set(paper.values) == {"medgan", "medbgan", "medwgan", "scoehr"}
    assert Mimic3DemoDataset.published == ()  # 100 patients are not the paper's cohort
    assert type(paper).from_dict(paper.to_dict()) == paper

