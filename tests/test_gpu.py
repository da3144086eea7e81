"""CUDA checks of the torch generators' GPU path (`python -m pytest -m gpu`).

Agreement with the CPU on the same weights and increments, repeatability with one seed on one
device, the memory probe, the CUDA graph, the absence of host synchronisation in the step loop,
bf16 against float32, and the cost records of a CUDA run. benchmarks/gpu/check.sh runs them.

Without CUDA they skip, except when ``EHRBENCH_GPU_TESTS_ON_CPU=1`` (check.sh's dry run sets it):
then every test that does not need CUDA itself runs on the CPU, so the file cannot rot unseen.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from ehrbench.api import RunContext
from ehrbench.plugins import load_registry
from ehrbench_plugins.generators.diffusion.execution import numerics
from ehrbench_plugins.generators.diffusion.options import ExecutionOptions
from ehrbench_plugins.generators.diffusion.sampling import (
    EulerMaruyamaSteps,
    ReverseSDE,
    auto_batch_size,
    em_time_grid,
    gaussian_increments,
    sample_states,
)
from ehrbench_plugins.generators.diffusion.score import Score
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.diffusion.training import dsm_loss, train_minibatches
from ehrbench_plugins.generators.diffusion.unet import UNet, UNetConfig
from test_diffusion_execution import ExactGaussianScore, _busy_score, _trained_toy_score

pytestmark = pytest.mark.gpu
SDE = VPSDE()
TORCH_GENERATORS = ["scoehr", "raw-diffusion", "medgan", "medwgan", "medbgan"]


@pytest.fixture
def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if os.environ.get("EHRBENCH_GPU_TESTS_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("no CUDA device")


@pytest.fixture
def cuda() -> torch.device:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA itself")
    return torch.device("cuda")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize(("tf32", "precision", "tolerance"),
                         [("off", "float32", 1e-4), ("on", "float32", 1e-2), ("off", "bfloat16", 5e-2)])
def test_paper_unet_and_its_loss_agree_with_the_cpu_on_the_same_weights(device, tf32, precision, tolerance):
    gen = torch.Generator().manual_seed(0)
    config = UNetConfig(144) if device.type == "cuda" else UNetConfig(144, channels=32, groups=8)  # CPU: quick
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = UNet(config).eval()
    with torch.no_grad():  # move the near-zero output layers off zero, so the output is not trivially 0
        for p in net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
    x, t = torch.randn(16, 144, generator=gen), torch.rand(16, generator=gen) * 0.99 + 0.01
    reference = Score(net, SDE, False)(x, t).detach()
    moved = Score(net.to(device), SDE, False, precision=precision)
    with torch.no_grad(), numerics(ExecutionOptions(tf32=tf32), device):
        got = moved(x.to(device), t.to(device))
        loss = dsm_loss(moved, SDE, x.to(device), torch.Generator(device=device).manual_seed(1))
    assert got.dtype == torch.float32 and _relative(got, reference) < tolerance
    assert torch.isfinite(loss)


def test_em_trajectories_agree_with_the_cpu_for_the_same_increments(device):
    steps, rows, size = 30, 64, 16
    grid = em_time_grid(SDE, steps, torch.float32)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(rows, size, generator=gen)
    dw = torch.randn(steps, rows, size, generator=gen) * torch.from_numpy(np.diff(grid)).sqrt()[:, None, None]

    def run(dev: torch.device) -> torch.Tensor:
        s = _busy_score(size).to(dev)  # seeded: the same weights on both devices
        increments = dw.to(dev)
        with torch.no_grad(), numerics(ExecutionOptions(tf32="off"), dev):
            return EulerMaruyamaSteps(ReverseSDE(s, SDE), x0.to(dev), torch.from_numpy(grid).to(dev),
                                      lambda k, out: out.copy_(increments[k])).run()

    assert _relative(run(device), run(torch.device("cpu"))) < 1e-4


@pytest.mark.parametrize(("sampler", "integrator", "graph", "steps"), [
    ("euler-maruyama", "torchsde", False, 200), ("euler-maruyama", "direct", False, 200),
    ("euler-maruyama", "direct", True, 200), ("ode", "torchsde", False, 20),
])
def test_every_sampler_recovers_a_gaussian_on_the_device(device, sampler, integrator, graph, steps):
    execution = ExecutionOptions(em_integrator=integrator, cuda_graph=graph)
    states = list(sample_states(ExactGaussianScore(0.5, 0.3).to(device), SDE, 6000, 8, seed=0, sampler=sampler,
                                steps=steps, batch_size=3000, execution=execution))
    x = torch.cat(states)
    assert states[0].device.type == device.type
    assert x.mean().item() == pytest.approx(0.5, abs=0.02) and x.std().item() == pytest.approx(0.3, abs=0.03)


def test_cuda_graph_replays_the_eager_steps(cuda):
    score = _busy_score(16).to(cuda)

    def draw(graph: bool) -> torch.Tensor:
        execution = ExecutionOptions(em_integrator="direct", cuda_graph=graph, tf32="off")
        return torch.cat(list(sample_states(score, SDE, 512, 16, seed=7, steps=40, batch_size=256, execution=execution)))

    eager, graphed = draw(False), draw(True)
    assert torch.equal(graphed, draw(True))  # a replayed graph repeats itself
    assert _relative(graphed, eager) < 1e-5


@pytest.mark.parametrize("graph", [False, True])
def test_the_direct_step_loop_never_waits_for_the_device(cuda, graph):
    """Any synchronising call inside the loop raises under torch's sync debug mode 'error'."""
    net = UNet(UNetConfig(144, channels=32, multipliers=(1, 2, 2), res_blocks=1, groups=8)).to(cuda).eval()
    score = Score(net, SDE, False)
    grid = torch.from_numpy(em_time_grid(SDE, 20, torch.float32)).to(cuda)
    x = torch.randn(256, 144, device=cuda)
    with torch.no_grad(), numerics(ExecutionOptions(), cuda):
        stepper = EulerMaruyamaSteps(ReverseSDE(score, SDE), x, grid,
                                     gaussian_increments(grid, torch.Generator(device=cuda).manual_seed(0)), capture=graph)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = stepper.run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out).all()


