"""The GPU execution path of the diffusion generators, checked on the CPU.

The direct Euler–Maruyama loop against torchsde (same increments, same trajectory), the CUDA
graph's uncaptured stepping, bf16 autocast against float32, and the TF32 / determinism switches.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torchsde

from ehrbench.seeding import derive_seed
from ehrbench_plugins.generators.diffusion.execution import numerics
from ehrbench_plugins.generators.diffusion.options import ExecutionOptions, ScoreOptions
from ehrbench_plugins.generators.diffusion.sampling import (
    EulerMaruyamaSteps,
    ReverseSDE,
    _euler_maruyama,
    em_span_and_step,
    em_time_grid,
    gaussian_increments,
    sample_states,
)
from ehrbench_plugins.generators.diffusion.score import GaussianPrior, Score
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.diffusion.training import dsm_loss
from ehrbench_plugins.generators.diffusion.unet import UNet, UNetConfig

SDE = VPSDE()


class Tape(torchsde.BaseBrownian):
    """Pre-drawn increments ΔW_k handed out for [s_k, s_{k+1}]; every query must hit the grid exactly."""

    def __init__(self, grid: np.ndarray, increments: torch.Tensor) -> None:
        self.grid, self.increments, self.queries = grid, increments, []

    def __call__(self, ta, tb=None, return_U=False, return_A=False):
        k = int(np.flatnonzero(self.grid == np.asarray(float(ta), dtype=self.grid.dtype))[0])
        assert float(tb) == float(self.grid[k + 1]), f"torchsde asked for [{ta}, {tb}], not a grid step"
        self.queries.append(k)
        return self.increments[k]

    def __repr__(self) -> str:
        return "Tape()"

    dtype = property(lambda self: self.increments.dtype)
    device = property(lambda self: self.increments.device)
    shape = property(lambda self: self.increments.shape[1:])
    levy_area_approximation = property(lambda self: "none")


class Tangle(torch.nn.Module):
    """A nonlinear score network of any dtype (the UNet's time embedding is float32 only)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.w = torch.nn.Linear(size + 1, size)

    def forward(self, x, t):
        return torch.tanh(self.w(torch.cat([x, t.reshape(-1, 1).to(x.dtype)], dim=1))) * 3


def _busy_score(size: int, dtype: torch.dtype = torch.float32, prior: bool = True) -> Score:
    """A small network whose weights are all perturbed, so its score is far from zero, plus a Gaussian prior.

    The UNet in float32; a small nonlinear network in float64.
    """
    with torch.random.fork_rng(devices=[]):  # initialisers draw from the global RNG: seed them, then restore it
        torch.manual_seed(5)
        if dtype == torch.float32:
            net = UNet(UNetConfig(size, channels=8, multipliers=(1, 2), res_blocks=1, groups=4))
        else:
            net = Tangle(size)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    gaussian = GaussianPrior(SDE, size) if prior else None
    if gaussian is not None:
        gaussian.fit(torch.randn(500, size, generator=gen) * 0.3 + 0.2)
    return Score(net, SDE, scale_by_sigma=True, prior=gaussian).to(dtype).eval()


def _torchsde_with(score: Score, x: torch.Tensor, steps: int, bm: torchsde.BaseBrownian) -> torch.Tensor:
    span, dt = em_span_and_step(SDE, steps, x.dtype)
    ts = torch.tensor([0.0, span], dtype=x.dtype)
    return torchsde.sdeint(ReverseSDE(score, SDE), x, ts, bm=bm, method="euler", dt=dt)[-1]


@pytest.mark.parametrize("steps", [1, 7, 50, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_time_grid_is_the_one_torchsde_visits(steps, dtype):
    grid = em_time_grid(SDE, steps, dtype)
    tape = Tape(grid, torch.zeros(len(grid) - 1, 2, 3, dtype=dtype))

    class Still(torch.nn.Module):
        def forward(self, x, t):
            return torch.zeros_like(x)

    _torchsde_with(Still(), torch.zeros(2, 3, dtype=dtype), steps, tape)
    assert tape.queries == list(range(len(grid) - 1))  # every grid step once, in order, and nothing else
    assert grid[0] == 0 and grid[-1] == np.asarray(SDE.T - SDE.t_min, dtype=grid.dtype)
    # float32 round-off in torchsde's running time adds one tiny last step at 1000 steps: kept, as it does
    extra = len(grid) - 1 - steps
    assert extra == (1 if (dtype, steps) == (torch.float32, 1000) else 0)
    assert extra == 0 or np.diff(grid)[-1] < 0.02 * np.diff(grid)[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("capture", [False, True])
def test_direct_loop_gives_torchsdes_trajectory_bit_for_bit_for_the_same_increments(dtype, capture):
    """Exact equality (torch.equal): the same operations in the same order on the same numbers.

    ``capture`` asks for a CUDA graph; on the CPU the same buffers are stepped uncaptured.
    """
    steps, rows, size = 60, 12, 16
    score = _busy_score(size, dtype)
    grid = em_time_grid(SDE, steps, dtype)
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(rows, size, generator=gen, dtype=dtype)
    dw = torch.randn(steps, rows, size, generator=gen, dtype=dtype) * torch.from_numpy(np.diff(grid)).sqrt()[:, None, None]
    with torch.no_grad():
        reference = _torchsde_with(score, x0, steps, Tape(grid, dw))
        direct = EulerMaruyamaSteps(ReverseSDE(score, SDE), x0, torch.from_numpy(grid),
                                    lambda k, out: out.copy_(dw[k]), capture=capture and torch.cuda.is_available()).run()
    assert reference.abs().max() > 0.1 and not torch.equal(reference, x0)  # the trajectory went somewhere
    assert torch.equal(direct, reference)


def test_direct_loop_fed_by_torchsdes_own_brownian_interval_matches_sdeint():
    steps, rows, size = 40, 8, 16
    score = _busy_score(size)
    x0 = torch.randn(rows, size, generator=torch.Generator().manual_seed(2))
    span, dt = em_span_and_step(SDE, steps, x0.dtype)

    def interval():
        return torchsde.BrownianInterval(t0=0.0, t1=span, size=tuple(x0.shape), dtype=x0.dtype, entropy=9, dt=dt,
                                         levy_area_approximation="none")

    with torch.no_grad():
        reference = _torchsde_with(score, x0, steps, interval())
        grid = torch.from_numpy(em_time_grid(SDE, steps, x0.dtype))
        bm = interval()
        direct = EulerMaruyamaSteps(ReverseSDE(score, SDE), x0, grid,
                                    lambda k, out: out.copy_(bm(grid[k], grid[k + 1]))).run()
    assert torch.equal(direct, reference)


def test_reference_path_is_unchanged_by_default_options():
    """sample_states with default execution options is torchsde's sdeint, as before."""
    score = _busy_score(16)
    with torch.no_grad():
        x0 = torch.randn(6, 16, generator=torch.Generator().manual_seed(derive_seed(3, "prior", 0)))
        expected = _euler_maruyama(score, SDE, x0, 20, derive_seed(3, "brownian", 0))
    got = torch.cat(list(sample_states(score, SDE, 6, 16, seed=3, steps=20, batch_size=6)))
    assert torch.equal(got, expected)


def test_gaussian_increments_have_the_step_variance():
    grid = torch.from_numpy(em_time_grid(SDE, 4, torch.float32))
    draw = gaussian_increments(grid, torch.Generator().manual_seed(0))
    out = torch.empty(200_000)
    for k in range(4):
        draw(k, out)
        assert out.var().item() == pytest.approx(float(grid[k + 1] - grid[k]), rel=0.02)
        assert abs(out.mean().item()) < 4 * float(grid[k + 1] - grid[k]) ** 0.5 / 200_000**0.5


class ExactGaussianScore(torch.nn.Module):
    """The true score of x_t when x_0 ~ N(mu, sd² I)."""

    def __init__(self, mu: float, sd: float) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.mu, self.sd = mu, sd

    def forward(self, x, t):
        t = t.reshape(-1, 1)
        m = SDE.mean_factor(t)
        return -(x - m * self.mu) / (m**2 * self.sd**2 + SDE.variance(t))


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_direct_sampler_recovers_a_gaussian_and_is_seeded(cuda_graph):
    execution = ExecutionOptions(em_integrator="direct", cuda_graph=cuda_graph)

    def draw(seed: int) -> torch.Tensor:
        return torch.cat(list(sample_states(ExactGaussianScore(0.5, 0.3), SDE, 3000, 8, seed=seed, steps=200,
                                            batch_size=1000, execution=execution)))

    x = draw(0)
    assert x.mean().item() == pytest.approx(0.5, abs=0.02) and x.std().item() == pytest.approx(0.3, abs=0.03)
    assert torch.equal(x, draw(0)) and not torch.equal(x, draw(1))


def test_cuda_graph_off_the_gpu_steps_the_same_buffers_uncaptured():
    score = _busy_score(16)

    def draw(graph: bool) -> torch.Tensor:
        execution = ExecutionOptions(em_integrator="direct", cuda_graph=graph)
        return torch.cat(list(sample_states(score, SDE, 10, 16, seed=4, steps=15, batch_size=5, execution=execution)))

    assert torch.equal(draw(True), draw(False))


def _trained_toy_score(precision: str) -> Score:
    """A small UNet over a Gaussian prior, trained for 60 DSM steps on two clusters in 16 dimensions (seeded).

    Its samples have about the data's spread (the prior keeps a briefly trained network's samples sane).
    """
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[-0.6] * 8 + [0.4] * 8, [0.5] * 8 + [-0.3] * 8])
    data = centres[torch.randint(0, 2, (4096,), generator=gen)] + 0.15 * torch.randn(4096, 16, generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = UNet(UNetConfig(16, channels=8, multipliers=(1, 2), res_blocks=1, groups=4))
    score = Score(net, SDE, scale_by_sigma=True, prior=GaussianPrior(SDE, 16).fit(data), precision=precision)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        batch = data[torch.randint(0, 4096, (128,), generator=gen)]
        loss = dsm_loss(score, SDE, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)
    return score.eval()


def test_bf16_autocast_leaves_the_samples_statistically_unchanged():
    """Same weights, same seeds: bf16 moves each state a little and no statistic beyond its noise."""
    score = _trained_toy_score("float32")
    bf16 = Score(score.net, SDE, scale_by_sigma=True, prior=score.prior, precision="bfloat16").eval()

    rows = 3000

    def draw(s: Score, seed: int) -> torch.Tensor:
        return torch.cat(list(sample_states(s, SDE, rows, 16, seed=seed, steps=25, batch_size=rows,
                                            execution=ExecutionOptions(em_integrator="direct"))))

    f32, b16, other = draw(score, 0), draw(bf16, 0), draw(score, 1)
    assert f32.dtype == b16.dtype == torch.float32
    relative = ((b16 - f32).norm() / f32.norm()).item()
    assert 0 < relative < 0.15  # bf16 did run, and its rounding moved each path a little
    se = f32.std(dim=0) / rows**0.5
    assert ((b16.mean(dim=0) - f32.mean(dim=0)).abs() < 4 * se).all()
    assert ((b16.std(dim=0) / f32.std(dim=0) - 1).abs() < 0.05).all()
    # bf16 against float32 differs less than float32 against itself under another seed
    assert (b16.mean(dim=0) - f32.mean(dim=0)).abs().max() < (other.mean(dim=0) - f32.mean(dim=0)).abs().max() + 2 * se.max()


def test_bf16_training_runs_the_network_in_bf16_and_keeps_float32_weights_and_loss():
    seen = []
    score = _busy_score(16, prior=False)
    score.precision = "bfloat16"
    score.net.conv_out.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x0 = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    loss = dsm_loss(score, SDE, x0, torch.Generator().manual_seed(1))
    loss.backward()
    assert seen == [torch.bfloat16] and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(p.dtype == torch.float32 and p.grad is not None for p in score.net.parameters())


def test_channels_last_computes_the_same_score_and_trains_the_same_parameters():
    """NHWC is a layout, not a model: same outputs (to float rounding), same Parameter objects."""
    score = _busy_score(16, prior=False)
    params = list(score.net.parameters())
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    t = torch.rand(64, generator=torch.Generator().manual_seed(1)) * 0.9 + 0.05
    with torch.no_grad():
        reference = score(x, t)
    nhwc = Score(score.net, SDE, scale_by_sigma=True, channels_last=True)
    assert nhwc.net.channels_last and any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                                          and not p.is_contiguous() for p in nhwc.net.parameters())
    assert list(nhwc.net.parameters()) == params  # an optimizer built before keeps its parameters
    with torch.no_grad():
        assert torch.allclose(nhwc(x, t), reference, rtol=1e-4, atol=1e-5)
    back = Score(score.net, SDE, scale_by_sigma=True)
    assert not back.net.channels_last and all(p.is_contiguous() for p in back.net.parameters())


def _flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)


@pytest.mark.parametrize(("tf32", "expected"), [("on", (True, True)), ("off", (False, False))])
def test_numerics_sets_tf32_and_determinism_inside_and_restores_them(tf32, expected):
    before = _flags()
    with numerics(ExecutionOptions(tf32=tf32, deterministic=True), "cpu"):
        assert _flags() == (*expected, True, False)
    assert _flags() == before
    with pytest.raises(RuntimeError, match="boom"), numerics(ExecutionOptions(tf32=tf32), "cpu"):
        raise RuntimeError("boom")
    assert _flags() == before


def test_torch_tf32_mode_leaves_torchs_own_settings():
    before = _flags()
    with numerics(ExecutionOptions(tf32="torch", deterministic=False), "cpu"):
        assert _flags() == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cuda_graph": True}, "cuda_graph"),  # needs the direct integrator
        ({"cuda_graph": True, "em_integrator": "direct", "sampler": "ode"}, "cuda_graph"),
        ({"em_integrator": "rk4"}, "em_integrator"),
        ({"precision": "float16"}, "precision"),
        ({"tf32": "maybe"}, "tf32"),
    ],
)
def test_impossible_execution_options_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ScoreOptions(), **changes)


def test_execution_options_come_from_the_config_and_a_bad_one_is_one_paragraph(cli, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('generators = ["scoehr"]\n[generator_options.scoehr]\ncuda_graph = true\n')
    result = cli("run", config, "--out", tmp_path / "r", "--profile", "smoke")
    assert result.code == 2 and "cuda_graph" in result.err and "Traceback" not in result.err
