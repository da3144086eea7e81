"""Privacy metrics and the nearest-neighbour search (DESIGN.md §5): hand-computed cases, the
calibration rows on the default dataset, edge cases and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from _calibration_data import calibration_sets
from ehrbench.api import Metric, RunContext
from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.metrics import _neighbours, privacy
from ehrbench_plugins.metrics.privacy import (
    AttributeInference,
    DistanceToClosestRecord,
    MembershipInference,
    NNAdversarialAccuracy,
    adversarial_accuracy,
    attack_auroc_and_accuracy,
    beyond_share,
    exact_copy_share,
    micro_f1,
)


def mat(rows) -> EHRMatrix:
    X = np.asarray(rows, dtype=np.float32)
    return EHRMatrix(X, [f"c{j}" for j in range(X.shape[1])])


def score(cls: type[Metric], T, R, S, seed: int = 0, profile: str = "paper", **options) -> dict[str, float]:
    return cls.configure(options, profile).compute(mat(T), mat(R), mat(S), RunContext(seed=seed))


def brute(Q: np.ndarray, R: np.ndarray, distance: str) -> np.ndarray:
    if distance == "hamming":
        return cdist(Q > 0, R > 0, "hamming") * Q.shape[1]
    return cdist(Q, R, "euclidean" if distance == "l2" else "cityblock")


def random_counts(rng, n, d):
    return ((rng.random((n, d)) < 0.15) * rng.integers(1, 5, (n, d))).astype(np.float32)


# ---------------------------------------------------------------- nearest-neighbour search


@pytest.mark.parametrize("distance", ["hamming", "l1", "l2"])
@pytest.mark.parametrize("k", [1, 3])
def test_search_matches_brute_force_with_lowest_index_ties(distance, k):
    rng = np.random.default_rng(0)
    Q, R = random_counts(rng, 57, 30), random_counts(rng, 83, 30)
    R[10] = R[40] = Q[0]  # an exact tie at distance 0: index 10 must come first
    full = brute(Q, R, distance)
    found = _neighbours.search(Q, R, distance=distance, k=k, reference_min=True)
    order = np.lexsort((np.broadcast_to(np.arange(83), full.shape), np.round(full, 9)), axis=1)[:, :k]
    assert np.array_equal(found.indices, order)
    assert np.allclose(found.distances, np.take_along_axis(full, order, axis=1))
    assert np.allclose(found.reference_min, full.min(axis=0))
    assert found.indices[0, 0] == 10 and found.distances[0, 0] == 0.0


@pytest.mark.parametrize("distance", ["hamming", "l1", "l2"])
def test_leave_one_out_excludes_the_row_not_its_duplicates(distance):
    rng = np.random.default_rng(1)
    X = random_counts(rng, 40, 12)
    X[7] = X[3]  # a duplicate patient is at distance 0 from row 3
    full = brute(X, X, distance)
    np.fill_diagonal(full, np.inf)
    found = _neighbours.nearest_distance(X, distance=distance)
    assert np.allclose(found, full.min(axis=1))
    assert found[3] == 0.0 and found[7] == 0.0


def test_search_blocks_and_large_counts_stay_exact(monkeypatch):
    """Many blocks (tiny block size, thread pool) and counts too large for float32 sums."""
    monkeypatch.setattr(_neighbours, "_CPU_BLOCK_VALUES", 64)
    rng = np.random.default_rng(2)
    Q, R = random_counts(rng, 50, 20) * 1000, random_counts(rng, 70, 20) * 1000
    found = _neighbours.search(Q, R, distance="l2", k=2)
    full = brute(Q, R, "l2")
    assert np.allclose(found.distances, np.sort(full, axis=1)[:, :2])


def test_dense_references_take_the_blas_path():
    rng = np.random.default_rng(3)
    Q, R = rng.integers(0, 3, (20, 8)).astype(np.float32), rng.integers(1, 3, (30, 8)).astype(np.float32)
    for distance in ("hamming", "l1", "l2"):
        assert np.allclose(_neighbours.nearest_distance(Q, R, distance=distance), brute(Q, R, distance).min(axis=1))


@pytest.mark.parametrize("distance", ["hamming", "l1", "l2"])
def test_torch_kernel_matches_numpy(distance):
    """The CUDA code path, run on torch's CPU device (no GPU on CI; see the gpu test below)."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    Q, R = random_counts(rng, 33, 15), random_counts(rng, 45, 15)
    plan = _neighbours._Plan(distance, _neighbours._levels(distance, 4.0), np.float64)
    expected = _neighbours.search(Q, R, distance=distance, k=3, reference_min=True)
    d, idx, rmin = _neighbours._search_torch(Q, R, plan, 3, False, True, "cpu")
    finish = np.sqrt if distance == "l2" else (lambda a: a)
    assert np.array_equal(idx, expected.indices)
    assert np.allclose(finish(d), expected.distances)
    assert np.allclose(finish(rmin), expected.reference_min)
    _, loo_idx, _ = _neighbours._search_torch(Q, Q, plan, 1, True, False, "cpu")
    assert np.array_equal(loo_idx, _neighbours.search(Q, distance=distance).indices)