def test_training_waits_for_the_device_once_per_epoch(cuda):
    """The minibatch loop indexes device data and never reads a value back, except each epoch's mean loss."""
    net = UNet(UNetConfig(144, channels=32, multipliers=(1, 2, 2), res_blocks=1, groups=8)).to(cuda)
    score = Score(net, SDE, False)
    gen = torch.Generator(device=cuda).manual_seed(0)
    data = torch.randn(64 * 6, 144, device=cuda, generator=gen)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def fit(rows: torch.Tensor, epochs: int) -> list[float]:
        return train_minibatches(list(net.parameters()), rows, lambda x0: dsm_loss(score, SDE, x0, gen), optimizer,
                                 epochs, 64, gen, grad_clip=1.0)

    fit(data[:128], 1)  # first calls initialise lazily (Adam's state, cuBLAS)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            losses = fit(data, 2)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(losses) == 2 and len(syncs) <= 2, syncs


def test_memory_probe_sizes_a_batch_that_fits(cuda):
    net = UNet(UNetConfig(144)).to(cuda).eval()
    score = Score(net, SDE, False)
    torch.cuda.empty_cache()
    free_before, _ = torch.cuda.mem_get_info(cuda)
    rows = auto_batch_size(score, 144, cuda, 10**7)
    assert 256 <= rows < 10**7
    torch.cuda.reset_peak_memory_stats(cuda)
    base = torch.cuda.memory_allocated(cuda)
    states = list(sample_states(score, SDE, rows, 144, seed=0, steps=1, batch_size=rows,
                                execution=ExecutionOptions(em_integrator="direct")))
    used = torch.cuda.max_memory_allocated(cuda) - base
    assert states[0].shape == (rows, 144) and used < 0.75 * free_before  # half the free memory was the aim


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.random((400, 1)) < 0.4
    X = rng.poisson(0.3, (400, 40)) + (base & (rng.random((400, 40)) < 0.5))
    return X.astype(np.float32)


@pytest.mark.parametrize("name", TORCH_GENERATORS)
def test_a_fit_and_sample_repeat_exactly_with_one_seed_on_one_device(device, name, counts):
    cls = load_registry().get("generators", name)
    extra = {"sampler": "euler-maruyama", "sampling_steps": 20} if name in ("scoehr", "raw-diffusion") else {}

    def run() -> np.ndarray:
        gen = cls.configure("smoke", extra)
        ctx = RunContext(seed=11, device=str(device))
        gen.fit(counts, ctx)
        return gen.sample(300, ctx)

    first = run()
    assert first.shape == (300, counts.shape[1]) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, run())


@pytest.mark.parametrize("precision", ["bfloat16"])
def test_bf16_keeps_samples_statistically_unchanged_on_the_device(device, precision):
    score = _trained_toy_score("float32").to(device)
    fast = Score(score.net, SDE, scale_by_sigma=True, prior=score.prior, precision=precision).eval()
    rows, steps = (8000, 50) if device.type == "cuda" else (1000, 10)  # the CPU rehearsal stays quick

    def draw(s: Score, seed: int, tf32: str = "off") -> torch.Tensor:
        execution = ExecutionOptions(em_integrator="direct", tf32=tf32)
        return torch.cat(list(sample_states(s, SDE, rows, 16, seed=seed, steps=steps, batch_size=rows,
                                            execution=execution))).cpu()

    f32, low, tf32 = draw(score, 0), draw(fast, 0), draw(score, 0, "on")
    se = f32.std(dim=0) / rows**0.5
    for other in (low, tf32):
        assert ((other.mean(dim=0) - f32.mean(dim=0)).abs() < 4 * se).all()
        assert ((other.std(dim=0) / f32.std(dim=0) - 1).abs() < 0.05).all()


def test_a_cuda_run_records_gpu_time_memory_and_the_device(cuda, cli, tmp_path):
    out = tmp_path / "run"
    result = cli("run", "--dataset", "simulated", "--dataset-option", "patients=400", "--dataset-option", "codes=40",
                 "--generators", "scoehr,medgan", "--profile", "smoke", "--repeats", "1", "--device", "cuda",
                 "--metrics", "dimension_wise_probability", "--no-report", "--out", out)
    assert result.code == 0, result.err
    device = json.loads((out / "run.json").read_text())["device"]
    assert device["device"] == "cuda" and device["cuda_device_name"] and device["nvidia_driver"]
    assert float(device["cuda_memory_gib"]) > 1 and device["cuda_capability"]
    costs = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    costs = [c for c in costs if c["type"] == "cost"]
    for c in costs:
        assert c["gpu_seconds"] > 0 and c["fit_peak_gpu_mb"] > 0 and c["sample_peak_gpu_mb"] > 0
        assert c["gpu_seconds"] == pytest.approx(c["fit_gpu_seconds"] + c["sample_gpu_seconds"])
        assert c["fit_gpu_seconds"] <= c["fit_seconds"] * 1.05 + 0.01
    board = (out / "leaderboard.csv").read_text()
    assert "gpu_seconds" in board and "peak_gpu_mb" in board
