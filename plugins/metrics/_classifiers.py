"""The classifier families of the utility metrics, fitted and scored one way (DESIGN.md §5, §8).

Each family is a fixed, documented configuration so a number can be reproduced: sklearn
defaults except where a default is intractable at MIMIC-III scale (noted per family). All
fit sparse CSR features except k-NN, which uses the blocked search of ``_neighbours`` (ties
at the k-th distance averaged, so row order never matters)
(sklearn's brute-force k-NN took 17 s per fit on 14k × 1k sparse rows; this takes under 1 s).

Threads: every fit runs with BLAS and OpenMP limited to one thread (their spin-waiting
barriers collapse when jobs share cores, see ``detection_auc``); the random forest instead
spreads its trees over all cores with joblib threads (``n_jobs=-1``), which do not spin, and
the k-NN search runs its blocks on a thread pool.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.naive_bayes import BernoulliNB
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from ehrbench_plugins.metrics import _neighbours

FAMILIES: tuple[str, ...] = (
    "logistic_regression",
    "random_forest",
    "gradient_boosting",
    "mlp",
    "knn",
    "naive_bayes",
)
KNN_NEIGHBOURS = 5
MLP_EPOCHS = 30


class NearestNeighbourClassifier:
    """k-NN by Euclidean distance: P(y = 1) = share of positives among the k nearest fit rows.

    Fit rows tied at the k-th distance share the remaining places equally (the expected vote
    of a uniformly random tie-break), so the score does not depend on the order of the rows;
    sklearn's ``KNeighborsClassifier(k)`` instead keeps whichever tied rows its sort meets first.
    """

    def __init__(self, k: int = KNN_NEIGHBOURS, device: str = "cpu") -> None:
        self.k = k
        self.device = device

    def fit(self, X: sparse.spmatrix | np.ndarray, y: np.ndarray) -> NearestNeighbourClassifier:
        self._X = _dense(X)
        self._y = np.asarray(y, dtype=np.float64)
        return self

    def predict_proba(self, X: sparse.spmatrix | np.ndarray) -> np.ndarray:
        k = min(self.k, self._X.shape[0])
        labels = (self._y > 0).astype(np.int8)[:, None]
        p = _neighbours.tie_averaged(_dense(X), self._X, labels, distance="l2", k=k, device=self.device).mean()[:, 0]
        return np.column_stack([1.0 - p, p])


def _dense(X: sparse.spmatrix | np.ndarray) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


def make_model(family: str, seed: int, device: str = "cpu") -> object:
    """A fresh, seeded model of ``family``."""
    if family == "logistic_regression":
        return LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    if family == "random_forest":
        # min_samples_leaf=5 (sklearn: 1): 3× faster at 14k rows and no worse an AUROC.
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=-1, random_state=seed)
    if family == "gradient_boosting":
        # Classic gradient boosting (sklearn defaults): on sparse CSC it is 7× faster than the
        # histogram variant, which needs dense input.
        return GradientBoostingClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, random_state=seed)
    if family == "mlp":
        # A fixed 30 epochs (sklearn: up to 200). sklearn's early stopping watches validation
        # *accuracy*, which stays flat on rare targets and stopped nets before they learned.
        return MLPClassifier(hidden_layer_sizes=(100,), max_iter=MLP_EPOCHS, random_state=seed)
    if family == "knn":
        return NearestNeighbourClassifier(KNN_NEIGHBOURS, device)
    if family == "naive_bayes":
        return BernoulliNB(alpha=1.0, binarize=0.0)  # presence of each code, counts or 0/1 alike
    raise ValueError(f"unknown classifier family {family!r}; expected one of {', '.join(FAMILIES)}")


# AUROCs already computed in this process, by a digest of everything that determines them.
# Every generator of a repeat shares the metric seed, so the real side of each utility metric
# (models fitted on the same T rows, scored on the same R rows) is computed once per repeat
# instead of once per generator when jobs share a process (the local executor); jobs in their own
# processes share them through ``RunContext.cache_dir`` (one small text file per digest).
_MEMO: OrderedDict[bytes, tuple[float, bool]] = OrderedDict()
_MEMO_ENTRIES = 4096


def _digest(family: str, seed: int, device: str, *arrays: sparse.spmatrix | np.ndarray) -> bytes:
    h = hashlib.blake2b(f"{family}|{seed}|{device}".encode(), digest_size=20)
    for a in arrays:
        if sparse.issparse(a):
            a = sparse.csr_matrix(a)
            parts = (a.data, a.indices, a.indptr)
        else:
            parts = (np.asarray(a),)
        h.update(repr(a.shape).encode())
        for part in parts:
            part = np.ascontiguousarray(part)
            h.update(part.dtype.str.encode())
            h.update(part.tobytes())
    return h.digest()


def fit_auroc(
    family: str,
    X_fit: sparse.spmatrix,
    y_fit: np.ndarray,
    X_eval: sparse.spmatrix,
    y_eval: np.ndarray,
    seed: int,
    device: str = "cpu",
    cache_dir: Path | None = None,
) -> tuple[float, bool]:
    """(AUROC on the evaluation rows, whether a model could be trained).

    A fit set with one class cannot train a classifier; the only sensible prediction is a
    constant, whose AUROC is exactly 0.5, so that is returned with ``False``. Fits are
    deterministic (one BLAS thread, seeded, serial forest prediction), so an answer is
    remembered by a digest of the family, seed, device and all four arrays: in this process,
    and in ``cache_dir`` when one is given (``RunContext.cache_dir``).
    """
    key = _digest(family, seed, device, X_fit, y_fit, X_eval, y_eval)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    result = _read_cached(cache_dir, key)
    if result is None:
        result = _fit_auroc(family, X_fit, y_fit, X_eval, y_eval, seed, device)
        _write_cached(cache_dir, key, result)
    _MEMO[key] = result
    if len(_MEMO) > _MEMO_ENTRIES:
        _MEMO.popitem(last=False)
    return result


def _read_cached(cache_dir: Path | None, key: bytes) -> tuple[float, bool] | None:
    """A result another job wrote, as "AUROC trained" (the float's exact repr); None when absent."""
    if cache_dir is None:
        return None
    try:
        auroc, trained = (cache_dir / key.hex()).read_text().split()
        return float(auroc), trained == "1"
    except (OSError, ValueError):  # absent, or unreadable: compute it
        return None


def _write_cached(cache_dir: Path | None, key: bytes, result: tuple[float, bool]) -> None:
    """Write atomically (a reader sees the whole line or no file); a full disk only costs time.

    Not ``ehrbench.atomic``: plugins import only the ``ehrbench`` face, and a cache in the run's
    temporary folder, gone with it, needs the rename but not that module's fsync."""
    if cache_dir is None:
        return
    path = cache_dir / key.hex()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(f"{result[0]!r} {int(result[1])}")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)


def _fit_auroc(
    family: str,
    X_fit: sparse.spmatrix,
    y_fit: np.ndarray,
    X_eval: sparse.spmatrix,
    y_eval: np.ndarray,
    seed: int,
    device: str,
) -> tuple[float, bool]:
    y_fit = np.asarray(y_fit, dtype=np.int8)
    if y_fit.size == 0 or y_fit.min() == y_fit.max():
        return 0.5, False
    model = make_model(family, seed, device)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_fit, y_fit)
        if getattr(model, "n_jobs", None) not in (None, 1):
            # A forest's parallel predict_proba adds tree outputs in thread order, so the last
            # digits (and AUROC ties) changed between identical runs; predicting serially is exact.
            model.set_params(n_jobs=1)
        scores = model.predict_proba(X_eval)[:, 1]
    return float(roc_auc_score(y_eval, scores)), True
