"""Per-epoch wall time of medgan, medwgan and medbgan on the default dataset's train split.

    python benchmarks/bench_medgan.py [--generators medgan,medwgan,medbgan] [--profile quick]
                                      [--epochs 2] [--device cpu|cuda] [--threads N]
                                      [--patients 46520] [--codes 1071] [--seed 0]

Splits the ``simulated`` dataset 70/30 as ``ehrbench run`` does, fits each generator with the
profile's options (``--epochs`` overrides the adversarial epochs so that the paper profile can
be timed without its 1,000 epochs), and prints the wall time of every autoencoder and
adversarial epoch (from the trainer's per-epoch callback), then the time to sample as many
rows as the test split has. Each figure is wall seconds with process CPU seconds beside it:
on a busy machine the CPU time (with one thread) is the better estimate of the idle wall time.
torch.optim's one-time import of torch's compiler stack (seconds)
is paid before timing; the first epoch still includes kernel and allocator warm-up, so the
median of the later epochs is the figure to quote.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from ehrbench.api import RunContext
from ehrbench.execution.device import resolve_device
from ehrbench.matrix import split
from ehrbench_plugins.datasets.simulated import SimulatedDataset
from ehrbench_plugins.generators.medgan.models import MedBGAN, MedGAN, MedWGAN

from _results import results_section

GENERATORS = {cls.name: cls for cls in (MedGAN, MedWGAN, MedBGAN)}


def time_generator(cls: type, profile: str, overrides: dict, X_train, n_samples: int, device: str) -> dict:
    """Per-phase lists of epoch seconds, plus fit and sample seconds."""
    stamps: list[tuple[float, float, str | None]] = []

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def progress(message=None, *, completed=None, total=None):  # noqa: ANN001, ANN202
        stamps.append((*now(), message))

    gen = cls.configure(profile, overrides)
    ctx = RunContext(seed=0, device=device, progress=progress)
    start = now()
    gen.fit(X_train, ctx)
    fit = now()
    epochs: dict[str, list[tuple[float, float]]] = {"autoencoder": [], "adversarial": []}
    previous = start
    for wall, cpu, message in stamps:
        phase = (message or "").split(" ", 1)[0]
        if phase in epochs:
            epochs[phase].append((wall - previous[0], cpu - previous[1]))
        previous = (wall, cpu)
    gen.sample(n_samples, ctx)
    done = now()
    return {"epochs": epochs, "fit": (fit[0] - start[0], fit[1] - start[1]),
            "sample": (done[0] - fit[0], done[1] - fit[1]), "options": gen.options}


def describe(seconds: list[tuple[float, float]]) -> str:
    """Median wall (CPU) seconds of the epochs after the first, which carries the warm-up."""
    if not seconds:
        return "-"
    later = seconds[1:] or seconds
    wall = statistics.median(s[0] for s in later)
    cpu = statistics.median(s[1] for s in later)
    return f"{wall:6.2f} s ({cpu:.2f} cpu; first {seconds[0][0]:.2f} s; {len(seconds)} ep.)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default="medgan,medwgan,medbgan")
    parser.add_argument("--profile", default="quick", choices=["smoke", "quick", "paper"])
    parser.add_argument("--epochs", type=int, default=None, help="adversarial epochs (default: the profile's)")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="autoencoder epochs (default: the profile's)")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's setting, which honours OMP_NUM_THREADS)")
    parser.add_argument("--patients", type=int, default=46520)
    parser.add_argument("--codes", type=int, default=1071)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    names = args.generators.split(",")
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        parser.error(f"unknown generator {unknown[0]!r}; choose from {', '.join(GENERATORS)}")
    device = resolve_device(args.device, needs_torch=True)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # the one-time import, outside the timings
    data = SimulatedDataset.configure({"patients": args.patients, "codes": args.codes, "seed": args.seed}).load()
    parts = split(data, args.seed, 0.3)
    overrides: dict = {"threads": args.threads}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.pretrain_epochs is not None:
        overrides["pretrain_epochs"] = args.pretrain_epochs
    print(f"train {parts.train.X.shape}, sample {parts.test.n_patients} rows, profile {args.profile}, "
          f"device {device}, threads {args.threads or torch.get_num_threads()}")
    print(f"{'generator':<9}  {'autoencoder epoch (median)':<42}  {'adversarial epoch (median)':<42}  "
          f"{'fit (cpu)':>16}  {'sample (cpu)':>16}")
    for name in names:
        r = time_generator(GENERATORS[name], args.profile, overrides, parts.train.X, parts.test.n_patients, device)
        o = r["options"]
        fit, draw = r["fit"], r["sample"]
        print(f"{name:<9}  {describe(r['epochs']['autoencoder']):<42}  {describe(r['epochs']['adversarial']):<42}  "
              f"{fit[0]:7.2f} ({fit[1]:6.2f})  {draw[0]:7.2f} ({draw[1]:6.2f})   (batch {o.pretrain_batch_size}/{o.batch_size}, "
              f"{o.discriminator_steps} D steps, burn-in {o.burn_in_batches}×{o.burn_in_batch_size})")
    return 0


if __name__ == "__main__":
    with results_section("The medGAN family: time per epoch (bench_medgan.py)"):
        code = main()
    sys.exit(code)
