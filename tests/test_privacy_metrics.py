"""Privacy metrics (DESIGN.md §5): hand-computed cases, exact agreement with brute force on
fixtures full of ties, independence from row order, the calibration rows and the degenerate
generators on the default dataset, edge cases and bad input."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

import _brute
from _calibration_data import calibration_sets
from ehrbench.api import Metric, RunContext
from ehrbench.errors import ConfigError, InputError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.metrics import privacy
from ehrbench_plugins.metrics.adversarial import NNAdversarialAccuracy, adversarial_accuracy, beyond_share
from ehrbench_plugins.metrics.privacy import (
    AttributeInference,
    DistanceToClosestRecord,
    ExactCopies,
    MembershipInference,
    attack_auroc_and_accuracy,
    copy_shares,
    exact_copy_share,
    known_code_count,
    micro_f1,
    size_strata,
    stratified_auroc,
)


def mat(rows) -> EHRMatrix:
    X = np.asarray(rows, dtype=np.float32)
    return EHRMatrix(X, [f"c{j}" for j in range(X.shape[1])])


def score(cls: type[Metric], T, R, S, seed: int = 0, profile: str = "paper", **options) -> dict[str, float]:
    return cls.configure(options, profile).compute(mat(T), mat(R), mat(S), RunContext(seed=seed))


def random_counts(rng, n, d):
    return ((rng.random((n, d)) < 0.15) * rng.integers(1, 5, (n, d))).astype(np.float32)


def tied_counts(rng, n, d, top=2):
    """Few codes and small counts: equal distances and equal records everywhere."""
    return ((rng.random((n, d)) < 0.35) * rng.integers(1, top + 1, (n, d))).astype(np.float32)


# ---------------------------------------------------------------- hand-computed pieces


def test_attack_auroc_and_best_accuracy_by_hand():
    # pairs (member, non-member): (0,1) ✓ (0,2) ✓ (1,1) tie ½ (1,2) ✓ → 3.5 / 4
    auroc, accuracy = attack_auroc_and_accuracy(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert auroc == 0.875
    assert accuracy == 0.75  # t = 0: 1 member + 2 non-members right
    # An attack that is always wrong still has the trivial rule: accuracy 0.5, AUROC 0.
    auroc, accuracy = attack_auroc_and_accuracy(np.array([5.0, 6.0]), np.array([1.0, 2.0]))
    assert auroc == 0.0 and accuracy == 0.5


def test_exact_copy_share_counts_value_for_value_copies():
    T = np.array([[1, 0, 2], [1, 0, 2], [0, 3, 0], [0, 0, 0]], dtype=np.float32)  # rows 0 and 1 are twins
    S = np.array([[1, 0, 2], [1, 0, 1], [0, 0, 0], [0, 3, 0], [0, 3, 1]], dtype=np.float32)
    assert exact_copy_share(S, T) == 3 / 5
    assert exact_copy_share(S[:0], T) == 0.0


def test_exact_copies_count_only_training_only_records_against_the_holdout():
    T = [[1, 0, 2], [0, 3, 0], [0, 0, 0], [5, 5, 5]]
    R = [[0, 0, 0], [0, 0, 0], [5, 5, 5], [1, 1, 1]]  # R0/R1 are twins; R2 equals T3 and no other R row
    S = [[1, 0, 2], [0, 0, 0], [0, 3, 0], [2, 2, 2], [5, 5, 5]]
    out = score(ExactCopies, T, R, S)
    # S0 and S2 copy training-only records; S1 and S4 equal holdout records too; S3 copies nothing.
    assert out["synthetic"] == 2 / 5 and out["holdout"] == 1 / 4
    assert out["value"] == float(Fraction(2, 5) - Fraction(1, 4))
    assert out["train_copies"] == 4 / 5 and out["holdout_train_copies"] == 3 / 4
    # An all-empty release copies nothing identifying, however many empty training records there are.
    assert score(ExactCopies, T, R, [[0, 0, 0]] * 3)["value"] == -0.25


def test_micro_f1_and_beyond_share():
    assert micro_f1(np.array([[1, 0], [1, 1]]), np.array([[1, 1], [0, 1]])) == 2 * 2 / (3 + 3)
    assert micro_f1(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    assert beyond_share(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 0.75  # tie counts ½


def test_membership_inference_by_hand():
    T = [[1, 1, 0, 0], [0, 0, 1, 1]]
    R = [[1, 0, 0, 0], [0, 1, 1, 1]]
    S = [[1, 1, 0, 0], [0, 0, 1, 0]]
    # Hamming to the nearest synthetic row: members 0 and 1, non-members 1 and 2.
    out = score(MembershipInference, T, R, S)
    assert out["unstratified"] == 0.875 and out["best_accuracy"] == 0.75 and out["rows"] == 2
    # Sizes: members 2, 2; non-members 1, 3. Two strata of ≥ 2 rows: {1, 2, 3} is one (a short
    # last stratum joins the one before it), so the plain AUROC.
    assert score(MembershipInference, T, R, S, strata=2)["value"] == 0.875
    # Four strata: {1}, {2}, {3}: no member shares a stratum with a non-member → no evidence, 0.5.
    assert score(MembershipInference, T, R, S, strata=4)["value"] == 0.5
    assert MembershipInference.direction("best_accuracy") is None  # informational


def test_membership_strata_cancel_record_length():
    """Distances that are record lengths (an all-empty release) carry no membership signal."""
    members, non_members = np.array([1.0, 1.0, 3.0, 3.0]), np.array([1.0, 3.0, 3.0, 3.0])
    assert stratified_auroc(members, non_members, members, non_members, 10) == 0.5
    assert attack_auroc_and_accuracy(members, non_members)[0] == float(Fraction(5, 8))


def test_attribute_inference_by_hand():
    # Prevalence in T: c0 0.75, c1 0.25, c2 0.25 → with K = 1 the attacker knows c0 only.
    T = [[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0]]
    R = [[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]]
    S = [[1, 1, 0], [0, 0, 1]]
    out = score(AttributeInference, T, R, S, known_codes=1, min_attacked_codes=1)
    # Members predicted [1,0] ×3 and [0,1]: 1 true positive of 2, 4 predicted → F1 = 2/6.
    # Non-members predicted [1,0], [1,0], [0,1], [0,1]: 3 of 3, 4 predicted → F1 = 6/7.
    assert out["f1_members"] == 1 / 3 and out["f1_non_members"] == 6 / 7
    assert out["value"] == 1 / 3 - 6 / 7
    assert out["known"] == 1 and out["attacked_codes"] == 2


def test_attribute_inference_votes_over_all_tied_neighbours():
    T = [[1, 1], [1, 1]]
    R = [[1, 0], [1, 0]]
    S = [[1, 1], [1, 0], [1, 1]]
    # k = 3: all of S; c1 in 2 of 3 → predicted present for everyone.
    out = score(AttributeInference, T, R, S, known_codes=1, neighbours=3, min_attacked_codes=1)
    assert out["f1_members"] == 1.0 and out["f1_non_members"] == 0.0
    # k = 1 and k = 2: the three rows tie on c0, so they share the places: 2/3 have c1 → present.
    # (Ties to the lowest index made k = 2 take S0, S1 and call c1 absent.)
    for k in (1, 2):
        out = score(AttributeInference, T, R, S, known_codes=1, neighbours=k, min_attacked_codes=1)
        assert out["f1_members"] == 1.0
    # Half of the tied rows is not a majority: [1,1] and [1,0] tie → absent.
    out = score(AttributeInference, T, R, S[:2], known_codes=1, min_attacked_codes=1)
    assert out["f1_members"] == 0.0


def test_attribute_inference_attacks_at_least_half_the_codes():
    assert [known_code_count(256, d) for d in (2, 3, 40, 257, 300, 1071)] == [1, 1, 20, 128, 150, 256]
    rng = np.random.default_rng(11)
    T, R, S = (random_counts(rng, 200, 300) for _ in range(3))
    out = score(AttributeInference, T, R, S)
    assert out["known"] == 150 and out["attacked_codes"] >= 10 and not math.isnan(out["value"])


def test_attribute_inference_is_not_applicable_without_attacked_codes_in_s():
    rng = np.random.default_rng(12)
    T, R = random_counts(rng, 100, 40), random_counts(rng, 100, 40)
    out = score(AttributeInference, T, R, np.zeros((50, 40)))  # an all-empty release
    assert math.isnan(out["value"]) and out["attacked_codes"] == 0
    S = np.zeros((50, 40))
    _, attacked = _brute.known_and_attacked(T, R, 20)
    S[:, attacked[:9]] = 1  # 9 attacked codes: one short of min_attacked_codes
    assert math.isnan(score(AttributeInference, T, R, S)["value"])
    S[:, attacked[9]] = 1
    assert not math.isnan(score(AttributeInference, T, R, S)["value"])


def test_nn_adversarial_accuracy_by_hand():
    T, R, S = [[0], [2]], [[10], [11]], [[1], [5]]
    out = score(NNAdversarialAccuracy, T, R, S)
    # Train: d_TS = (1, 1) vs d_TT = (2, 2); d_ST = (1, 3) vs d_SS = (4, 4) → AA = 0.
    # Test:  d_RS = (5, 6) vs d_RR = (1, 1); d_SR = (9, 5) vs d_SS = (4, 4) → AA = 1.
    assert out["train"] == 0.0 and out["value"] == 1.0 and out["privacy_loss"] == 1.0
    assert out["test_real_side"] == 1.0 and out["test_synthetic_side"] == 1.0
    assert adversarial_accuracy(np.array([1.0]), np.array([1.0]), np.array([2.0]), np.array([1.0])) == 0.75
    assert NNAdversarialAccuracy.category == "fidelity"
    assert NNAdversarialAccuracy.direction("value").describe() == "toward 0.5"
    assert NNAdversarialAccuracy.direction("privacy_loss") is None


def test_nn_adversarial_accuracy_issue_reproduction_is_exactly_half():
    """Issue 18: every nearest distance is √2, so every comparison ties; AA must be 0.5 (was 0.25)."""
    T = [[0, 0, 1], [1, 1, 1]]
    S = [[1, 0, 0], [0, 1, 0]]
    out = score(NNAdversarialAccuracy, T, T, S)
    assert out["train"] == 0.5 and out["value"] == 0.5 and out["privacy_loss"] == 0.0
    for distance in ("l1", "hamming"):
        assert score(NNAdversarialAccuracy, T, T, S, distance=distance)["train"] == 0.5


def test_dcr_strata_and_calibration_by_hand():
    assert size_strata(np.array([1, 1, 1, 2, 2, 3, 5, 5]), 4).tolist() == [1, 2, 3]  # {1}, {2}, {3, 5}
    assert size_strata(np.array([1, 1, 1, 1, 9]), 2).tolist() == [1]  # a short last stratum joins
    T = [[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1]]
    R = [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 1]]
    # Hamming DCR of R: 0, 1 (size 1); 1, 1 (size 3); with 2 strata: sizes {1} and {3}.
    copy = score(DistanceToClosestRecord, T, R, [[1, 0, 0, 0], [1, 1, 1, 1]], distance="hamming", strata=2)
    # S0 (size 1, d 0) vs (0, 1): ½·½ + 1·½ = ¾; S1 (size 4 → stratum {3}, d 0) vs (1, 1): 1.
    assert copy["closer_share"] == 0.875 and copy["copy_share"] == 0.875 and copy["value"] == 1.0
    far = score(DistanceToClosestRecord, T, R, [[0, 0, 0, 1], [1, 1, 1, 1]], distance="hamming", strata=2)
    # S0 (size 1, d 2) is farther than both: 0; S1 still 1 → closer_share ½ → the ideal.
    assert far["closer_share"] == 0.5 and far["value"] == 0.5
    noise = score(DistanceToClosestRecord, T, R, [[0, 0, 0, 1]] * 2, distance="hamming", strata=2)
    assert noise["value"] == 0.0
    # No holdout record has 4 codes: a 4-code record that copies nobody is farther than all of
    # them (0), one that copies T2 is judged in the nearest stratum (1), as above.
    T2 = [[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0]]
    beyond = score(DistanceToClosestRecord, T2, R, [[1, 1, 1, 1], [1, 0, 0, 0]], distance="hamming", strata=2)
    assert beyond["closer_share"] == 0.375  # (0 + ¾) / 2


# ---------------------------------------------------------------- exact agreement with brute force


FIXTURE_SEEDS = [0, 1, 2, 3]


def tied_sets(seed: int, n: int = 24, d: int = 7):
    """T, R, S of equal sizes (so nothing is subsampled), sharing records, full of distance ties."""
    rng = np.random.default_rng(seed)
    T, R, S = tied_counts(rng, n, d), tied_counts(rng, n, d), tied_counts(rng, n, d)
    S[:4] = T[:4]  # copies
    R[4:6] = T[4:6]  # holdout patients equal to training patients
    S[6] = R[7]
    S[7] = 0  # an empty record
    return T, R, S


@pytest.mark.parametrize("seed", FIXTURE_SEEDS)
def test_membership_inference_equals_brute_force(seed):
    T, R, S = tied_sets(seed)
    for strata in (1, 3, 10):
        out = score(MembershipInference, T, R, S, strata=strata)
        assert (out["value"], out["unstratified"], out["best_accuracy"]) == _brute.membership(T, R, S, strata)


@pytest.mark.parametrize("seed", FIXTURE_SEEDS)
def test_exact_copies_equal_brute_force(seed):
    T, R, S = tied_sets(seed)
    synthetic, holdout = _brute.copy_shares(S, T, R)
    out = score(ExactCopies, T, R, S)
    expected = (float(synthetic), float(holdout), float(synthetic - holdout))
    assert (out["synthetic"], out["holdout"], out["value"]) == expected


@pytest.mark.parametrize("seed", FIXTURE_SEEDS)
@pytest.mark.parametrize("k", [1, 3])
def test_attribute_inference_equals_brute_force(seed, k):
    T, R, S = tied_sets(seed, d=8)
    out = score(AttributeInference, T, R, S, known_codes=3, neighbours=k, min_attacked_codes=1)
    known, attacked = _brute.known_and_attacked(T, R, 3)
    assert out["f1_members"] == _brute.attribute_f1(T, S, known, attacked, k)
    assert out["f1_non_members"] == _brute.attribute_f1(R, S, known, attacked, k)
    assert out["value"] == out["f1_members"] - out["f1_non_members"]


@pytest.mark.parametrize("seed", FIXTURE_SEEDS)
@pytest.mark.parametrize("distance", ["l2", "l1", "hamming"])
def test_nn_adversarial_accuracy_equals_brute_force(seed, distance):
    T, R, S = tied_sets(seed)
    out = score(NNAdversarialAccuracy, T, R, S, distance=distance)
    train, test = _brute.adversarial_accuracy(T, S, distance), _brute.adversarial_accuracy(R, S, distance)
    assert (out["train"], out["value"], out["privacy_loss"]) == (float(train), float(test), float(test - train))


@pytest.mark.parametrize("seed", FIXTURE_SEEDS)
@pytest.mark.parametrize("distance", ["l2", "l1", "hamming"])
def test_distance_to_closest_record_equals_brute_force(seed, distance):
    T, R, S = tied_sets(seed)
    for strata in (1, 3):
        out = score(DistanceToClosestRecord, T, R, S, distance=distance, strata=strata)
        assert (out["closer_share"], out["value"]) == _brute.dcr(S, R, T, distance, strata)


@pytest.mark.parametrize("cls", [*privacy.METRICS, NNAdversarialAccuracy])
def test_shuffling_rows_changes_no_value(cls):
    """Equal set sizes and no row cap: every row is used, so only the order changes."""
    T, R, S = tied_sets(5, n=40, d=9)
    options = {"min_attacked_codes": 1, "known_codes": 3} if cls is AttributeInference else {}
    first = score(cls, T, R, S, **options)
    rng = np.random.default_rng(0)
    for _ in range(3):
        shuffled = score(cls, T[rng.permutation(40)], R[rng.permutation(40)], S[rng.permutation(40)], **options)
        assert shuffled == first


def test_subsampling_is_seeded():
    rng = np.random.default_rng(6)
    T, R, S = (random_counts(rng, n, 25) for n in (200, 150, 120))
    for cls in (MembershipInference, AttributeInference, NNAdversarialAccuracy, DistanceToClosestRecord):
        options = {"max_rows": 50, **({"min_attacked_codes": 1} if cls is AttributeInference else {})}
        a = score(cls, T, R, S, seed=3, **options)
        assert a == score(cls, T, R, S, seed=3, **options)
        assert a["rows"] == 50
        assert a != score(cls, T, R, S, seed=4, **options)


# ---------------------------------------------------------------- the default dataset: calibration rows and gaming


@pytest.fixture(scope="module")
def calibration():
    parts, samples = calibration_sets()
    X = parts.train.X
    degenerate = {
        "uniform-noise": (np.random.default_rng(0).random((parts.test.n_patients, X.shape[1])) < 0.5),
        "all-empty": np.zeros((parts.test.n_patients, X.shape[1])),
    }
    samples = {**samples, **{k: parts.train.with_data(v.astype(np.float32)) for k, v in degenerate.items()}}
    return {
        name: {cls.name: cls.configure(None, "quick").compute(parts.train, parts.test, synthetic, RunContext(seed=2))
               for cls in privacy.METRICS}
        for name, synthetic in samples.items()
    }


def badness(metric: str, value: float) -> float:
    direction = next(c for c in privacy.METRICS if c.name == metric).direction("value")
    return direction.badness(value)


def test_train_resample_is_a_memoriser(calibration):
    out = calibration["train-resample"]
    assert out["membership_inference"]["value"] > 0.6
    assert out["exact_copies"]["train_copies"] == 1.0 and out["exact_copies"]["value"] > 0.6
    assert out["distance_to_closest_record"]["value"] == 1.0
    assert out["attribute_inference"]["value"] > 0.3


def test_independent_marginals_leaks_nothing(calibration):
    out = calibration["independent-marginals"]
    assert abs(out["membership_inference"]["value"] - 0.5) < 0.03
    assert out["exact_copies"]["synthetic"] < 1e-3 and out["exact_copies"]["train_copies"] < 1e-3
    assert abs(out["attribute_inference"]["value"]) < 0.02
    assert out["distance_to_closest_record"]["value"] < 0.5  # farther from T than real patients


def test_train_resample_is_worst_and_noise_and_empty_are_never_private(calibration):
    """Issue 18: a release of real records has the worst value on every privacy headline; noise
    and empty records never score better than independent-marginals where the metric can tell
    (on the pure attacks they are at chance, as an ideal generator is)."""
    for metric in calibration["train-resample"]:
        worst = badness(metric, calibration["train-resample"][metric]["value"])
        for name in calibration:
            value = calibration[name][metric]["value"]
            assert math.isnan(value) or badness(metric, value) <= worst, (metric, name)
    for metric in ("exact_copies", "distance_to_closest_record"):
        floor = badness(metric, calibration["independent-marginals"][metric]["value"])
        for name in ("uniform-noise", "all-empty"):
            assert badness(metric, calibration[name][metric]["value"]) >= floor, (metric, name)
    assert math.isnan(calibration["all-empty"]["attribute_inference"]["value"])
    assert calibration["uniform-noise"]["distance_to_closest_record"]["value"] == 0.0


# ---------------------------------------------------------------- registry, options, bad input


def test_hook_registers_the_privacy_metrics():
    assert {c.name for c in privacy.ehrbench_metrics()} == {
        "membership_inference", "exact_copies", "attribute_inference", "distance_to_closest_record"}
    for cls in privacy.ehrbench_metrics():
        assert cls.category == "privacy" and cls.description and "\n" not in cls.description
    directions = {c.name: c.direction("value").describe() for c in privacy.ehrbench_metrics()}
    assert directions == {"membership_inference": "toward 0.5", "exact_copies": "toward 0",
                          "attribute_inference": "toward 0", "distance_to_closest_record": "toward 0.5"}
    # Only the headlines are ranked: a category counts each metric once.
    for cls in privacy.ehrbench_metrics():
        assert all(d is None for k, d in cls.key_directions.items()), cls.name


@pytest.mark.parametrize(
    "cls, options",
    [(MembershipInference, {"max_rows": 1}), (AttributeInference, {"known_codes": 0}),
     (AttributeInference, {"neighbours": 0}), (AttributeInference, {"min_attacked_codes": 0}),
     (NNAdversarialAccuracy, {"distance": "cosine"}), (MembershipInference, {"strata": 0}),
     (DistanceToClosestRecord, {"bogus": 1}),
     (DistanceToClosestRecord, {"strata": 0}), (ExactCopies, {"max_rows": 5})],
)
def test_bad_options_are_config_errors(cls, options):
    with pytest.raises(ConfigError):
        cls.configure(options)


def test_mismatched_columns_are_input_errors():
    T = mat([[1, 0], [0, 1]])
    other = EHRMatrix(np.eye(2, dtype=np.float32), ["x", "y"])
    for cls in [*privacy.METRICS, NNAdversarialAccuracy]:
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
                 "membership_inference,exact_copies,distance_to_closest_record", "--json")
    assert result.code == 0, result.err
    values = json.loads(result.out)
    assert 0.0 <= values["membership_inference"] <= 1.0
    expected = copy_shares(data["synthetic"], data["train"], data["test"])
    assert values["exact_copies"] == expected.excess
    assert values["exact_copies.train_copies"] == exact_copy_share(data["synthetic"], data["train"])
    assert 0.0 <= values["distance_to_closest_record"] <= 1.0
