"""The ``mimic3`` and ``mimic3-demo`` datasets: the patient × ICD-9-group matrix of MIMIC-III.

The matrix follows Choi et al. 2017 (medGAN) as the ScoEHR and medGAN papers use it:

- one row per patient (SUBJECT_ID in ADMISSIONS), all patients, all their admissions; rows
  sorted by SUBJECT_ID; a patient whose admissions have no diagnosis rows is a row of zeros;
- columns are ICD-9 groups (:mod:`.icd9`: 3 characters, E-codes 4), in the documented order;
- count mode adds 1 per diagnosis row (two full codes of one group in one admission count 2);
  binary mode keeps presence;
- dropped and counted: rows with an empty ICD9_CODE, rows whose HADM_ID is not in ADMISSIONS,
  rows whose SUBJECT_ID disagrees with their admission's. A code that is not written like an
  ICD-9 code is an error, never silently dropped or trimmed.

The summary (patients, admissions, rows used and dropped, codes) and, with a D_ICD_DIAGNOSES
file, the group titles are stored in the matrix's ``meta`` (and so in the ``.npz``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ehrbench import Dataset, EHRMatrix, InputError, from_arrays, hookimpl

from . import mimic3_csv
from .icd9 import CODE_EXPECTED, CODE_PATTERN, column_order, group_titles, groups_of
from .medgan_pickle import read_medgan
from .mimic3_published import SCOEHR_PAPER

DEMO_DIR = Path(__file__).parent / "data" / "mimic3-demo"
DEMO_FILES = {
    "admissions": DEMO_DIR / "ADMISSIONS.csv.gz",
    "diagnoses": DEMO_DIR / "DIAGNOSES_ICD.csv.gz",
    "titles": DEMO_DIR / "D_ICD_DIAGNOSES.csv.gz",
}
DEMO_NOTICE = (
    "Contains information from the MIMIC-III Clinical Database Demo, which is made available "
    "under the Open Database License (ODbL)."
)
GROUPING = "ICD-9 3-character groups (E-codes 4 characters), Choi et al. 2017"


# --------------------------------------------------------------------------- reading


def read_admissions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(SUBJECT_ID, HADM_ID) per admission; HADM_ID must be unique."""
    frame = mimic3_csv.read_table(path, ("subject_id", "hadm_id"), "ADMISSIONS")
    subjects = mimic3_csv.integer_column(frame, "subject_id")
    hadm = mimic3_csv.integer_column(frame, "hadm_id")
    order = np.argsort(hadm, kind="stable")
    repeated = np.flatnonzero(hadm[order][1:] == hadm[order][:-1])
    if repeated.size:
        first, again = sorted((int(order[repeated[0]]), int(order[repeated[0] + 1])))
        mimic3_csv.raise_at(
            frame, "hadm_id", again,
            f"admission {hadm[again]} appears again (first on line "
            f"{mimic3_csv.line_of_row(path, first)}); expected one row per admission.",
        )
    return subjects, hadm


@dataclass(frozen=True)
class Diagnoses:
    subjects: np.ndarray
    hadm: np.ndarray
    code_index: np.ndarray  # per row, into ``code_values``
    code_values: np.ndarray  # distinct full ICD9_CODE texts ("" where empty)


def read_diagnoses(path: Path) -> Diagnoses:
    """Diagnosis rows; every non-empty code must look like an ICD-9 code (checked per distinct code)."""
    frame = mimic3_csv.read_table(path, ("subject_id", "hadm_id", "icd9_code"), "DIAGNOSES_ICD")
    subjects = mimic3_csv.integer_column(frame, "subject_id")
    hadm = mimic3_csv.integer_column(frame, "hadm_id")
    index, uniques = pd.factorize(frame["icd9_code"], sort=False)
    text = pd.Series(uniques, dtype=object).astype(str)
    ok = (text == "") | text.str.fullmatch(CODE_PATTERN.pattern)
    if not ok.all():
        bad = int(np.flatnonzero(~ok.to_numpy(dtype=bool))[0])
        row = int(np.argmax(index == bad))
        mimic3_csv.raise_at(
            frame, "icd9_code", row, f"{text.iloc[bad]!r} is not {CODE_EXPECTED} (codes are never trimmed)."
        )
    return Diagnoses(subjects, hadm, index, text.to_numpy(dtype=object))