@pytest.mark.gpu
def test_cuda_search_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(5)
    Q, R = random_counts(rng, 3000, 200), random_counts(rng, 5000, 200)
    for distance in ("hamming", "l1", "l2"):
        cpu = _neighbours.search(Q, R, distance=distance, k=2, reference_min=True)
        gpu = _neighbours.search(Q, R, distance=distance, k=2, reference_min=True, device="cuda")
        assert np.array_equal(cpu.indices, gpu.indices)
        assert np.allclose(cpu.distances, gpu.distances) and np.allclose(cpu.reference_min, gpu.reference_min)


def test_search_rejects_bad_arguments():
    Q = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="equal widths"):
        _neighbours.search(Q, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="between 1 and 2"):
        _neighbours.search(Q, k=3)  # leave-one-out: only 2 other rows
    with pytest.raises(ValueError, match="unknown distance"):
        _neighbours.search(Q, Q, distance="cosine")


# ---------------------------------------------------------------- hand-computed pieces


def test_attack_auroc_and_best_accuracy_by_hand():
    # pairs (member, non-member): (0,1) ✓ (0,2) ✓ (1,1) tie ½ (1,2) ✓ → 3.5 / 4
    auroc, accuracy = attack_auroc_and_accuracy(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert auroc == pytest.approx(0.875)
    assert accuracy == pytest.approx(0.75)  # t = 0: 1 member + 2 non-members right
    # An attack that is always wrong still has the trivial rule: accuracy 0.5, AUROC 0.
    auroc, accuracy = attack_auroc_and_accuracy(np.array([5.0, 6.0]), np.array([1.0, 2.0]))
    assert auroc == 0.0 and accuracy == 0.5


def test_exact_copy_share_counts_value_for_value_copies():
    T = np.array([[1, 0, 2], [1, 0, 2], [0, 3, 0], [0, 0, 0]], dtype=np.float32)  # rows 0 and 1 are twins
    S = np.array([[1, 0, 2], [1, 0, 1], [0, 0, 0], [0, 3, 0], [0, 3, 1]], dtype=np.float32)
    assert exact_copy_share(S, T) == pytest.approx(3 / 5)
    assert exact_copy_share(S[:0], T) == 0.0


def test_micro_f1_and_beyond_share():
    assert micro_f1(np.array([[1, 0], [1, 1]]), np.array([[1, 1], [0, 1]])) == pytest.approx(2 * 2 / (3 + 3))
    assert micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    assert beyond_share(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == pytest.approx(0.75)  # tie counts ½


def test_membership_inference_by_hand():
    T = [[1, 1, 0, 0], [0, 0, 1, 1]]
    R = [[1, 0, 0, 0], [0, 1, 1, 1]]
    S = [[1, 1, 0, 0], [0, 0, 1, 0]]
    # Hamming to the nearest synthetic row: members 0 and 1, non-members 1 and 2.
    out = score(MembershipInference, T, R, S)
    expected_auroc, expected_accuracy = attack_auroc_and_accuracy(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert out["value"] == pytest.approx(expected_auroc) == pytest.approx(0.875)
    assert out["best_accuracy"] == pytest.approx(expected_accuracy) == pytest.approx(0.75)
    assert out["exact_copies"] == pytest.approx(0.5)
    assert out["rows"] == 2


def test_attribute_inference_by_hand():
    # Prevalence in T: c0 0.75, c1 0.25, c2 0.25 → with K = 1 the attacker knows c0 only.
    T = [[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0]]
    R = [[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]]
    S = [[1, 1, 0], [0, 0, 1]]
    out = score(AttributeInference, T, R, S, known_codes=1)
    # Members predicted [1,0] ×3 and [0,1]: 1 true positive of 2, 4 predicted → F1 = 2/6.
    # Non-members predicted [1,0], [1,0], [0,1], [0,1]: 3 of 3, 4 predicted → F1 = 6/7.
    assert out["f1_members"] == pytest.approx(1 / 3)
    assert out["f1_non_members"] == pytest.approx(6 / 7)
    assert out["value"] == pytest.approx(1 / 3 - 6 / 7)
    assert out["known"] == 1
    # Known codes are capped at d − 1: with K = 256 on 3 codes, 2 are known.
    assert score(AttributeInference, T, R, S)["known"] == 2


def test_attribute_inference_majority_vote_over_k():
    T = [[1, 1], [1, 1]]
    R = [[1, 0], [1, 0]]
    S = [[1, 1], [1, 0], [1, 1]]
    # k = 3 neighbours on c0: all of S; c1 present in 2 of 3 → predicted present for everyone.
    out = score(AttributeInference, T, R, S, known_codes=1, neighbours=3)
    assert out["f1_members"] == pytest.approx(1.0) and out["f1_non_members"] == 0.0
    # k = 2: the two nearest (lowest index) are S0 and S1: 1 of 2 is not a majority → absent.
    out = score(AttributeInference, T, R, S, known_codes=1, neighbours=2)
    assert out["f1_members"] == 0.0


def test_nn_adversarial_accuracy_by_hand():
    T, R, S = [[0], [2]], [[10], [11]], [[1], [5]]
    out = score(NNAdversarialAccuracy, T, R, S)
    # Train: d_TS = (1, 1) vs d_TT = (2, 2); d_ST = (1, 3) vs d_SS = (4, 4) → AA = 0.
    # Test:  d_RS = (5, 6) vs d_RR = (1, 1); d_SR = (9, 5) vs d_SS = (4, 4) → AA = 1.
    assert out["value"] == 0.0 and out["test"] == 1.0 and out["privacy_loss"] == 1.0
    assert out["train_real_side"] == 0.0 and out["train_synthetic_side"] == 0.0
    assert adversarial_accuracy(np.array([1.0]), np.array([1.0]), np.array([2.0]), np.array([1.0])) == 0.75


def test_distance_to_closest_record_by_hand():
    T, S, R = [[0, 0], [3, 4]], [[0, 1], [3, 4]], [[0, 2], [6, 8]]
    out = score(DistanceToClosestRecord, T, R, S)
    # l2: S → T = (1, 0), median 0.5; R → T = (2, 5), median 3.5.
    assert (out["synthetic"], out["holdout"]) == (0.5, 3.5)
    assert out["value"] == pytest.approx(1 / 7)
    out = score(DistanceToClosestRecord, T, R, S, distance="l1")
    assert (out["synthetic"], out["holdout"]) == (0.5, 4.5)  # R1 → T1: |6−3| + |8−4| = 7
    out = score(DistanceToClosestRecord, T, R, S, distance="hamming")
    assert (out["synthetic"], out["holdout"], out["value"]) == (0.5, 0.5, 1.0)
    assert privacy.median_ratio(0.0, 0.0) == 1.0 and privacy.median_ratio(1.0, 0.0) == float("inf")


def test_subsampling_is_seeded():
    rng = np.random.default_rng(6)
    T, R, S = (random_counts(rng, n, 25) for n in (200, 150, 120))
    for cls in (MembershipInference, AttributeInference, NNAdversarialAccuracy, DistanceToClosestRecord):
        a = score(cls, T, R, S, seed=3, max_rows=50)
        assert a == score(cls, T, R, S, seed=3, max_rows=50)
        assert a["rows"] == 50
        assert a != score(cls, T, R, S, seed=4, max_rows=50)


# ---------------------------------------------------------------- calibration rows (default dataset)


@pytest.fixture(scope="module")
def calibration():
    parts, samples = calibration_sets()
    out = {}
    for name, synthetic in samples.items():
        out[name] = {
            cls.name: cls.configure(None, "quick").compute(parts.train, parts.test, synthetic, RunContext(seed=2))
            for cls in privacy.METRICS
        }
    return out


def test_train_resample_is_a_memoriser(calibration):
    mia = calibration["train-resample"]["membership_inference"]
    assert mia["exact_copies"] == 1.0
    assert mia["value"] > 0.6 and mia["best_accuracy"] > 0.6
    assert calibration["train-resample"]["distance_to_closest_record"]["value"] < 0.2
    assert calibration["train-resample"]["attribute_inference"]["value"] > 0.2


def test_independent_marginals_leaks_nothing(calibration):
    mia = calibration["independent-marginals"]["membership_inference"]
    assert mia["exact_copies"] < 1e-3  # at most a chance copy of a one- or two-code record
    assert abs(mia["value"] - 0.5) < 0.04 and mia["best_accuracy"] < 0.55
    assert abs(calibration["independent-marginals"]["attribute_inference"]["value"]) < 0.02
    assert abs(calibration["independent-marginals"]["nn_adversarial_accuracy"]["privacy_loss"]) < 0.03
    assert calibration["independent-marginals"]["distance_to_closest_record"]["value"] > 1.0


# ---------------------------------------------------------------- registry, options, bad input


def test_hook_registers_the_privacy_metrics():
    assert {c.name for c in privacy.ehrbench_metrics()} == {
        "membership_inference", "attribute_inference", "nn_adversarial_accuracy", "distance_to_closest_record"}
    for cls in privacy.ehrbench_metrics():
        assert cls.category == "privacy" and cls.description and "\n" not in cls.description
    assert MembershipInference.direction("value").describe() == "toward 0.5"
    assert MembershipInference.direction("rows") is None
    assert NNAdversarialAccuracy.direction("privacy_loss").describe() == "lower"
    assert DistanceToClosestRecord.direction("value").describe() == "higher"


@pytest.mark.parametrize(
    "cls, options",
    [(MembershipInference, {"max_rows": 1}), (AttributeInference, {"known_codes": 0}),
     (AttributeInference, {"neighbours": 0}), (NNAdversarialAccuracy, {"distance": "cosine"}),
     (DistanceToClosestRecord, {"bogus": 1})],
)
def test_bad_options_are_config_errors(cls, options):
    with pytest.raises(ConfigError):
        cls.configure(options)


def test_mismatched_columns_are_input_errors():
    T = mat([[1, 0], [0, 1]])
    other = EHRMatrix(np.eye(2, dtype=np.float32), ["x", "y"])
    for cls in privacy.METRICS:
        with pytest.raises(InputError, match="code columns differ"):
            cls.configure().compute(T, T, other, RunContext(seed=0))


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        score(NNAdversarialAccuracy, [[1, 0]], [[1, 0], [0, 1]], [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="synthetic set has 2 rows"):
        score(AttributeInference, [[1, 0]], [[1, 0]], [[1, 0], [0, 1]], neighbours=3)


def test_evaluate_cli_scores_privacy_metrics(cli, tmp_path):
    rng = np.random.default_rng(7)
    codes = [f"c{j}" for j in range(20)]
    data = {name: random_counts(rng, n, 20) for name, n in (("train", 80), ("test", 40), ("synthetic", 40))}
    for name, X in data.items():
        EHRMatrix(X, codes).save(tmp_path / f"{name}.npz")
    result = cli("evaluate", "--train", tmp_path / "train.npz", "--test", tmp_path / "test.npz",
                 "--synthetic", tmp_path / "synthetic.npz", "--metrics",
                 "membership_inference,distance_to_closest_record", "--json")
    assert result.code == 0, result.err
    values = json.loads(result.out)
    assert 0.0 <= values["membership_inference"] <= 1.0
    assert values["membership_inference.exact_copies"] == exact_copy_share(data["synthetic"], data["train"])
    assert values["distance_to_closest_record.synthetic"] > 0.0
