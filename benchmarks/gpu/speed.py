"""Paper-scale speed of the diffusion generators' score network on one device (issue 20).

    python benchmarks/gpu/speed.py --json FILE [--device cuda] [--budget SECONDS] [--dry-run]

What it measures, on the ScoEHR paper network (the 24.5 M-parameter UNet on a 12×12 latent):

- training steps/s of the product's own minibatch loop (``train_minibatches`` + the DSM loss,
  Adam, gradient clip 1) at batch 64 under each execution setting, and at doubling batches up to
  the largest that fits (or the whole 32,564-row train split); the implied 50-epoch time;
- sampling: seconds per Euler–Maruyama step on 10,240 records for each integrator, CUDA graph,
  precision and TF32 setting (the difference of a 15- and a 5-step run, so set-up and capture are
  left out), extrapolated to 1000 steps and labelled so; then the full 10,240 × 1000 run end to
  end for the fastest settings, as long as the budget allows;
- the same per-step sampling for raw-diffusion's network on the 36×36 record;
- two ceilings to read them against: a bf16 8192³ matrix product and a device-to-device copy.

Every figure carries wall seconds, CUDA-event seconds and peak GPU memory. The JSON file is
rewritten after every measurement, so a run stopped at its time limit keeps what it measured.
``--dry-run`` runs the same code on tiny sizes (on the CPU unless ``--device`` says otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ehrbench.execution.cost import measure
from ehrbench.execution.device import describe_device
from ehrbench_plugins.generators.diffusion.execution import numerics
from ehrbench_plugins.generators.diffusion.options import ExecutionOptions
from ehrbench_plugins.generators.diffusion.sampling import auto_batch_size, sample_states
from ehrbench_plugins.generators.diffusion.score import Score
from ehrbench_plugins.generators.diffusion.sde import VPSDE
from ehrbench_plugins.generators.diffusion.training import dsm_loss, train_minibatches
from ehrbench_plugins.generators.diffusion.unet import UNet, UNetConfig, parameter_count

SDE = VPSDE()
TRAIN_ROWS, PAPER_EPOCHS = 32_564, 50


@dataclass(frozen=True)
class Scale:
    """Every size the benchmark uses: the paper's, or a dry run's."""

    latent: UNetConfig = UNetConfig(144)
    record: UNetConfig = UNetConfig(1296)
    train_batch: int = 64
    train_steps: int = 100
    train_warmup: int = 10
    largest_batch_cap: int = 32_768
    sample_rows: int = 10_240
    sample_steps: int = 1000
    probe_steps: tuple[int, int] = (5, 15)
    record_probe_steps: tuple[int, int] = (1, 3)
    matmul: int = 8192
    copy_mb: int = 4096


DRY = Scale(
    latent=UNetConfig(16, channels=8, multipliers=(1, 2), res_blocks=1, groups=4),
    record=UNetConfig(64, channels=8, multipliers=(1, 2), res_blocks=1, groups=4),
    train_batch=8, train_steps=3, train_warmup=1, largest_batch_cap=32, sample_rows=24, sample_steps=6,
    probe_steps=(1, 2), record_probe_steps=(1, 2), matmul=64, copy_mb=1,
)

# (label, execution options, precision): the default first, then one change at a time.
TRAIN_SETTINGS = [
    ("default (fp32, torch TF32, deterministic)", ExecutionOptions(), "float32"),
    ("not deterministic", ExecutionOptions(deterministic=False), "float32"),
    ("tf32 on", ExecutionOptions(tf32="on"), "float32"),
    ("tf32 off", ExecutionOptions(tf32="off"), "float32"),
    ("bf16 autocast", ExecutionOptions(tf32="on"), "bfloat16"),
    ("channels last", ExecutionOptions(channels_last=True), "float32"),
    ("bf16, channels last, cuDNN autotuned", ExecutionOptions(tf32="on", channels_last=True, deterministic=False),
     "bfloat16"),
]
SAMPLE_SETTINGS = [
    ("default: torchsde, fp32, torch TF32", ExecutionOptions(), "float32"),
    ("direct", ExecutionOptions(em_integrator="direct"), "float32"),
    ("direct + cuda graph", ExecutionOptions(em_integrator="direct", cuda_graph=True), "float32"),
    ("direct + cuda graph, tf32 off", ExecutionOptions(em_integrator="direct", cuda_graph=True, tf32="off"), "float32"),
    ("direct + cuda graph, tf32 on", ExecutionOptions(em_integrator="direct", cuda_graph=True, tf32="on"), "float32"),
    ("direct + cuda graph, bf16", ExecutionOptions(em_integrator="direct", cuda_graph=True, tf32="on"), "bfloat16"),
    ("direct + cuda graph, bf16, channels last",
     ExecutionOptions(em_integrator="direct", cuda_graph=True, tf32="on", channels_last=True), "bfloat16"),
    ("direct + cuda graph, bf16, channels last, cuDNN autotuned",
     ExecutionOptions(em_integrator="direct", cuda_graph=True, tf32="on", channels_last=True, deterministic=False),
     "bfloat16"),
]
RECORD_SETTINGS = [SAMPLE_SETTINGS[0], SAMPLE_SETTINGS[4], SAMPLE_SETTINGS[5], SAMPLE_SETTINGS[7]]


class Report:
    """The figures so far, rewritten to ``path`` after every change (atomically)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path, self.data = path, {**header, "measurements": {}}
        self.save()

    def add(self, section: str, item: dict[str, Any]) -> None:
        self.data["measurements"].setdefault(section, []).append(item)
        self.save()
        print(f"[{section}] " + ", ".join(f"{k}={_short(v)}" for k, v in item.items()), flush=True)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Clock:
    """The stage's deadline: optional measurements ask it whether they still fit."""

    def __init__(self, budget: float) -> None:
        self.end = time.monotonic() + budget

    def left(self) -> float:
        return self.end - time.monotonic()


