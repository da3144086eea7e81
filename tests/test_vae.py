"""The VAE family (synthvae, cvae): options, contract, seeds, cache, DP through Opacus, conditional samples."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from _extras import needs_extra

from ehrbench.api import RunContext
from ehrbench.errors import ConfigError
from ehrbench.matrix import EHRMatrix
from ehrbench_plugins.generators.vae import models as vae
from ehrbench_plugins.generators.vae.conditions import random_conditions
from ehrbench_plugins.generators.vae.models import CVAE, SynthVAE
from ehrbench_plugins.generators.vae.privacy import MissingExtra
from ehrbench_plugins.metrics.fidelity import PairwiseCorrelationDifference

FAMILY = [SynthVAE, CVAE]
TINY = {"latent_dim": 4, "hidden_dims": (16, 16), "epochs": 2, "batch_size": 40, "threads": 1}


@pytest.fixture(scope="module")
def counts(correlated_counts) -> np.ndarray:
    return correlated_counts


def fitted(cls, X, seed=0, representation="count", **options):
    gen = cls.configure("smoke", {**TINY, **options})
    gen.fit(X, RunContext(seed=seed, representation=representation))
    return gen


# -- registration and options --------------------------------------------------------------------
def test_hook_registers_both_with_torch_a_cache_and_the_conditional_capability():
    assert vae.ehrbench_generators() == [SynthVAE, CVAE]
    for cls in FAMILY:
        assert cls.uses_torch and cls.can_save() and cls.description and not cls.calibration
    assert CVAE.conditional and not SynthVAE.conditional


def test_paper_profile_is_synthvaes_mimic_setup():
    o = SynthVAE.configure("paper").options
    assert (o.latent_dim, o.hidden_dims, o.activation) == (256, (256, 256), "tanh")
    assert (o.epochs, o.batch_size, o.learning_rate) == (5, 32, 1e-3)
    assert (o.dp, o.target_epsilon, o.delta) == (False, 1.0, None)
    for profile in ("quick", "smoke"):
        assert SynthVAE.configure(profile).options.threads == 1 and CVAE.configure(profile).options.threads == 1


@pytest.mark.parametrize(("options", "message"), [
    ({"latent_dim": 0}, "latent_dim"), ({"hidden_dims": []}, "hidden_dims"), ({"target_epsilon": 0}, "target_epsilon"),
    ({"target_epsilon": math.inf}, "target_epsilon"), ({"delta": 1.0}, "delta"), ({"max_grad_norm": -1}, "max_grad_norm"),
    ({"activation": "gelu"}, "activation"), ({"decode": "mode"}, "decode"), ({"epochs": 0}, "epochs"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        SynthVAE.configure("smoke", options)


# -- the contract -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FAMILY)
def test_counts_are_non_negative_integers_and_binary_is_zero_or_one(cls, counts):
    S = fitted(cls, counts).sample(300, RunContext(seed=1))
    assert S.shape == (300, 12) and S.dtype == np.float32
    assert (S >= 0).all() and np.array_equal(S, np.rint(S)) and S.sum() > 0
    B = fitted(cls, (counts > 0).astype(np.float32), representation="binary").sample(
        200, RunContext(seed=1, representation="binary"))
    assert set(np.unique(B)) <= {0.0, 1.0}


def test_bad_training_matrix_and_sample_before_fit(counts):
    gen = SynthVAE.configure("smoke", TINY)
    with pytest.raises(RuntimeError, match="before fit"):
        gen.sample(3, RunContext(seed=0))
    with pytest.raises(ValueError, match="non-negative"):
        gen.fit(-counts, RunContext(seed=0))
    with pytest.raises(ValueError, match="binary"):
        gen.fit(counts * 3, RunContext(seed=0, representation="binary"))
    assert fitted(SynthVAE, counts).sample(0, RunContext(seed=0)).shape == (0, 12)


@pytest.mark.parametrize("cls", FAMILY)
def test_deterministic_by_seed_and_leaves_global_state_alone(cls, counts):
    torch.manual_seed(123)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    a = fitted(cls, counts, seed=4).sample(100, RunContext(seed=5))
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    b = fitted(cls, counts, seed=4).sample(100, RunContext(seed=5))
    c = fitted(cls, counts, seed=6).sample(100, RunContext(seed=5))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("cls", FAMILY)
def test_save_and_load_round_trip(cls, counts, tmp_path):
    gen = fitted(cls, counts)
    gen.save(tmp_path)
    other = cls.configure("smoke", TINY)
    other.load(tmp_path, RunContext(seed=0))
    assert np.array_equal(gen.sample(50, RunContext(seed=2)), other.sample(50, RunContext(seed=2)))
    assert other.training_log() == gen.training_log() and other.parameter_count() == gen.parameter_count()
    assert other.privacy_guarantee() is None


def test_load_rejects_another_architecture_and_another_generator(counts, tmp_path):
    fitted(SynthVAE, counts).save(tmp_path)
    with pytest.raises(ValueError, match="latent_dim"):
        SynthVAE.configure("smoke", {**TINY, "latent_dim": 5}).load(tmp_path, RunContext(seed=0))
    with pytest.raises(ValueError, match="not a saved cvae model"):
        CVAE.configure("smoke", TINY).load(tmp_path, RunContext(seed=0))


def block_cohort(rng: np.random.Generator, n: int = 1200, d: int = 16) -> np.ndarray:
    """Binary rows where 4 hidden conditions (30 % each) switch on blocks of 3 codes, over 8 % noise."""
    shared = rng.random((n, 4)) < 0.3
    X = (rng.random((n, d)) < 0.08).astype(np.float32)
    for j in range(4):
        X[:, 4 * j:4 * j + 3] = np.maximum(X[:, 4 * j:4 * j + 3], shared[:, [j]])
    return X


def test_learns_a_correlation_the_marginals_lack():
    """More epochs on a block-correlated cohort: PCD below the independent-marginals sample's."""
    rng = np.random.default_rng(0)
    X = block_cohort(rng)
    n, d = X.shape
    real = EHRMatrix(X, [str(i) for i in range(d)])
    ctx = RunContext(seed=0, representation="binary")
    gen = SynthVAE.configure("smoke", {"epochs": 10, "batch_size": 64})
    gen.fit(X, ctx)
    S = gen.sample(n, ctx)
    independent = (rng.random((n, d)) < X.mean(axis=0)).astype(np.float32)
    pcd = PairwiseCorrelationDifference()
    assert pcd.compute(real, real, real.with_data(S), ctx)["value"] < 0.85 * pcd.compute(
        real, real, real.with_data(independent), ctx)["value"]


