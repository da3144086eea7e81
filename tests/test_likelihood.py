"""The shared output likelihood (plugins/generators/likelihood.py): losses, links, bias, decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ehrbench.errors import ConfigError
from ehrbench_plugins.generators.diffusion.autoencoder import Autoencoder
from ehrbench_plugins.generators.likelihood import (
    OutputLikelihood,
    decode_records,
    marginal_bias,
)
from ehrbench_plugins.generators.medgan.models import MedGAN
from ehrbench_plugins.generators.diffusion.raw_diffusion import RawDiffusion
from ehrbench_plugins.generators.diffusion.scoehr import ScoEHR


def test_losses_on_hand_computed_values():
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Logit 0 is probability ½: every cell costs ln 2, summed over 2 codes, averaged over records.
    assert OutputLikelihood(True).loss(torch.zeros(2, 2), target).item() == pytest.approx(2 * math.log(2))
    counts, eta = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, -1.0]])
    mse = OutputLikelihood(False, "mse")
    assert mse.loss(eta, counts).item() == pytest.approx(1.0 + 4.0)  # ReLU(η) = 0 for both codes
    assert mse.loss(eta, counts, "mean").item() == pytest.approx(2.5)
    # Poisson NLL without the log x! constant: exp(η) − x·η = (1 − 0) + (e⁻¹ + 2).
    poisson = OutputLikelihood(False, "poisson")
    assert poisson.loss(eta, counts).item() == pytest.approx(1.0 + math.exp(-1) + 2.0)
    assert poisson.loss(eta, counts, "mean").item() == pytest.approx((1.0 + math.exp(-1) + 2.0) / 2)


def test_links_give_the_mean():
    eta = torch.tensor([[-1.0, 0.0, 2.0]])
    torch.testing.assert_close(OutputLikelihood(True).mean(eta), torch.sigmoid(eta))
    torch.testing.assert_close(OutputLikelihood(False, "mse").mean(eta), torch.tensor([[0.0, 0.0, 2.0]]))
    torch.testing.assert_close(OutputLikelihood(False, "poisson").mean(eta), eta.exp())
    assert torch.isfinite(OutputLikelihood(False, "poisson").mean(torch.tensor([1e4]))).all()


def test_marginal_bias_is_the_inverse_link_of_the_marginals():
    X = np.array([[0, 2, 0], [1, 0, 0], [3, 0, 0], [0, 0, 0]], dtype=np.float32)
    p = np.array([0.5, 0.25, 0.0])
    floor = 0.5 / 4  # a code absent from the training rows counts as half a record
    expected_logit = np.log(np.array([0.5, 0.25, floor]) / (1 - np.array([0.5, 0.25, floor])))
    np.testing.assert_allclose(marginal_bias(X, True, "mse"), expected_logit, rtol=1e-6)
    np.testing.assert_allclose(marginal_bias(X, False, "poisson"), np.log([1.0, 0.5, floor]), rtol=1e-6)
    np.testing.assert_allclose(marginal_bias(X, False, "mse"), [1.0, 0.5, 0.0])
    assert ((X > 0).mean(axis=0) == p).all()


@pytest.mark.parametrize(("binary", "count_loss"), [(True, "mse"), (False, "poisson"), (False, "mse")])
def test_a_marginal_decoder_starts_at_the_marginals(binary, count_loss):
    """decoder_bias = marginal: at a zero latent the decoder's mean is each code's training marginal."""
    rng = np.random.default_rng(0)
    X = (rng.random((400, 6)) < [0.5, 0.2, 0.05, 0.01, 0.3, 0.1]) * rng.integers(1, 4, (400, 6))
    X = (X > 0 if binary else X).astype(np.float32)
    ae = Autoencoder(6, 4, OutputLikelihood(binary, count_loss))
    ae.init_decoder_bias(X)
    mean = ae.decode(torch.zeros(1, 4)).detach().numpy()[0]
    np.testing.assert_allclose(mean, (X > 0).mean(0) if binary else X.mean(0), rtol=1e-5)


def test_threshold_decoding_is_exact():
    mean = np.array([[0.49, 0.51, 1.0], [0.0, 0.5, 2.6]])
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(decode_records(mean[:, :2], True, "threshold", rng), [[0, 1], [0, 0]])
    np.testing.assert_array_equal(decode_records(mean, False, "threshold", rng), [[0, 1, 1], [0, 0, 3]])


def test_sampled_records_keep_the_marginals():
    """Bernoulli / Poisson draws: a code with p = 0.03 is produced at its rate, where thresholding never
    produces it. 200,000 draws: the standard error of the 0.03 rate is 0.0004, so 0.003 is > 7 σ."""
    rng = np.random.default_rng(5)
    p = np.tile([[0.03, 0.4, 0.97]], (200_000, 1))
    drawn = decode_records(p, True, "sample", rng)
    assert set(np.unique(drawn)) == {0.0, 1.0} and drawn.dtype == np.float32
    np.testing.assert_allclose(drawn.mean(axis=0), [0.03, 0.4, 0.97], atol=0.003)
    counts = decode_records(np.tile([[0.2, 3.0]], (200_000, 1)), False, "sample", rng)
    np.testing.assert_allclose(counts.mean(axis=0), [0.2, 3.0], atol=0.02)
    assert (counts == np.round(counts)).all() and (counts >= 0).all()
    assert decode_records(p[:10], True, "threshold", rng)[:, 0].sum() == 0
    again = decode_records(p[:1000], True, "sample", np.random.default_rng(9))
    np.testing.assert_array_equal(again, decode_records(p[:1000], True, "sample", np.random.default_rng(9)))


@pytest.mark.parametrize(
    ("cls", "options"),
    [(ScoEHR, {"decode": "argmax"}), (ScoEHR, {"count_loss": "gaussian"}), (MedGAN, {"decoder_bias": "zero"}),
     (RawDiffusion, {"decode": "mode"}), (RawDiffusion, {"count_scaling": "linear"}),
     (RawDiffusion, {"gaussian_prior": True, "marginal_prior": True})],
)
def test_bad_likelihood_options_are_config_errors(cls, options):
    with pytest.raises(ConfigError):
        cls.configure("quick", options)


def test_every_autoencoder_generator_takes_the_same_options():
    """One component: scoehr and the medGAN family expose the same three options, raw-diffusion decode."""
    for cls in (ScoEHR, MedGAN):
        o = cls.configure("paper").options
        assert (o.decode, o.count_loss, o.decoder_bias) == ("threshold", "mse", "constant")
        q = cls.configure("quick").options
        assert (q.decode, q.count_loss, q.decoder_bias) == ("sample", "poisson", "marginal")
    assert RawDiffusion.configure("paper").options.decode == "threshold"
