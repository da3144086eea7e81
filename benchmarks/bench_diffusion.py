"""Speed and fidelity-vs-steps benchmark of the diffusion generators (issue 4).

    python benchmarks/bench_diffusion.py [--device auto|cpu|cuda] [--speed-rows 64] [--speed-steps 5]
                                         [--train-steps 5] [--full] [--fidelity] [--fidelity-rows 2000]
                                         [--steps 1000,250,100,50] [--ode-steps 25,5]

Speed (always): the ScoEHR paper-profile score network (the 24.5 M-parameter UNet on a 12×12
latent) — training steps/s at batch 64 (one Adam step of the DSM loss, clipped), and sampling
records/s for Euler–Maruyama at each step count and for the probability-flow ODE. Sampling is
timed on ``--speed-rows`` rows for ``--speed-steps`` steps and scaled (records/s for an N-step
run = rows / (seconds per step × N)); ``--full`` instead times the issue's targets end to end:
10,240 records × 1000 Euler–Maruyama steps, and reports the 50-epoch training time implied by
the measured steps/s (509 steps per epoch on the 32,564-row train split). Reference points (seed
reproduction, batches of 128): 68 min on a T4 and 19 min on an A100 for that sampling, and
42 min on a T4 for the training. Targets on one H100: < 60 s and < 5 min.

Fidelity (``--fidelity``): fits ``scoehr`` once in its quick profile on the default simulated
dataset (seed 0 split), then samples ``--fidelity-rows`` rows with each sampler and prints DWP and
PCD against the test split. PCD has a sampling-noise floor that grows as rows shrink, so compare
rows of one table only.
"""

from __future__ import annotations

import argparse
import time

import torch

from ehrbench.api import RunContext
from ehrbench.execution.device import resolve_device
from ehrbench_plugins.generators.diffusion.sampling import sample_states
from ehrbench_plugins.generators.diffusion.score import Score
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.diffusion.training import dsm_loss
from ehrbench_plugins.generators.diffusion.unet import UNet, UNetConfig, parameter_count

from _results import results_section

SDE = VPSDE()
TRAIN_ROWS, PAPER_BATCH, PAPER_EPOCHS, PAPER_SAMPLES = 32_564, 64, 50, 10_240


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_speed(net: UNet, device: torch.device, steps: int) -> float:
    """Adam steps per second of the DSM loss at the paper's batch of 64 (after one warm-up step)."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator(device=device).manual_seed(0)
    x0 = torch.randn(PAPER_BATCH, net.config.size, device=device, generator=gen)
    score = Score(net, SDE, False)

    def step() -> None:
        loss = dsm_loss(score, SDE, x0, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - start)


def sample_seconds(net: UNet, rows: int, sampler: str, steps: int, batch_size: int = 0) -> float:
    device = next(net.parameters()).device
    score = Score(net, SDE, False)
    list(sample_states(score, SDE, min(rows, 8), net.config.size, 0, sampler, 1, batch_size))  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in sample_states(score, SDE, rows, net.config.size, 0, sampler, steps, batch_size):
        pass
    _sync(device)
    return time.perf_counter() - start


def speed(device: torch.device, args: argparse.Namespace) -> None:
    net = UNet(UNetConfig(144)).to(device)
    print(f"ScoEHR paper score network: {parameter_count(net):,} parameters, device {device}, "
          f"torch threads {torch.get_num_threads()}")
    sps = train_speed(net, device, args.train_steps)
    epoch_steps = -(-TRAIN_ROWS // PAPER_BATCH)
    print(f"training: {sps:.2f} steps/s at batch {PAPER_BATCH} → {PAPER_EPOCHS} epochs × {epoch_steps} steps "
          f"≈ {PAPER_EPOCHS * epoch_steps / sps / 60:.1f} min")
    if args.full:
        seconds = sample_seconds(net, PAPER_SAMPLES, "euler-maruyama", 1000)
        print(f"sampling {PAPER_SAMPLES:,} records × 1000 Euler–Maruyama steps: {seconds:.1f} s "
              f"({PAPER_SAMPLES / seconds:.1f} records/s)")
        return
    per_step = sample_seconds(net, args.speed_rows, "euler-maruyama", args.speed_steps) / args.speed_steps
    for steps in args.steps:
        print(f"sampling, Euler–Maruyama {steps:4d} steps: {args.speed_rows / (per_step * steps):9.2f} records/s "
              f"(→ {PAPER_SAMPLES:,} records in {PAPER_SAMPLES * per_step * steps / args.speed_rows / 60:.1f} min)")
    ode_step = sample_seconds(net, args.speed_rows, "ode", args.speed_steps) / args.speed_steps
    for steps in args.ode_steps:
        print(f"sampling, ODE (Heun) {steps:4d} steps: {args.speed_rows / (ode_step * steps):9.2f} records/s")


def fidelity(device: str, args: argparse.Namespace) -> None:
    from ehrbench.matrix import split
    from ehrbench.execution.scoring import compute_metric
    from ehrbench_plugins.datasets.simulated import SimulatedDataset
    from ehrbench_plugins.generators.diffusion.scoehr import ScoEHR
    from ehrbench_plugins.metrics.fidelity import ehrbench_metrics

    data = split(SimulatedDataset.configure({}).load(), 0, 0.3)
    metrics = {m.name: m.configure() for m in ehrbench_metrics()
               if m.name in ("dimension_wise_probability", "pairwise_correlation_difference")}
    gen = ScoEHR.configure("quick")
    start = time.perf_counter()
    gen.fit(data.train.X, RunContext(seed=0, device=device))
    print(f"\nscoehr quick fitted in {time.perf_counter() - start:.1f} s; {args.fidelity_rows} rows per sampler")
    print(f"| sampler | steps | score evaluations | seconds | DWP | PCD |\n|---|---|---|---|---|---|")
    runs = [("euler-maruyama", s, s) for s in args.steps] + [("ode", s, 2 * s) for s in args.ode_steps]
    for sampler, steps, nfe in runs:
        gen.options = type(gen.options)(**{**gen.options.__dict__, "sampler": sampler, "sampling_steps": steps})
        start = time.perf_counter()
        S = gen.sample(args.fidelity_rows, RunContext(seed=1, device=device))
        seconds = time.perf_counter() - start
        synthetic = data.train.with_data(S)
        values = {n: compute_metric(m, data.train, data.test, synthetic, RunContext(seed=0))["value"]
                  for n, m in metrics.items()}
        print(f"| {sampler} | {steps} | {nfe} | {seconds:.1f} | {values['dimension_wise_probability']:.4f} "
              f"| {values['pairwise_correlation_difference']:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--speed-rows", type=int, default=64)
    parser.add_argument("--speed-steps", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--steps", type=lambda s: [int(v) for v in s.split(",")], default=[1000, 250, 100, 50])
    parser.add_argument("--ode-steps", type=lambda s: [int(v) for v in s.split(",")], default=[25, 5],
                        help="probability-flow ODE step counts (5 is the quick profile's own)")
    parser.add_argument("--full", action="store_true", help="time 10,240 records × 1000 steps end to end")
    parser.add_argument("--fidelity", action="store_true", help="also print the fidelity-vs-steps table")
    parser.add_argument("--fidelity-rows", type=int, default=2000)
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device, needs_torch=True)
    if not args.no_speed:
        speed(torch.device(device), args)
    if args.fidelity:
        fidelity(device, args)


if __name__ == "__main__":
    with results_section("Diffusion: speed and fidelity against sampling steps (bench_diffusion.py)"):
        main()