# -- conditional generation -------------------------------------------------------------------------
@pytest.mark.parametrize("representation", ["count", "binary"])
def test_conditional_samples_always_contain_their_codes(counts, representation):
    X = counts if representation == "count" else (counts > 0).astype(np.float32)
    gen = fitted(CVAE, X, representation=representation)
    ctx = RunContext(seed=3, representation=representation)
    for codes in ([5], [0, 7], [11]):
        S = gen.sample_conditional(120, ctx, codes)
        assert S.shape == (120, 12) and (S[:, codes] >= 1).all() and np.array_equal(S, np.rint(S))
    with pytest.raises(ValueError, match="outside"):
        gen.sample_conditional(3, ctx, [12])


def test_random_conditions_give_codes_independently_of_the_record():
    x = torch.tensor([[1.0, 0, 2, 0, 1, 0, 0, 0], [0] * 8, [3, 1, 1, 1, 1, 1, 1, 1]])
    subsets, given = set(), torch.zeros(3, 8)
    for seed in range(300):
        extra = random_conditions(x, torch.Generator().manual_seed(seed))
        c, m = extra[:, :8], extra[:, 8:]
        assert torch.equal(c, (x > 0).float() * m)  # a given code carries its presence
        subsets.add(tuple(m[0].tolist()))
        given += m
    assert len(subsets) > 100  # many subsets of the codes, the empty and single ones included
    assert {sum(s) for s in subsets} == set(range(9))
    assert ((given / 300 - 0.5).abs() < 0.1).all()  # present or absent, each code given about half the time


def test_generators_without_the_capability_refuse_conditional_sampling(counts):
    with pytest.raises(NotImplementedError, match="synthvae"):
        fitted(SynthVAE, counts).sample_conditional(3, RunContext(seed=0), [0])


# -- differential privacy -------------------------------------------------------------------------
def test_dp_without_opacus_names_the_extra(counts, monkeypatch):
    monkeypatch.setitem(sys.modules, "opacus", None)  # import opacus now raises ImportError
    with pytest.raises(MissingExtra, match=r"ehrbench\[dp\]"):
        fitted(SynthVAE, counts, dp=True)