def _free_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def forward_flops(config: UNetConfig) -> float:
    """FLOPs of one record's forward pass (torch's FLOP counter on a CPU copy)."""
    with torch.random.fork_rng(devices=[]):
        net = UNet(config).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(2, config.size), torch.full((2,), 0.5))
    return counter.get_total_flops() / 2


def _timed(device: torch.device, fn) -> dict[str, Any]:
    with measure(str(device)) as m:
        fn()
    return {"wall_seconds": m.seconds, "gpu_seconds": m.gpu_seconds, "peak_gpu_mb": m.peak_gpu_mb,
            "gpu_utilization": m.gpu_utilization}


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


# -- ceilings ---------------------------------------------------------------------------------------
def _matmul_rate(device: torch.device, n: int, reps: int = 10) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, generator=gen).to(dtype)
    b = torch.randn(n, n, device=device, generator=gen).to(dtype)
    for _ in range(3):
        a @ b
    t = _timed(device, lambda: [a @ b for _ in range(reps)])
    seconds = t["gpu_seconds"] or t["wall_seconds"]
    return {"what": f"{str(dtype).removeprefix('torch.')} matmul {n}^3 (random data)",
            "tflops": 2 * n**3 * reps / seconds / 1e12, **t}


def _copy_rate(device: torch.device, megabytes: int, reps: int = 10) -> dict[str, Any]:
    src = torch.empty(megabytes * 2**20 // 4, device=device).uniform_(generator=torch.Generator(device=device).manual_seed(0))
    dst = torch.empty_like(src)
    dst.copy_(src)
    t = _timed(device, lambda: [dst.copy_(src) for _ in range(reps)])
    seconds = t["gpu_seconds"] or t["wall_seconds"]
    return {"what": f"device copy of {megabytes} MiB (bytes read + written)",
            "tb_per_s": 2 * src.numel() * 4 * reps / seconds / 1e12, **t}


def ceilings(device: torch.device, scale: Scale, report: Report) -> None:
    report.add("ceilings", _matmul_rate(device, scale.matmul))
    report.add("ceilings", _copy_rate(device, scale.copy_mb))
    _free_memory(device)


# -- training ---------------------------------------------------------------------------------------
def _train_once(net: UNet, device: torch.device, batch: int, steps: int, execution: ExecutionOptions,
                precision: str) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(1)
    data = torch.randn(batch * steps, net.config.size, device=device, generator=gen)
    score = Score(net, SDE, False, precision=precision, channels_last=execution.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    net.train()

    def fit() -> None:
        with numerics(execution, device):
            train_minibatches(list(net.parameters()), data, lambda x0: dsm_loss(score, SDE, x0, gen), optimizer,
                              epochs=1, batch_size=batch, generator=gen, grad_clip=1.0)

    return _timed(device, fit)


def training(net: UNet, device: torch.device, scale: Scale, clock: Clock, report: Report) -> None:
    flops = 3 * forward_flops(net.config)  # forward + backward ≈ 3 forwards
    epoch_steps = math.ceil(TRAIN_ROWS / scale.train_batch)
    for label, execution, precision in TRAIN_SETTINGS:
        if clock.left() < 10:
            report.add("training", {"setting": label, "skipped": "stage budget spent"})
            continue
        _train_once(net, device, scale.train_batch, scale.train_warmup, execution, precision)
        t = _train_once(net, device, scale.train_batch, scale.train_steps, execution, precision)
        sps = scale.train_steps / t["wall_seconds"]
        report.add("training", {
            "setting": label, "batch": scale.train_batch, "steps": scale.train_steps, "steps_per_second": sps,
            "records_per_second": sps * scale.train_batch,
            "implied_50_epochs_minutes": PAPER_EPOCHS * epoch_steps / sps / 60,
            "achieved_tflops": flops * scale.train_batch * sps / 1e12, **t,
        })
    _free_memory(device)
    batch, largest = scale.train_batch * 2, None
    while batch <= scale.largest_batch_cap and clock.left() > 20:
        try:
            _train_once(net, device, batch, 1, ExecutionOptions(), "float32")
            t = _train_once(net, device, batch, 3, ExecutionOptions(), "float32")
        except RuntimeError as exc:
            if not _is_oom(exc):
                raise
            _free_memory(device)
            report.add("training-batches", {"batch": batch, "fits": False, "reason": str(exc).splitlines()[0][:200]})
            break
        sps = 3 / t["wall_seconds"]
        largest = {"batch": batch, "fits": True, "steps_per_second": sps, "records_per_second": sps * batch,
                   "implied_50_epochs_minutes": PAPER_EPOCHS * math.ceil(TRAIN_ROWS / batch) / sps / 60, **t}
        report.add("training-batches", largest)
        _free_memory(device)
        batch *= 2
    if largest is not None:
        report.data["largest_training_batch"] = largest
        report.save()


# -- sampling ---------------------------------------------------------------------------------------
def _sample_once(score: Score, device: torch.device, rows: int, steps: int, execution: ExecutionOptions) -> dict:
    def run() -> None:
        for _ in sample_states(score, SDE, rows, score.net.config.size, seed=0, steps=steps, batch_size=0,
                               execution=execution):
            pass

    return _timed(device, run)


def sampling(section: str, net: UNet, device: torch.device, scale: Scale, clock: Clock, report: Report,
             settings: list, probe: tuple[int, int], full: bool) -> None:
    rows = scale.sample_rows
    flops = forward_flops(net.config)
    short, long = probe
    predicted: list[tuple[float, str, ExecutionOptions, str]] = []
    for label, execution, precision in settings:
        if clock.left() < 15:
            report.add(section, {"setting": label, "skipped": "stage budget spent"})
            continue
        score = Score(net, SDE, False, precision=precision, channels_last=execution.channels_last)
        with numerics(execution, device):
            batch_rows = auto_batch_size(score, net.config.size, device, rows)
        a = _sample_once(score, device, rows, short, execution)
        b = _sample_once(score, device, rows, long, execution)
        # Seconds per step from the difference of the two runs (set-up and capture cancel out);
        # where timing noise swamps the difference (tiny dry-run sizes), the longer run's mean.
        upper = b["wall_seconds"] / long
        per_step = (b["wall_seconds"] - a["wall_seconds"]) / (long - short)
        method = "difference"
        if not 0.5 * upper <= per_step <= upper * 1.5:
            per_step, method = upper, "mean of the longer run"
        fixed = max(a["wall_seconds"] - short * per_step, 0.0)
        total = fixed + scale.sample_steps * per_step
        predicted.append((total, label, execution, precision))
        report.add(section, {
            "setting": label, "rows": rows, "batch_rows": batch_rows, "seconds_per_step": per_step,
            "per_step_from": method, "setup_seconds": fixed,
            f"extrapolated_seconds_{scale.sample_steps}_steps": total,
            "achieved_tflops": flops * rows / per_step / 1e12, "peak_gpu_mb": b["peak_gpu_mb"],
            "gpu_utilization": b["gpu_utilization"], "probe_steps": [short, long],
        })
        _free_memory(device)
    if not full:
        return
    # End to end: the fastest setting, the fastest in float32, then the default, while time allows.
    ranked = sorted(predicted, key=lambda p: p[0])
    chosen = ranked[:1] + [p for p in ranked if p[3] == "float32"][:1] + [p for p in predicted if p[1] == settings[0][0]]
    done = set()
    for estimate, label, execution, precision in chosen:
        if label in done:
            continue
        done.add(label)
        if estimate * 1.3 + 10 > clock.left():
            report.add(f"{section}-full", {"setting": label, "skipped":
                       f"needs about {estimate:.0f} s, {clock.left():.0f} s of the stage left"})
            continue
        score = Score(net, SDE, False, precision=precision, channels_last=execution.channels_last)
        t = _sample_once(score, device, rows, scale.sample_steps, execution)
        report.add(f"{section}-full", {"setting": label, "rows": rows, "steps": scale.sample_steps,
                                       "records_per_second": rows / t["wall_seconds"],
                                       "extrapolated_seconds": estimate, **t})
        _free_memory(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where the figures go (rewritten as they come)")
    parser.add_argument("--device", default=None, help="cuda (default) or cpu; --dry-run defaults to cpu")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds this benchmark may take")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, same code")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    scale = DRY if args.dry_run else Scale()
    clock = Clock(args.budget)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("speed.py: CUDA is not available here; use --device cpu or --dry-run", file=sys.stderr)
        return 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        latent_net = UNet(scale.latent).to(device)
    report = Report(args.json, {
        "device": describe_device(str(device)), "torch": torch.__version__, "dry_run": args.dry_run,
        "scale": {k: (str(v) if isinstance(v, UNetConfig) else v) for k, v in asdict(scale).items()},
        "latent_network": {"parameters": parameter_count(latent_net), "size": scale.latent.size,
                           "forward_gflops_per_record": forward_flops(scale.latent) / 1e9},
        "record_network": {"size": scale.record.size, "forward_gflops_per_record": forward_flops(scale.record) / 1e9},
        "budget_seconds": args.budget,
    })
    ceilings(device, scale, report)
    training(latent_net, device, scale, clock, report)
    sampling("sampling", latent_net.eval(), device, scale, clock, report, SAMPLE_SETTINGS, scale.probe_steps, full=True)
    del latent_net
    _free_memory(device)
    if clock.left() > 30:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            record_net = UNet(scale.record).to(device).eval()
        sampling("raw-diffusion-sampling", record_net, device, scale, clock, report, RECORD_SETTINGS,
                 scale.record_probe_steps, full=False)
    else:
        report.add("raw-diffusion-sampling", {"skipped": "stage budget spent"})
    report.data["finished"] = True
    report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
