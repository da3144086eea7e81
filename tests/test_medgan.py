"""The medGAN family (medgan, medwgan, medbgan): networks, losses, contract, cache, CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ehrbench.api import RunContext
from ehrbench.errors import ConfigError
from ehrbench.rundir.directory import RunDirectory
from ehrbench_plugins.generators.medgan import models as medgan
from ehrbench_plugins.generators.medgan.models import MedBGAN, MedGAN, MedWGAN
from ehrbench_plugins.generators.medgan.losses import (
    boundary_seeking_generator_loss,
    gradient_penalty,
    minimax_discriminator_loss,
    non_saturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from ehrbench_plugins.generators.likelihood import OutputLikelihood
from ehrbench_plugins.generators.medgan.nets import Decoder, MinibatchDiscriminator, ResidualGenerator
from ehrbench_plugins.generators.torch_threads import torch_threads

FAMILY = [MedGAN, MedWGAN, MedBGAN]
# Tiny networks and one thread: the tests share a small machine.
TINY = {"embedding_dim": 16, "discriminator_dims": (32, 16), "pretrain_epochs": 2, "pretrain_batch_size": 50,
        "epochs": 3, "batch_size": 60, "burn_in_batches": 5, "burn_in_batch_size": 20, "threads": 1}


@pytest.fixture(scope="module")
def counts(correlated_counts) -> np.ndarray:
    return correlated_counts


def fitted(cls, X, seed=0, representation="count", **options):
    gen = cls.configure("smoke", {**TINY, **options})
    gen.fit(X, RunContext(seed=seed, representation=representation))
    return gen


# -- registration and options --------------------------------------------------------------
def test_hook_registers_the_three_with_torch_and_a_cache():
    assert medgan.ehrbench_generators() == [MedGAN, MedWGAN, MedBGAN]
    for cls in FAMILY:
        assert cls.uses_torch and cls.can_save() and cls.description and not cls.calibration


def test_paper_profile_is_the_published_setup():
    for cls in FAMILY:
        o = cls.configure("paper").options
        assert (o.embedding_dim, o.generator_layers, o.discriminator_dims) == (128, 3, (256, 128))
        assert (o.pretrain_epochs, o.pretrain_batch_size, o.epochs, o.batch_size) == (100, 100, 1000, 1000)
        assert (o.discriminator_steps, o.learning_rate, o.weight_decay, o.bn_decay) == (2, 1e-3, 1e-3, 0.99)
        assert o.burn_in_batches == 1000 and o.burn_in_batch_size == 100
    assert MedWGAN.configure("paper").options.gp_weight == 10.0
    assert not hasattr(MedGAN.configure("paper").options, "gp_weight")


def test_quick_and_smoke_keep_the_networks():
    for profile in ("quick", "smoke"):
        o = MedGAN.configure(profile).options
        assert (o.embedding_dim, o.generator_layers, o.discriminator_dims) == (128, 3, (256, 128))


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (MedGAN, {"batch_size": 1}, "batch_size must be at least 2"),
        (MedGAN, {"epochs": 0}, "epochs must be at least 1"),
        (MedGAN, {"learning_rate": 0}, "learning_rate must be positive"),
        (MedGAN, {"bn_decay": 1.0}, "bn_decay must be in"),
        (MedGAN, {"count_reduction": "median"}, "is not one of"),
        (MedGAN, {"count_loss": "gaussian"}, "is not one of"),
        (MedGAN, {"decode": "argmax"}, "is not one of"),
        (MedWGAN, {"gp_interpolation": "cell"}, "is not one of"),
        (MedGAN, {"gp_weight": 5}, "unknown option 'gp_weight'"),
        (MedWGAN, {"gp_weight": -1}, "gp_weight must be 0 or more"),
        (MedBGAN, {"discriminator_dims": []}, "discriminator_dims must be positive"),
    ],
)
def test_bad_options_are_config_errors(cls, options, message):
    with pytest.raises(ConfigError, match=message):
        cls.configure("quick", options)


# -- networks --------------------------------------------------------------------------------
def test_network_shapes():
    gen, dec = ResidualGenerator(8, 3, binary=False, bn_decay=0.99), Decoder(8, 5, OutputLikelihood(binary=True))
    disc = MinibatchDiscriminator(5, (7, 6))
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    x = dec(gen(z))
    assert gen(z).shape == (4, 8) and x.shape == (4, 5) and disc(x).shape == (4,)
    assert ((x > 0) & (x < 1)).all()
    assert all(linear.bias is None for linear in gen.linears)


def test_generator_layers_have_shortcuts():
    """With zero weights each block adds act(bn(0)) = act(0) = 0, so the input passes through."""
    for binary in (False, True):
        gen = ResidualGenerator(6, 3, binary=binary, bn_decay=0.99)
        with torch.no_grad():
            for linear in gen.linears:
                linear.weight.zero_()
        z = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(gen(z), z)


def test_discriminator_sees_each_record_beside_the_batch_mean():
    disc = MinibatchDiscriminator(3, (4,))
    x = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    concatenated = torch.cat([x, x.mean(0, keepdim=True).expand_as(x)], dim=1)
    h = torch.relu(disc.first(concatenated))
    torch.testing.assert_close(disc(x), disc.out(h).squeeze(1))


# -- losses on hand-computed values ------------------------------------------------------------
def test_minimax_and_non_saturating_losses():
    real, fake = torch.tensor([0.0, math.log(3)]), torch.tensor([0.0])  # D = ½, ¾ and ½
    expected_d = -(math.log(0.5) + math.log(0.75)) / 2 - math.log(1 - 0.5)
    assert minimax_discriminator_loss(real, fake).item() == pytest.approx(expected_d)
    assert non_saturating_generator_loss(torch.tensor([math.log(3)])).item() == pytest.approx(-math.log(0.75))


def test_boundary_seeking_generator_loss():
    logits = torch.tensor([math.log(3), 0.0, -2.0])
    d = torch.sigmoid(logits).double()
    expected = 0.5 * ((torch.log(d) - torch.log(1 - d)) ** 2).mean().item()
    assert expected == pytest.approx(0.5 * (math.log(3) ** 2 + 0 + 4) / 3)
    assert boundary_seeking_generator_loss(logits).item() == pytest.approx(expected, rel=1e-6)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(1.0 - 2.0)
    assert wasserstein_generator_loss(fake).item() == pytest.approx(-1.0)


def test_gradient_penalty_of_a_linear_critic():
    """c(x_i) = w·x_i + v·mean(x): ∂Σc/∂x_i = w + v = (3, 4), norm 5, penalty (5 − 1)² = 16."""
    w, v = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])

    def critic(x):
        return x @ w + x.mean(0) @ v

    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    assert gradient_penalty(critic, real, fake, torch.rand(4, 1)).item() == pytest.approx(16.0)


def test_gradient_penalty_interpolates_per_record():
    """c(x) = ½‖x‖²: the gradient is x̂ = ε·real + (1 − ε)·fake itself."""

    def critic(x):
        return 0.5 * (x**2).sum(dim=1)

    real, fake = torch.tensor([[2.0, 0.0], [0.0, 4.0]]), torch.zeros(2, 2)
    epsilon = torch.tensor([[0.5], [0.25]])  # x̂ = (1, 0) and (0, 1): both norms are 1
    assert gradient_penalty(critic, real, fake, epsilon).item() == pytest.approx(0.0)
    epsilon = torch.tensor([[0.25], [0.75]])  # norms 0.5 and 3: ((−0.5)² + 2²) / 2
    assert gradient_penalty(critic, real, fake, epsilon).item() == pytest.approx((0.25 + 4.0) / 2)


def test_gradient_penalty_trains_the_critic():
    critic = torch.nn.Linear(2, 1)
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), torch.ones(3, 2), torch.zeros(3, 2), torch.rand(3, 1))
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


# -- the generator contract --------------------------------------------------------------------
@pytest.mark.parametrize("cls", FAMILY)
def test_counts_are_non_negative_integers(cls, counts):
    out = fitted(cls, counts).sample(333, RunContext(seed=1))
    assert out.shape == (333, counts.shape[1]) and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all() and (out == np.round(out)).all()
    log = fitted(cls, counts).training_log()
    assert len(log["autoencoder_loss"]) == 2
    assert len(log["discriminator_loss"]) == 3 and len(log["generator_loss"]) == 3
    assert ("gradient_penalty" in log) == (cls is MedWGAN)


@pytest.mark.parametrize("cls", FAMILY)
def test_binary_samples_are_zero_or_one(cls, counts):
    binary = (counts > 0).astype(np.float32)
    out = fitted(cls, binary, representation="binary").sample(200, RunContext(seed=1, representation="binary"))
    assert out.shape == (200, binary.shape[1]) and set(np.unique(out)) <= {0.0, 1.0}


def test_binary_representation_rejects_counts(counts):
    with pytest.raises(ValueError, match="values above 1"):
        fitted(MedGAN, counts, representation="binary")


@pytest.mark.parametrize("bad", [np.zeros((0, 4), np.float32), np.zeros(5, np.float32), -np.ones((4, 3), np.float32)])
def test_bad_training_matrix(bad):
    with pytest.raises(ValueError, match="medgan"):
        MedGAN.configure("smoke", TINY).fit(bad, RunContext(seed=0))


def test_zero_rows_and_sample_before_fit(counts):
    assert fitted(MedBGAN, counts).sample(0, RunContext(seed=0)).shape == (0, counts.shape[1])
    with pytest.raises(RuntimeError, match="before fit"):
        MedGAN.configure("smoke").sample(3, RunContext(seed=0))


@pytest.mark.parametrize("cls", FAMILY)
def test_deterministic_by_seed(cls, counts):
    a, b, c = fitted(cls, counts, seed=4), fitted(cls, counts, seed=4), fitted(cls, counts, seed=5)
    assert a.training_log() == b.training_log() != c.training_log()
    first = a.sample(300, RunContext(seed=4))
    np.testing.assert_array_equal(first, b.sample(300, RunContext(seed=4)))
    np.testing.assert_array_equal(first, a.sample(300, RunContext(seed=4)))  # sampling leaves the model as it was
    assert not np.array_equal(a.sample(300, RunContext(seed=6)), first)


def test_the_three_differ_only_by_loss(counts):
    """Same seed, same networks and data order: the first autoencoder epoch is identical."""
    logs = [fitted(cls, counts, seed=2).training_log() for cls in FAMILY]
    assert logs[0]["autoencoder_loss"] == logs[1]["autoencoder_loss"] == logs[2]["autoencoder_loss"]
    assert logs[0]["generator_loss"] != logs[2]["generator_loss"]
    params = {cls.name: fitted(cls, counts).parameter_count() for cls in FAMILY}
    d, e = counts.shape[1], TINY["embedding_dim"]
    expected = (d * e + e) + (e * d + d) + 3 * (e * e + 2 * e) + (2 * d * 32 + 32) + (32 * 16 + 16) + (16 + 1)
    assert params == {"medgan": expected, "medwgan": expected, "medbgan": expected}


def test_threads_and_the_global_rng_are_left_alone(counts, tmp_path):
    before, state = torch.get_num_threads(), torch.random.get_rng_state()
    gen = fitted(MedGAN, counts, threads=1)
    gen.sample(10, RunContext(seed=0))
    gen.save(tmp_path)
    MedGAN.configure("smoke", TINY).load(tmp_path, RunContext(seed=0))
    assert torch.get_num_threads() == before
    assert torch.equal(torch.random.get_rng_state(), state)


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with torch_threads(0) as kept:
        assert kept == before == torch.get_num_threads()
    with pytest.raises(KeyError):
        with torch_threads(before + 1) as used:
            assert used == torch.get_num_threads() == before + 1
            raise KeyError
    assert torch.get_num_threads() == before


def test_divergence_is_a_clear_error(counts):
    with pytest.raises(RuntimeError, match="training diverged: .* epoch 1"):
        fitted(MedWGAN, np.full_like(counts, 3e38))


# -- the model cache ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", FAMILY)
def test_save_and_load_round_trip(cls, counts, tmp_path):
    gen = fitted(cls, counts, seed=7)
    gen.save(tmp_path)
    again = cls.configure("smoke", TINY)
    again.load(tmp_path, RunContext(seed=7))
    np.testing.assert_array_equal(gen.sample(250, RunContext(seed=7)), again.sample(250, RunContext(seed=7)))
    assert again.training_log() == gen.training_log()
    assert again.parameter_count() == gen.parameter_count()


def test_load_rejects_another_model(counts, tmp_path):
    fitted(MedGAN, counts).save(tmp_path)
    with pytest.raises(ValueError, match="not a saved medwgan model"):
        MedWGAN.configure("smoke", TINY).load(tmp_path, RunContext(seed=0))
    with pytest.raises(ValueError, match="was built with"):
        MedGAN.configure("smoke", {**TINY, "embedding_dim": 8}).load(tmp_path, RunContext(seed=0))


# -- through the CLI ------------------------------------------------------------------------------
def write_config(tmp_path: Path, extra: str = "") -> Path:
    options = "\n".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in TINY.items())
    tables = "".join(f"[generator_options.{g}]\n{options}\n{extra}\n" for g in ("medgan", "medwgan", "medbgan"))
    path = tmp_path / "medgan.toml"
    path.write_text(
        'dataset = "simulated"\nprofile = "smoke"\nrepeats = 1\nmetrics = ["dimension_wise_probability"]\n'
        f"[dataset_options]\npatients = 300\ncodes = 30\n{tables}"
    )
    return path


@pytest.fixture(scope="module")
def family_run(tmp_path_factory) -> tuple[Path, Path]:
    """One `ehrbench run` of the three on a tiny cohort (shared: a run costs seconds)."""
    from ehrbench.cli import main

    tmp = tmp_path_factory.mktemp("family")
    config, out = write_config(tmp), tmp / "run"
    try:
        main(["run", str(config), "--generators", "medgan,medwgan,medbgan", "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return config, out


def test_cli_runs_the_family_with_logs_and_cache(family_run):
    _, out = family_run
    records = RunDirectory(out).records()
    jobs = {r["generator"]: r for r in records if r["type"] == "job"}
    assert set(jobs) == {"medgan", "medwgan", "medbgan"} and all(j["status"] == "ok" for j in jobs.values())
    training = {r["generator"]: r["curves"] for r in records if r["type"] == "training"}
    assert len(training["medwgan"]["gradient_penalty"]) == TINY["epochs"]
    assert len(training["medgan"]["autoencoder_loss"]) == TINY["pretrain_epochs"]
    cost = {r["generator"]: r for r in records if r["type"] == "cost"}
    assert all(c["parameters"] > 0 and c["samples_saved"] for c in cost.values())
    assert all((out / "models" / g / "repeat-0" / "COMPLETE").is_file() for g in jobs)
    # run.json and the report carry every generator's resolved options, the likelihood's included.
    resolved = json.loads((out / "run.json").read_text())["generator_options"]
    assert resolved["medgan"]["decode"] == "sample" and resolved["medgan"]["embedding_dim"] == TINY["embedding_dim"]
    assert resolved["medwgan"]["gp_interpolation"] == "batch"
    assert "options of medbgan" in (out / "report.html").read_text()


def test_cli_flags_a_collapsed_run(cli, family_run, tmp_path):
    """A cached model whose decoder only emits zeros is loaded on resume: flagged, still scored."""
    config, original = family_run
    out = tmp_path / "run"
    shutil.copytree(original, out)
    networks = out / "models" / "medgan" / "repeat-0" / "networks.pt"
    state = torch.load(networks, weights_only=True)
    state["decoder"]["linear.bias"].fill_(-1e6)
    torch.save(state, networks)
    (out / "results.jsonl").unlink()
    shutil.rmtree(out / "samples")
    result = cli("run", config, "--generators", "medgan,medwgan,medbgan", "--out", out, "--resume")
    assert result.code == 0, result.err
    records = RunDirectory(out).records()
    cost = {r["generator"]: r for r in records if r["type"] == "cost"}
    job = {r["generator"]: r for r in records if r["type"] == "job"}
    assert all(c["model_loaded"] for c in cost.values()) and job["medgan"]["status"] == "ok"
    assert any(w.startswith("empty records") for w in job["medgan"]["warnings"])
    assert not any(w.startswith("empty records") for w in job["medwgan"]["warnings"])
    assert any(r["type"] == "metric" for r in records)


# -- CUDA ---------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("cls", FAMILY)
def test_cuda_fit_and_sample(cls, counts, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    ctx = RunContext(seed=3, device="cuda")
    gen = cls.configure("smoke", TINY)
    gen.fit(counts, ctx)
    first = gen.sample(500, ctx)
    assert first.shape == (500, counts.shape[1]) and (first >= 0).all() and (first == np.round(first)).all()
    gen.save(tmp_path)
    again = cls.configure("smoke", TINY)
    again.load(tmp_path, ctx)
    np.testing.assert_array_equal(first, again.sample(500, ctx))