def read_titles(path: Path) -> dict[str, str]:
    """Group titles from a D_ICD_DIAGNOSES file (either dialect)."""
    frame = mimic3_csv.read_table(path, ("icd9_code", "long_title"), "D_ICD_DIAGNOSES")
    frame = frame[frame["icd9_code"].str.fullmatch(CODE_PATTERN.pattern)]
    return group_titles(frame.rename(columns={"icd9_code": "code", "long_title": "title"}))


# --------------------------------------------------------------------------- building


def build_matrix(
    adm_subjects: np.ndarray, adm_hadm: np.ndarray, dx: Diagnoses, binary: bool = False
) -> tuple[sp.csr_matrix, np.ndarray, list[str], dict[str, Any]]:
    """(sparse counts, patient ids, group names, summary) — the whole Choi et al. recipe."""
    n_rows = len(dx.hadm)
    empty = (dx.code_values == "")[dx.code_index]
    position = pd.Index(adm_hadm).get_indexer(dx.hadm)
    unknown = ~empty & (position < 0)
    mismatch = ~empty & ~unknown & (adm_subjects[np.maximum(position, 0)] != dx.subjects)
    used = ~(empty | unknown | mismatch)
    patients, patient_of_admission = np.unique(adm_subjects, return_inverse=True)
    rows = patient_of_admission[position[used]]
    used_codes = dx.code_index[used]
    # Group the distinct codes, not the rows: a 651k-row table has ~7k distinct codes.
    group_of_value, group_names = pd.factorize(groups_of(pd.Series(dx.code_values, dtype=object)), sort=False)
    present_groups = np.unique(group_of_value[np.unique(used_codes)]) if used_codes.size else np.array([], int)
    names = [str(group_names[g]) for g in present_groups]
    order = column_order(names)
    rank = np.full(len(group_names), -1, dtype=np.int64)
    rank[present_groups[order]] = np.arange(len(names))
    cols = rank[group_of_value[used_codes]]
    X = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)),
        shape=(patients.size, len(names)),
    )
    X.sum_duplicates()
    if binary:
        X.data[:] = 1.0
    admissions_with_rows = np.unique(position[used])
    summary = {
        "patients": int(patients.size),
        "admissions": int(adm_hadm.size),
        "admissions_without_diagnoses": int(adm_hadm.size - admissions_with_rows.size),
        "patients_without_diagnoses": int(patients.size - np.unique(rows).size),
        "diagnosis_rows": int(n_rows),
        "rows_used": int(used.sum()),
        "rows_dropped": {
            "empty_icd9_code": int(empty.sum()),
            "hadm_id_not_in_admissions": int(unknown.sum()),
            "subject_id_differs_from_admission": int(mismatch.sum()),
        },
        "codes": len(names),
        "distinct_full_codes": int(np.unique(used_codes).size),
    }
    return X, patients, [names[j] for j in order], summary


def prepare_mimic3(
    admissions: Path, diagnoses: Path, binary: bool = False, titles: Path | None = None
) -> EHRMatrix:
    """The patient × group matrix of a MIMIC-III extract, with its summary in ``meta``."""
    adm_subjects, adm_hadm = read_admissions(admissions)
    if adm_hadm.size == 0:
        raise InputError(f"{admissions}: has a header but no admissions; expected one row per admission.")
    dx = read_diagnoses(diagnoses)
    X, patients, names, summary = build_matrix(adm_subjects, adm_hadm, dx, binary)
    if not names:
        raise InputError(
            f"{diagnoses}: no usable diagnosis rows (every row was empty or did not match an "
            f"admission in {admissions}); {summary['rows_dropped']}."
        )
    meta: dict[str, Any] = {
        "dataset": "mimic3",
        "simulated": False,
        "source": {"admissions": str(admissions), "diagnoses": str(diagnoses)},
        "representation": "binary" if binary else "count",
        "grouping": GROUPING,
        "column_order": "numeric groups ascending, then V, then E",
        "summary": summary,
    }
    if titles is not None:
        all_titles = read_titles(titles)
        meta["titles"] = {g: all_titles[g] for g in names if g in all_titles}
        meta["source"]["titles"] = str(titles)
        summary["codes_without_title"] = len(names) - len(meta["titles"])
    return EHRMatrix(X.toarray(), names, patients, meta)