def test_core_and_listing_never_import_opacus():
    code = ("import sys; from ehrbench.plugins import load_registry; r = load_registry(); "
            "[r.get('generators', g) for g in ('synthvae', 'cvae')]; "
            "from ehrbench.cli import main; assert 'opacus' not in sys.modules, 'opacus imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@needs_extra("dp")
def test_recorded_epsilon_is_opacus_own_accountant(counts):
    """ε recorded = Opacus' RDP accountant for the same (σ, q, steps) and δ, compared exactly."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.utils import get_noise_multiplier

    gen = fitted(SynthVAE, counts, dp=True, target_epsilon=2.0, epochs=3, batch_size=40)
    guarantee = gen.privacy_guarantee()
    n, q, steps = 240, 40 / 240, 3 * 6  # Opacus takes len(loader) = ⌈n / batch⌉ Poisson steps per epoch
    assert guarantee["delta"] == 1 / n
    sigma = get_noise_multiplier(target_epsilon=2.0, target_delta=1 / n, sample_rate=q, steps=steps, accountant="rdp")
    assert guarantee["noise_multiplier"] == sigma
    accountant = RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    assert guarantee["epsilon"] == accountant.get_epsilon(1 / n)
    assert 0 < guarantee["epsilon"] <= 2.0


@needs_extra("dp")
def test_dp_is_deterministic_and_an_explicit_delta_is_kept(counts):
    a = fitted(CVAE, counts, dp=True, delta=1e-4, seed=2)
    b = fitted(CVAE, counts, dp=True, delta=1e-4, seed=2)
    assert a.privacy_guarantee() == b.privacy_guarantee() and a.privacy_guarantee()["delta"] == 1e-4
    assert np.array_equal(a.sample(60, RunContext(seed=1)), b.sample(60, RunContext(seed=1)))
    assert (a.sample_conditional(40, RunContext(seed=1), [3])[:, 3] >= 1).all()


@needs_extra("dp")
def test_dp_guarantee_survives_the_model_cache(counts, tmp_path):
    gen = fitted(SynthVAE, counts, dp=True)
    gen.save(tmp_path)
    other = SynthVAE.configure("smoke", {**TINY, "dp": True})
    other.load(tmp_path, RunContext(seed=0))
    assert other.privacy_guarantee() == gen.privacy_guarantee()
    assert json.loads((tmp_path / "model.json").read_text())["guarantee"]["epsilon"] == gen.privacy_guarantee()["epsilon"]


@needs_extra("dp")
def test_a_tiny_epsilon_degrades_fidelity():
    """DP-SGD at ε ≈ 0.05 loses the correlation the same network learns without DP."""
    rng = np.random.default_rng(0)
    X = block_cohort(rng)
    n, d = X.shape
    real = EHRMatrix(X, [str(i) for i in range(d)])
    ctx = RunContext(seed=0, representation="binary")
    pcd = {}
    for dp in (False, True):
        gen = SynthVAE.configure("smoke", {"epochs": 10, "batch_size": 64, "dp": dp, "target_epsilon": 0.05})
        gen.fit(X, ctx)
        pcd[dp] = PairwiseCorrelationDifference().compute(real, real, real.with_data(gen.sample(n, ctx)), ctx)["value"]
        assert (gen.privacy_guarantee() is not None) == dp
    assert pcd[True] > 1.2 * pcd[False]


@needs_extra("dp")
def test_dp_moves_a_memorising_models_membership_auroc_to_chance():
    """160 records, a wide VAE trained 600 epochs and decoded by threshold memorises its training
    rows: the nearest-synthetic-row attack finds them (AUROC 0.668, 0.696, 0.695 for seeds 0–2).
    DP-SGD at ε = 1 on the same setting leaves it at chance (0.476, 0.510, 0.490)."""
    from ehrbench_plugins.metrics.privacy import MembershipInference

    rng = np.random.default_rng(0)
    n, d = 160, 40
    X = (rng.random((2 * n, d)) < 0.12).astype(np.float32)
    codes = [str(i) for i in range(d)]
    members, others = EHRMatrix(X[:n], codes), EHRMatrix(X[n:], codes)
    ctx = RunContext(seed=0, representation="binary")
    auroc = {}
    for dp in (False, True):
        gen = SynthVAE.configure("smoke", {"latent_dim": 32, "hidden_dims": (128, 128), "epochs": 600, "batch_size": 16,
                                           "threads": 1, "decode": "threshold", "dp": dp, "target_epsilon": 1.0})
        gen.fit(members.X, ctx)
        synthetic = EHRMatrix(gen.sample(n, ctx), codes)
        auroc[dp] = MembershipInference().compute(members, others, synthetic, ctx)["value"]
    assert auroc[False] > 0.62
    assert abs(auroc[True] - 0.5) < 0.05 and abs(auroc[True] - 0.5) < 0.5 * abs(auroc[False] - 0.5)


# -- CUDA -------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("cls", FAMILY)
@pytest.mark.parametrize("dp", [False, True])
def test_cuda_fit_sample_and_cache(cls, dp, counts, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if dp:
        pytest.importorskip("opacus")
    ctx = RunContext(seed=3, device="cuda")
    gen = cls.configure("smoke", {**TINY, "dp": dp})
    gen.fit(counts, ctx)
    first = gen.sample(500, ctx)
    assert first.shape == (500, counts.shape[1]) and (first >= 0).all() and np.array_equal(first, np.rint(first))
    on_cpu = fitted(cls, counts, seed=3, dp=dp)
    assert gen.privacy_guarantee() == on_cpu.privacy_guarantee()  # ε depends on σ, q and steps alone
    if cls.conditional:
        assert (gen.sample_conditional(200, ctx, [4])[:, 4] >= 1).all()
    gen.save(tmp_path)
    again = cls.configure("smoke", {**TINY, "dp": dp})
    again.load(tmp_path, ctx)
    np.testing.assert_array_equal(first, again.sample(500, ctx))


def test_kl_between_gaussians():
    from ehrbench_plugins.generators.vae.nets import kl_between, kl_to_standard_normal

    mu, log_sigma = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.2, -0.5]])
    assert torch.allclose(kl_between(mu, log_sigma, torch.zeros(1, 2), torch.zeros(1, 2)),
                          kl_to_standard_normal(mu, log_sigma))
    assert kl_between(mu, log_sigma, mu, log_sigma).item() == 0.0
    # one dimension by hand: log(σp/σq) + (σq² + (μq − μp)²) / (2σp²) − ½
    expected = math.log(2.0 / 1.0) + (1.0 + 0.5**2) / (2 * 4.0) - 0.5
    got = kl_between(torch.tensor([[0.5]]), torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.tensor([[math.log(2.0)]]))
    assert abs(got.item() - expected) < 1e-6


@needs_extra("dp")
def test_ghost_clipping_is_per_record_clipping():
    """The DP backward (Opacus' ghost clipping) leaves Σ_i clip(g_i, C) in .grad, as per-record clipping would."""
    import copy

    from torch.utils.data import DataLoader, TensorDataset

    from ehrbench_plugins.generators.vae.nets import VAE, init_weights_
    from ehrbench_plugins.generators.vae.privacy import make_private

    X = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    model = VAE(6, 2, (5,), "tanh", extra_dim=4)
    init_weights_(model, torch.Generator().manual_seed(1))
    reference = copy.deepcopy(model)
    private = make_private(model, torch.optim.SGD(model.parameters(), lr=1.0), DataLoader(TensorDataset(X), batch_size=10),
                           target_epsilon=1.0, delta=1e-3, epochs=1, max_grad_norm=0.5,
                           noise_generator=torch.Generator().manual_seed(2))
    xb, eps, extra = X[:10], torch.randn(10, 2), torch.rand(10, 4)

    def per_record(net, rows):
        eta, kl = net(xb[rows], eps[rows], extra[rows])
        return ((eta - xb[rows]) ** 2).sum(dim=1) + kl

    private.optimizer.zero_grad()
    private.backward(per_record(private.module, slice(None)))
    ghost = [p.grad.clone() for p in model.parameters()]
    summed = [torch.zeros_like(p) for p in reference.parameters()]
    for i in range(10):
        reference.zero_grad()
        per_record(reference, slice(i, i + 1)).sum().backward()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in reference.parameters()))
        for total, p in zip(summed, reference.parameters()):
            total += p.grad * min(1.0, 0.5 / (norm.item() + 1e-6))
    for got, want in zip(ghost, summed):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
