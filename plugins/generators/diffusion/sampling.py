"""Samplers of the reverse-time VP-SDE, batched on the model's device; only final states are kept.

- ``euler-maruyama`` (the faithful default): the reverse SDE
  dx = [f(x, t) − g(t)² s_θ(x, t)] dt + g(t) dw̄ integrated from x ~ N(0, I) at t = T down to
  t_min with torchsde's ``sdeint`` (Itô, diagonal noise, fixed step (T − t_min)/steps). torchsde
  runs forward in time, so the SDE is written in s = T − t. With ``em_integrator = 'direct'``
  the same update x ← x + f·Δs + g·ΔW runs in a loop of our own (:class:`EulerMaruyamaSteps`)
  on torchsde's time grid, with increments drawn on the device: no host–device synchronisation
  per step, and the step can be replayed as one CUDA graph. Given the same increments it gives
  torchsde's trajectory bit for bit (tests/test_diffusion_execution.py).
- ``ode``: the probability-flow ODE dx/dt = f(x, t) − ½ g(t)² s_θ(x, t), deterministic given the
  initial noise, with Heun's second-order method (2 score evaluations per step) on a time grid
  that is denser near t_min (``ode_times``), where the score changes fastest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torchsde
from torch import nn

from ehrbench.api import ProgressReporter, null_progress
from ehrbench.seeding import derive_seed
from ehrbench_plugins.generators.diffusion.execution import numerics
from ehrbench_plugins.generators.diffusion.options import SAMPLERS, ExecutionOptions, Sampler
from ehrbench_plugins.generators.diffusion.sde import VPSDE

CPU_BATCH = 4096
_PROBE_ROWS = 256
_GPU_MEMORY_SHARE = 0.5


class ReverseSDE(nn.Module):
    """The reverse-time SDE in forward time s = T − t, in torchsde's (f, g) interface."""

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, score_net: nn.Module, sde: VPSDE) -> None:
        super().__init__()
        self.score_net = score_net
        self.sde = sde

    def _t(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.sde.T - s).expand(y.shape[0])

    def f(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = self._t(s, y)
        g2 = self.sde.beta(t)[:, None]
        return -(self.sde.drift(y, t[:, None]) - g2 * self.score_net(y, t))

    def g(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.sde.diffusion(self._t(s, y))[:, None].expand_as(y)


def em_span_and_step(sde: VPSDE, steps: int, dtype: torch.dtype) -> tuple[float, float]:
    """The integration span T − t_min as ``dtype`` represents it, and the fixed step.

    The step is a hair over span/steps, so float round-off never adds a tiny extra step at the end.
    """
    span = float(torch.tensor(sde.T - sde.t_min, dtype=dtype))
    return span, span / steps * (1 + 1e-6)


def em_time_grid(sde: VPSDE, steps: int, dtype: torch.dtype) -> np.ndarray:
    """The times torchsde's fixed-step loop visits, 0 = s_0 < … < s_K = span, in ``dtype``.

    torchsde adds the step to the current time as a tensor of the state's dtype and clips at the
    end; numpy scalars of the same precision round identically, so the grid is known up front.
    """
    real = np.dtype(str(dtype).removeprefix("torch.")).type
    span, dt = em_span_and_step(sde, steps, dtype)
    end, step, t = real(span), real(dt), real(0.0)
    grid = [t]
    while t < end:
        t = min(real(t + step), end)
        grid.append(t)
    return np.array(grid, dtype=real)


Noise = Callable[[int, torch.Tensor], None]


class EulerMaruyamaSteps:
    """x ← x + f(x, s)·Δs + g(s)·ΔW_k over a fixed time grid, on buffers that never move.

    The state, time, step and increment live in fixed tensors, so one step can be captured as a
    CUDA graph and replayed (``capture``); uncaptured, the same code runs step by step. The
    update's operations and their order are torchsde's Euler step for diagonal noise, so the
    same increments give the same trajectory. ``noise(k, out)`` writes ΔW_k into ``out``.
    """

    def __init__(self, drift_and_diffusion: ReverseSDE, x: torch.Tensor, grid: torch.Tensor,
                 noise: Noise, capture: bool = False) -> None:
        self.rsde = drift_and_diffusion
        self.grid = grid
        self.steps = grid[1:] - grid[:-1]  # what torchsde computes as t1 − t0
        self.x = x.clone()
        self.s = grid[0].clone()
        self.dt = self.steps[0].clone()
        self.dw = torch.zeros_like(x)
        self.noise = noise
        self.graph = self._capture() if capture else None

    def _update(self) -> torch.Tensor:
        f = self.rsde.f(self.s, self.x)
        g = self.rsde.g(self.s, self.x)
        return self.x + f * self.dt + g * self.dw

    def _capture(self) -> torch.cuda.CUDAGraph:
        # Warm up on a side stream first (cuDNN and cuBLAS choose algorithms and workspaces there),
        # as torch's CUDA-graph notes require; the warm-up's results are thrown away.
        device = self.x.device
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self._update()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.x.copy_(self._update())
        return graph

    def run(self) -> torch.Tensor:
        """Every step, launched without waiting for the device; returns the final state."""
        for k in range(self.steps.shape[0]):
            self.s.copy_(self.grid[k])
            self.dt.copy_(self.steps[k])
            self.noise(k, self.dw)
            if self.graph is not None:
                self.graph.replay()
            else:
                self.x.copy_(self._update())
        return self.x


def gaussian_increments(grid: torch.Tensor, generator: torch.Generator) -> Noise:
    """ΔW_k ~ N(0, s_{k+1} − s_k) per element, drawn on the grid's device from ``generator``."""
    scale = (grid[1:] - grid[:-1]).sqrt()

    def draw(k: int, out: torch.Tensor) -> None:
        out.normal_(generator=generator).mul_(scale[k])

    return draw


def _direct_euler_maruyama(score_net: nn.Module, sde: VPSDE, x: torch.Tensor, steps: int, seed: int,
                           capture: bool) -> torch.Tensor:
    grid = torch.from_numpy(em_time_grid(sde, steps, x.dtype)).to(x.device)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    stepper = EulerMaruyamaSteps(ReverseSDE(score_net, sde), x, grid, gaussian_increments(grid, generator),
                                 capture=capture and x.device.type == "cuda")
    return stepper.run()


def _euler_maruyama(score_net: nn.Module, sde: VPSDE, x: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    span, dt = em_span_and_step(sde, steps, x.dtype)
    bm = torchsde.BrownianInterval(
        t0=0.0, t1=span, size=tuple(x.shape), dtype=x.dtype, device=x.device, entropy=seed, dt=dt,
        levy_area_approximation="none",
    )
    ts = torch.tensor([0.0, span], device=x.device, dtype=x.dtype)
    return torchsde.sdeint(ReverseSDE(score_net, sde), x, ts, bm=bm, method="euler", dt=dt)[-1]


def ode_times(sde: VPSDE, steps: int, power: float) -> np.ndarray:
    """t_i = t_min + (T − t_min)(1 − i/N)^power: power > 1 puts more steps near t_min."""
    return sde.t_min + (sde.T - sde.t_min) * np.linspace(1.0, 0.0, steps + 1) ** power


def _probability_flow(score_net: nn.Module, sde: VPSDE, x: torch.Tensor, steps: int, power: float) -> torch.Tensor:
    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
        return sde.drift(x, tt[:, None]) - 0.5 * sde.beta(tt)[:, None] * score_net(x, tt)

    times = ode_times(sde, steps, power)
    for t0, t1 in zip(times[:-1], times[1:]):
        h = float(t1 - t0)  # negative: integrating backwards in time
        k0 = velocity(x, float(t0))
        guess = x + h * k0
        x = x + 0.5 * h * (k0 + velocity(guess, float(t1)))
    return x


def auto_batch_size(score_net: nn.Module, dim: int, device: torch.device, n: int) -> int:
    """Rows per sampling batch: on CUDA, half the free memory over a probed per-row peak."""
    if device.type != "cuda":
        return max(1, min(n, CPU_BATCH))
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.no_grad():
        probe = torch.zeros(_PROBE_ROWS, dim, device=device)
        score_net(probe, torch.full((_PROBE_ROWS,), 0.5, device=device))
    per_row = max(1, (torch.cuda.max_memory_allocated(device) - before) // _PROBE_ROWS) * 3  # state, noise, drift
    free, _ = torch.cuda.mem_get_info(device)
    # Memory torch's allocator holds but no tensor uses (a fit's activations, say) is free to us too.
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return max(1, min(n, int(free * _GPU_MEMORY_SHARE // per_row)))


def sample_states(
    score_net: nn.Module,
    sde: VPSDE,
    n: int,
    dim: int,
    seed: int,
    sampler: Sampler = "euler-maruyama",
    steps: int = 1000,
    batch_size: int = 0,
    progress: ProgressReporter = null_progress,
    ode_power: float = 2.0,
    execution: ExecutionOptions | None = None,
) -> Iterator[torch.Tensor]:
    """Yield final states x(t_min) for ``n`` rows, batch after batch, on the network's device.

    ``batch_size`` 0 sizes batches to the device (see :func:`auto_batch_size`). Batch k draws its
    initial noise and Brownian path from seeds derived from (``seed``, k), so a result depends
    only on the seed and the batch size, never on the global RNG. ``execution`` picks the
    Euler–Maruyama integrator, the CUDA graph and the TF32 and determinism switches.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if steps < 1:
        raise ValueError(f"sampling steps must be at least 1, got {steps}")
    execution = execution or ExecutionOptions()
    device = next(score_net.parameters()).device
    was_training = score_net.training
    score_net.eval()
    try:
        with numerics(execution, device):
            rows = batch_size if batch_size > 0 else auto_batch_size(score_net, dim, device, n)
        for index, start in enumerate(range(0, n, rows)):
            size = min(rows, n - start)
            noise_gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "prior", index))
            with torch.no_grad(), numerics(execution, device):
                x = torch.randn(size, dim, generator=noise_gen, device=device)
                brownian_seed = derive_seed(seed, "brownian", index)
                if sampler == "ode":
                    x = _probability_flow(score_net, sde, x, steps, ode_power)
                elif execution.em_integrator == "direct":
                    x = _direct_euler_maruyama(score_net, sde, x, steps, brownian_seed, execution.cuda_graph)
                else:
                    x = _euler_maruyama(score_net, sde, x, steps, brownian_seed)
            progress(f"sampling: {start + size}/{n} rows", completed=start + size, total=n)
            yield x
    finally:
        score_net.train(was_training)
