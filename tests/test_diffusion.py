"""The shared diffusion machinery: VP-SDE formulas, loss, schedule, UNet, samplers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ehrbench_plugins.generators.diffusion.sampling import ode_times, sample_states
from ehrbench_plugins.generators.diffusion.score import GaussianPrior, MarginalPrior, Score
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.diffusion.training import dsm_loss, scorenet_lr_factor, stratified_times
from ehrbench_plugins.generators.diffusion.unet import UNet, UNetConfig, parameter_count

SDE = VPSDE()


@pytest.mark.parametrize(
    ("t", "mean", "variance"),
    [  # hand-computed: m = exp(−¼t²·19.9 − ½·0.1·t), σ² = 1 − exp(−½t²·19.9 − 0.1·t)
        (0.5, 0.2811828807967524, 0.9209361875468394),
        (1.0, 0.006571586494929619, 0.9999568142509396),
        (1e-3, 0.9999450265110976, 0.00010994395572028193),
    ],
)
def test_vp_sde_mean_and_variance_match_the_closed_form(t, mean, variance):
    tt = torch.tensor([t], dtype=torch.float64)
    assert SDE.mean_factor(tt).item() == pytest.approx(mean, rel=1e-12)
    assert SDE.variance(tt).item() == pytest.approx(variance, rel=1e-9)
    assert SDE.std(tt).item() == pytest.approx(math.sqrt(variance), rel=1e-9)
    assert SDE.beta(tt).item() == pytest.approx(0.1 + 19.9 * t)
    assert SDE.diffusion(tt).item() == pytest.approx(math.sqrt(0.1 + 19.9 * t))


def test_perturbation_is_mean_times_data_plus_std_times_noise():
    x0, noise = torch.ones(2, 4), torch.full((2, 4), 2.0)
    t = torch.tensor([0.5, 1.0])
    xt = SDE.perturb(x0, t, noise)
    assert xt[0, 0].item() == pytest.approx(0.2811828807967524 + 2 * math.sqrt(0.9209361875468394), rel=1e-6)
    assert xt[1, 3].item() == pytest.approx(0.006571586494929619 + 2 * math.sqrt(0.9999568142509396), rel=1e-6)


def test_times_are_stratified_over_the_training_interval_and_shuffled():
    t = stratified_times(1000, 1e-3, 1.0, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert t.min() >= 1e-3 and t.max() <= 1.0
    strata = torch.floor((t - 1e-3) / (1 - 1e-3) * 1000).long()
    assert sorted(strata.tolist()) == list(range(1000))  # exactly one time per stratum
    assert not torch.equal(strata, torch.arange(1000))  # and not in order


def test_dsm_loss_of_a_zero_score_is_the_squared_noise_norm():
    class Zero(nn.Module):
        def forward(self, x, t):
            return torch.zeros_like(x)

    x0 = torch.randn(4096, 9, generator=torch.Generator().manual_seed(1))
    loss = dsm_loss(Zero(), SDE, x0, torch.Generator().manual_seed(2))
    assert loss.item() == pytest.approx(9.0, rel=0.05)  # E‖ε‖² = d


def test_learning_rate_is_held_for_20_epochs_then_decays_like_the_original():
    factors = [scorenet_lr_factor(e, 50) for e in range(50)]
    assert factors[:21] == [1.0] * 21
    assert factors[21] == pytest.approx(1 - 1 / 40) and factors[49] == pytest.approx(1 - 29 / 40)
    assert scorenet_lr_factor(5, 8, hold_epochs=0) == 0.0  # never negative


def test_paper_unet_has_24_5_million_parameters_and_starts_near_zero():
    net = UNet(UNetConfig(144))
    assert parameter_count(net) == 24_515_585
    out = net(torch.randn(3, 144), torch.rand(3))
    assert out.shape == (3, 144) and out.abs().max() < 1e-3


@pytest.mark.parametrize("size", [64, 144, 256, 1296])
def test_reduced_unet_keeps_the_flat_shape_at_every_supported_size(size):
    net = UNet(UNetConfig(size, channels=8, multipliers=(1, 2, 2), res_blocks=1, groups=4))
    assert net(torch.randn(2, size), torch.rand(2)).shape == (2, size)


def test_patches_fold_pixels_into_channels():
    net = UNet(UNetConfig(1296, channels=8, multipliers=(1, 2), res_blocks=1, groups=4, patch_size=6))
    assert net.conv_in.in_channels == 36
    assert net(torch.randn(2, 1296), torch.rand(2)).shape == (2, 1296)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (UNetConfig(143), "not a square"),
        (UNetConfig(100), "divisible by"),  # H = 10 is not a multiple of 4
        (UNetConfig(144, channels=20), "GroupNorm"),
        (UNetConfig(144, dropout=1.5), "dropout"),
    ],
)
def test_impossible_networks_are_refused_with_the_reason(config, message):
    with pytest.raises(ValueError, match=message):
        UNet(config)


class ExactGaussianScore(nn.Module):
    """The true score of x_t when x_0 ~ N(mu, sd² I): −(x − m mu) / (m² sd² + σ²)."""

    def __init__(self, mu: float, sd: float) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the sampler a device to read
        self.mu, self.sd = mu, sd

    def forward(self, x, t):
        t = t.reshape(-1, 1)
        m = SDE.mean_factor(t)
        return -(x - m * self.mu) / (m**2 * self.sd**2 + SDE.variance(t))


@pytest.mark.parametrize(("sampler", "steps"), [("euler-maruyama", 200), ("ode", 20)])
def test_samplers_recover_a_gaussian_from_its_exact_score(sampler, steps):
    states = list(sample_states(ExactGaussianScore(0.5, 0.3), SDE, 3000, 8, seed=0, sampler=sampler,
                                steps=steps, batch_size=1000))
    x = torch.cat(states)
    assert [s.shape for s in states] == [(1000, 8)] * 3
    assert x.mean().item() == pytest.approx(0.5, abs=0.02)
    assert x.std().item() == pytest.approx(0.3, abs=0.03)


class ZeroNet(nn.Module):
    """A network that has learned nothing (what the UNet's zero-initialised output gives)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x, t):
        return torch.zeros_like(x)


def test_gaussian_prior_is_the_exact_score_of_a_gaussian():
    prior = GaussianPrior(SDE, 8)
    prior.mean.fill_(0.5)
    prior.var.fill_(0.3**2)
    x, t = torch.randn(64, 8), torch.rand(64) * 0.99 + 0.01
    torch.testing.assert_close(prior(x, t), ExactGaussianScore(0.5, 0.3)(x, t))


@pytest.mark.parametrize(("sampler", "steps"), [("euler-maruyama", 200), ("ode", 20)])
def test_an_untrained_network_with_the_prior_samples_each_dimensions_gaussian(sampler, steps):
    means = torch.tensor([-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, -2.0])
    sds = torch.tensor([0.0, 0.05, 0.2, 1.0, 0.5, 0.3, 0.1, 0.8])  # a constant cell, as absent codes are
    data = means + sds * torch.randn(20000, 8, generator=torch.Generator().manual_seed(0))
    prior = GaussianPrior(SDE, 8).fit(data)
    score = Score(ZeroNet(), SDE, scale_by_sigma=True, prior=prior)
    x = torch.cat(list(sample_states(score, SDE, 4000, 8, seed=1, sampler=sampler, steps=steps, batch_size=2000)))
    torch.testing.assert_close(x.mean(dim=0), means, atol=0.05, rtol=0.0)
    torch.testing.assert_close(x.std(dim=0), sds, atol=0.05, rtol=0.1)


def _mixture_log_density(x, t, values, weights):
    """log Σ_k w_k N(x; m(t) a_k, σ(t)²) per cell, summed over cells (the diffused marginals)."""
    m, var = SDE.mean_factor(t).reshape(-1, 1, 1), SDE.variance(t).reshape(-1, 1, 1)
    log_n = -((x.unsqueeze(-1) - m * values.T) ** 2) / (2 * var) - 0.5 * torch.log(2 * math.pi * var)
    return torch.logsumexp(log_n + weights.T.log(), dim=-1).sum()


@pytest.mark.parametrize("atoms", [2, 3])
def test_marginal_prior_is_the_exact_score_of_the_empirical_marginals(atoms):
    """Against autograd of the mixture's log density, in float64, for two and for three atoms."""
    gen = torch.Generator().manual_seed(0)
    levels = torch.tensor([-1.0, 1.0, 1.6], dtype=torch.float64)[:atoms]
    data = levels[torch.multinomial(torch.tensor([0.7, 0.2, 0.1][:atoms]), 5 * 400, True, generator=gen)].reshape(400, 5)
    data[:, 4] = -1.0  # a constant cell, as a code never seen is
    prior = MarginalPrior(SDE, 5, atoms=4).double().fit(data)
    assert prior.values.shape == (atoms, 5)  # only as many atoms as some cell uses
    weights = prior.log_weights.exp()
    x = torch.randn(16, 5, dtype=torch.float64, generator=gen).requires_grad_(True)
    t = torch.rand(16, dtype=torch.float64, generator=gen) * 0.98 + 0.02
    (expected,) = torch.autograd.grad(_mixture_log_density(x, t, prior.values, weights), x)
    torch.testing.assert_close(prior(x.detach(), t), expected, rtol=1e-9, atol=1e-9)
    freq = [(data[:, 0] == v).double().mean() for v in prior.values[:, 0]]
    torch.testing.assert_close(weights[:, 0], torch.stack(freq))


def test_marginal_prior_alone_samples_each_cells_marginal_and_reloads():
    """A network that outputs zero plus the prior is the independent-marginals sampler: presence rates
    within 0.01 of the data's over 20,000 draws (standard error ≤ 0.0035) with 5 ODE steps."""
    rates = torch.tensor([0.0, 0.01, 0.3, 0.5])
    data = (torch.rand(5000, 4, generator=torch.Generator().manual_seed(0)) < rates).float() * 2 - 1
    prior = MarginalPrior(SDE, 4).fit(data)
    score = Score(ZeroNet(), SDE, scale_by_sigma=True, prior=prior)
    x = torch.cat(list(sample_states(score, SDE, 20000, 4, seed=1, sampler="ode", steps=5, batch_size=20000)))
    torch.testing.assert_close((x > 0).float().mean(dim=0), (data > 0).float().mean(dim=0), atol=0.01, rtol=0)
    again = MarginalPrior(SDE, 4)
    again.load_state_dict(prior.state_dict())
    torch.testing.assert_close(again.values, prior.values)


def test_sampling_is_determined_by_the_seed():
    net = ExactGaussianScore(0.0, 1.0)

    def draw(seed):
        return torch.cat(list(sample_states(net, SDE, 50, 4, seed=seed, steps=10, batch_size=20)))

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))


def test_ode_grid_runs_from_T_to_t_min_denser_at_the_end():
    grid = ode_times(SDE, 10, 2.0)
    assert grid[0] == pytest.approx(1.0) and grid[-1] == pytest.approx(1e-3)
    steps = -torch.diff(torch.tensor(grid))
    assert (steps[1:] < steps[:-1]).all()


def test_unknown_sampler_and_zero_steps_are_errors():
    with pytest.raises(ValueError, match="unknown sampler"):
        next(sample_states(ExactGaussianScore(0, 1), SDE, 4, 4, 0, sampler="heun"))
    with pytest.raises(ValueError, match="at least 1"):
        next(sample_states(ExactGaussianScore(0, 1), SDE, 4, 4, 0, steps=0))


@pytest.mark.gpu
def test_sampling_runs_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    net = UNet(UNetConfig(64, channels=32, multipliers=(1, 2), res_blocks=1, groups=8)).cuda()
    states = list(sample_states(net, SDE, 300, 64, seed=0, steps=5))
    assert states[0].device.type == "cuda" and sum(s.shape[0] for s in states) == 300