# --------------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class Mimic3Options:
    """Either the two CSV tables, or medGAN's pickled matrix behind ``allow_pickle``."""

    admissions: Path | None = None
    diagnoses: Path | None = None
    binary: bool = False
    titles: Path | None = None  # a D_ICD_DIAGNOSES file: group titles for reports
    matrix: Path | None = None  # medGAN's pickled .matrix
    types: Path | None = None  # medGAN's pickled .types (code → column)
    allow_pickle: bool = False

    def __post_init__(self) -> None:
        csvs = self.admissions is not None or self.diagnoses is not None
        if self.matrix is not None:
            if csvs:
                raise ValueError("give either 'admissions' and 'diagnoses', or 'matrix', not both")
            if not self.allow_pickle:
                raise ValueError(
                    f"option 'matrix' ({self.matrix}) is a pickle, and unpickling can run code "
                    f"hidden in the file; set 'allow_pickle' (--allow-pickle) if you trust it"
                )
        elif self.types is not None:
            raise ValueError("option 'types' goes with option 'matrix' (medGAN's .matrix file)")
        elif self.admissions is None or self.diagnoses is None:
            missing = "admissions" if self.admissions is None else "diagnoses"
            raise ValueError(
                f"missing option '{missing}': give the ADMISSIONS and DIAGNOSES_ICD files "
                f"(.csv or .csv.gz), or a medGAN 'matrix' with 'allow_pickle'"
            )


class Mimic3Dataset(Dataset):
    """MIMIC-III from the user's own credentialed files (or medGAN's pickled matrix)."""

    name = "mimic3"
    description = "MIMIC-III patient × ICD-9 group matrix from your ADMISSIONS and DIAGNOSES_ICD files"
    simulated = False
    Options = Mimic3Options
    published = (SCOEHR_PAPER,)

    def input_files(self) -> list[Path]:
        o = self.options
        files = [o.admissions, o.diagnoses, o.titles, o.matrix, o.types]
        for f in files:
            if f is not None and not Path(f).is_file():
                raise InputError(f"{f}: file not found (dataset '{self.name}').")
        return [Path(f) for f in files if f is not None]

    def load(self) -> EHRMatrix:
        o = self.options
        if o.matrix is not None:
            return self._load_medgan()
        assert o.admissions is not None and o.diagnoses is not None
        return prepare_mimic3(o.admissions, o.diagnoses, o.binary, o.titles)

    def _load_medgan(self) -> EHRMatrix:
        o = self.options
        assert o.matrix is not None
        X, names, meta = read_medgan(o.matrix, o.types)
        if o.binary:
            X = (np.asarray(X) > 0).astype(np.float32)
        meta = {"dataset": "mimic3", "simulated": False, "source": {"matrix": str(o.matrix)},
                "representation": "binary" if o.binary else "count", **meta}
        if o.titles is not None:
            titles = read_titles(o.titles)
            meta["titles"] = {g: titles[g] for g in names if g in titles}
        return from_arrays(X, names, None, meta, source=str(o.matrix))


@dataclass(frozen=True)
class Mimic3DemoOptions:
    """The demo takes only the representation."""

    binary: bool = False


class Mimic3DemoDataset(Dataset):
    """The public MIMIC-III Clinical Database Demo v1.4 (100 patients), bundled, ODbL."""

    name = "mimic3-demo"
    description = "MIMIC-III Clinical Database Demo v1.4 (100 patients, bundled, ODbL)"
    simulated = False
    Options = Mimic3DemoOptions

    def input_files(self) -> list[Path]:
        return list(DEMO_FILES.values())

    def load(self) -> EHRMatrix:
        matrix = prepare_mimic3(
            DEMO_FILES["admissions"], DEMO_FILES["diagnoses"], self.options.binary, DEMO_FILES["titles"]
        )
        matrix.meta.update(dataset="mimic3-demo", notice=DEMO_NOTICE, licence="ODbL-1.0")
        matrix.meta["source"] = {k: f"bundled {p.name}" for k, p in DEMO_FILES.items()}
        return matrix


@hookimpl
def ehrbench_datasets() -> list[type]:
    return [Mimic3Dataset, Mimic3DemoDataset]


@hookimpl
def ehrbench_prepare_commands() -> list:
    from .mimic3_cli import prepare_mimic3

    return [prepare_mimic3]
