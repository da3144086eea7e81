"""The device check's stages, each in its own time-boxed process; check.sh installs, then runs this.

    python benchmarks/gpu/check.py --out DIR [--dry-run] [--stages a,b] [--budget SECONDS] [--paper-fast]

Stages, in order (DESIGN.md §7, README "Running on a GPU"):

1. ``preflight``: versions, the device, the plugins registered through their entry points.
2. ``pytest``: ``python -m pytest -m gpu`` (on CUDA every test must pass and none may skip).
3. ``speed``: benchmarks/gpu/speed.py, the paper-scale training and sampling figures.
4. ``e2e``: ``ehrbench run`` over every torch generator on a small cohort, twice on CUDA and once
   on the CPU, side by side: the CUDA runs must be identical, and CUDA and CPU must agree
   statistically (Welch + Holm on the fidelity metrics, benchmarks/gpu/agreement.py).
5. ``paper``: one scoehr job at the paper profile on the default dataset, if the time left covers
   its estimate from the speed figures.

After every stage ``check.json`` (every figure) and ``check.md`` (the summary, against the issue's
targets) are rewritten in ``--out``, so a check stopped at its time limit still leaves its results.
``--dry-run`` runs the same stages on the CPU at tiny sizes (a test in the default suite does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

STAGES = ("preflight", "pytest", "speed", "e2e", "paper")
TORCH_GENERATORS = ("scoehr", "raw-diffusion", "medgan", "medwgan", "medbgan")
FIDELITY = "dimension_wise_probability,dimension_wise_average,prevalence_correlation,pairwise_correlation_difference,codes_per_record"
# Seconds per stage on the GPU; the paper stage gets what is left. The sum stays under 8 minutes.
BUDGETS = {"preflight": 40, "pytest": 90, "speed": 190, "e2e": 110, "paper": 600}
DRY_BUDGETS = {"preflight": 30, "pytest": 150, "speed": 90, "e2e": 60, "paper": 40}
# Targets of issue 20 on one H200 / H100.
TARGET_SAMPLE_SECONDS, TARGET_TRAIN_MINUTES, TARGET_RAW_SAMPLE_SECONDS = 60, 5, 600


def _now() -> float:
    return time.monotonic()


class Check:
    """Results so far; written to check.json and check.md after every stage."""

    def __init__(self, out: Path, work: Path, dry: bool, deadline: float, python: str) -> None:
        self.out, self.work, self.dry, self.deadline, self.python = out, work, dry, deadline, python
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.results: dict[str, Any] = {"dry_run": dry, "started": self.started, "stages": {}}
        self.device = "cpu" if dry else "cuda"

    def left(self) -> float:
        return self.deadline - _now()

    def record(self, stage: str, result: dict[str, Any]) -> None:
        self.results["stages"][stage] = result
        self.write()

    def write(self) -> None:
        self.results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _atomic_write(self.out / "check.json", json.dumps(self.results, indent=1, default=str))
        _atomic_write(self.out / "check.md", summary(self.results))

    def ehrbench(self) -> list[str]:
        """The installed console script when there is one (it proves the entry point), else the module."""
        script = shutil.which("ehrbench")
        return [script] if script else [self.python, "-m", "ehrbench.cli"]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run(cmd: list[str], timeout: float, env: dict[str, str] | None = None, prefix: str = "",
        log: Path | None = None) -> dict[str, Any]:
    """Run ``cmd`` in its own process group; stream its output (or write it to ``log``); kill it at ``timeout``."""
    start = _now()
    sink = open(log, "w") if log else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=sink or subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    tail: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            print(prefix + line, end="", flush=True)
            tail.append(line)
            del tail[:-60]

    reader = threading.Thread(target=pump, daemon=True) if sink is None else None
    if reader:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if reader:
        reader.join(timeout=5)
    if sink:
        sink.close()
        tail = Path(log).read_text(errors="replace").splitlines(keepends=True)[-60:]
    return {"rc": proc.returncode, "seconds": round(_now() - start, 2), "timed_out": timed_out,
            "tail": "".join(tail)[-4000:], "command": " ".join(cmd)}


# -- stages -----------------------------------------------------------------------------------------
def preflight(check: Check, budget: float) -> dict[str, Any]:
    """What runs where: versions, device, plugin registration through the installed entry points."""
    probe = (
        "import json, sys, importlib.metadata as md, torch, torchsde, ehrbench\n"
        "from ehrbench.execution.device import describe_device\n"
        "from ehrbench.plugins import load_registry\n"
        "reg = load_registry()\n"
        "names = ('scoehr', 'raw-diffusion', 'medgan', 'medwgan', 'medbgan', 'train-resample', 'independent-marginals')\n"
        "print(json.dumps({'python': sys.version.split()[0], 'torch': torch.__version__, 'torchsde': torchsde.__version__,\n"
        "  'cuda_available': torch.cuda.is_available(), 'device': describe_device(sys.argv[1]),\n"
        "  'ehrbench_from': ehrbench.__file__, 'entry_points': sorted(e.name for e in md.entry_points(group='ehrbench')),\n"
        "  'generators': {n: (reg.entries['generators'][n].unavailable or 'available') if n in reg.entries['generators']\n"
        "                 else 'missing' for n in names},\n"
        "  'broken_plugins': [str(b) for b in reg.broken]}))\n"
    )
    found: dict[str, dict[str, Any]] = {}
    both = [threading.Thread(target=lambda: found.update(probe=run([check.python, "-c", probe, check.device], budget))),
            threading.Thread(target=lambda: found.update(listing=run(check.ehrbench() + ["list", "generators"], budget)))]
    for t in both:
        t.start()
    for t in both:
        t.join()
    result, listing = found["probe"], found["listing"]
    info: dict[str, Any] = {}
    if result["rc"] == 0:
        info = json.loads(result["tail"].strip().splitlines()[-1])
    problems = []
    if result["rc"] != 0:
        problems.append("the probe failed (see tail)")
    else:
        missing = [n for n, state in info["generators"].items() if state != "available"]
        if missing:
            problems.append(f"generators not available: {missing}")
        if info["broken_plugins"]:
            problems.append(f"broken plugins: {info['broken_plugins']}")
        if not check.dry and not info["cuda_available"]:
            problems.append("torch.cuda.is_available() is False")
    if listing["rc"] != 0 or "scoehr" not in listing["tail"]:
        problems.append("`ehrbench list generators` failed or does not list scoehr")
    return {"status": "failed" if problems else "ok", "problems": problems, **info,
            "console_script": shutil.which("ehrbench"), "platform": platform.platform(),
            "seconds": round(max(result["seconds"], listing["seconds"]), 2),
            "tail": result["tail"] if problems else ""}


def pytest_stage(check: Check, budget: float) -> dict[str, Any]:
    args = [check.python, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "-o", "addopts="]
    env = {}
    if check.dry:  # rehearse the CUDA tests' bodies on the CPU; the rest of the suite has no CPU fallback
        args.append("tests/test_gpu.py")
        env["EHRBENCH_GPU_TESTS_ON_CPU"] = "1"
    else:
        args.append("tests")
    result = run(args, budget, env=env, prefix="  pytest | ")
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", result["tail"])}
    skips = [(int(n), reason) for n, reason in re.findall(r"^SKIPPED \[(\d+)\] (.*)$", result["tail"], flags=re.M)]
    skipped_reasons = [reason for _, reason in skips]
    ok = result["rc"] == 0 and counts.get("passed", 0) > 0 and not counts.get("failed") and not counts.get("error")
    # On CUDA every gpu test must run; one that needs an extra the machine lacks (ray) is reported.
    missing_extra = sum(n for n, reason in skips if re.search(r"needs the '[\w-]+' extra", reason))
    if not check.dry and counts.get("skipped", 0) > missing_extra:
        ok = False
    return {"status": "ok" if ok else "failed", **counts, "skipped_reasons": skipped_reasons[:20], **result}


def speed_stage(check: Check, budget: float) -> dict[str, Any]:
    path = check.work / "speed.json"
    args = [check.python, str(HERE / "speed.py"), "--json", str(path), "--budget", str(max(budget - 15, 10))]
    if check.dry:
        args.append("--dry-run")
    result = run(args, budget, prefix="  speed | ")
    figures = json.loads(path.read_text()) if path.is_file() else {}
    ok = result["rc"] == 0 and figures.get("finished")
    return {"status": "ok" if ok else ("partial" if figures else "failed"), "figures": figures,
            **{k: result[k] for k in ("rc", "seconds", "timed_out", "command")}, "tail": "" if ok else result["tail"]}


def _e2e_args(check: Check, device: str, out: Path) -> list[str]:
    cohort = ["patients=200", "codes=30"] if check.dry else ["patients=2000", "codes=120"]
    args = check.ehrbench() + ["run", "--dataset", "simulated", "--generators", ",".join(TORCH_GENERATORS),
                               "--profile", "smoke" if check.dry else "quick", "--repeats", "2" if check.dry else "4",
                               "--metrics", FIDELITY, "--device", device, "--seed", "0", "--no-report",
                               "--executor", "local", "--out", str(out)]
    for option in cohort:
        args += ["--dataset-option", option]
    return args


def e2e(check: Check, budget: float) -> dict[str, Any]:
    """Two CUDA runs and one CPU run of one small grid, at once (the CPU run works while the GPU does)."""
    cuda = check.device
    runs = {"cuda_a": (cuda, "4"), "cuda_b": (cuda, "4"), "cpu": ("cpu", "8")}
    if check.dry:
        runs = {k: (d, "1") for k, (d, _) in runs.items()}
    procs = {}
    results: dict[str, Any] = {}
    threads = []
    for name, (device, threads_n) in runs.items():
        out = check.work / f"e2e-{name}"
        shutil.rmtree(out, ignore_errors=True)
        procs[name] = out

        def go(name=name, device=device, out=out, threads_n=threads_n) -> None:
            results[name] = run(_e2e_args(check, device, out), budget, env={"OMP_NUM_THREADS": threads_n},
                                log=check.work / f"e2e-{name}.log")

        t = threading.Thread(target=go)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    for name, r in results.items():
        print(f"  e2e | {name}: rc {r['rc']} in {r['seconds']} s{' (timed out)' if r['timed_out'] else ''}", flush=True)
        if r["rc"] != 0:
            print("".join(f"  e2e | {name} | {line}\n" for line in r["tail"].splitlines()[-15:]), end="", flush=True)
    failed = {n: r for n, r in results.items() if r["rc"] != 0}
    out: dict[str, Any] = {"runs": {n: {k: r[k] for k in ("rc", "seconds", "timed_out", "command")}
                                    for n, r in results.items()}}
    if failed:
        out.update(status="failed", tails={n: r["tail"] for n, r in failed.items()})
        return out
    from agreement import identical_runs, statistical_agreement

    out["reproducible"] = identical_runs(procs["cuda_a"], procs["cuda_b"])
    out["agreement"] = statistical_agreement(procs["cuda_a"], procs["cpu"])
    out["leaderboards"] = {n: (procs[n] / "leaderboard.md").read_text() for n in ("cuda_a", "cpu")}
    good = out["reproducible"]["identical"] and out["agreement"]["agree"]
    out["status"] = "ok" if good else "failed"
    return out


def paper_estimate(check: Check) -> float | None:
    """Seconds the paper-profile scoehr job should take, from the speed stage's default settings."""
    figures = check.results["stages"].get("speed", {}).get("figures", {}).get("measurements", {})
    train = next((m for m in figures.get("training", []) if m.get("setting", "").startswith("default")
                  and "steps_per_second" in m), None)
    sample = next((m for m in figures.get("sampling", []) if m.get("setting", "").startswith("default")
                   and "seconds_per_step" in m), None)
    if not train or not sample:
        return None
    extrapolated = next(v for k, v in sample.items() if k.startswith("extrapolated_seconds"))
    return 60 * train["implied_50_epochs_minutes"] * 1.2 + extrapolated + 90  # autoencoder, data, metrics


def paper(check: Check, budget: float, fast: bool) -> dict[str, Any]:
    out = check.work / "paper"
    shutil.rmtree(out, ignore_errors=True)
    config = check.work / "paper.toml"
    lines = ["[generator_options.scoehr]"]
    if fast:
        lines += ['em_integrator = "direct"', "cuda_graph = true", 'tf32 = "on"']
    config.write_text("\n".join(lines) + "\n")
    if check.dry:
        args = check.ehrbench() + ["run", str(config), "--dataset", "simulated", "--dataset-option", "patients=200",
                                   "--dataset-option", "codes=30", "--profile", "smoke", "--samples", "100"]
    else:
        args = check.ehrbench() + ["run", str(config), "--profile", "paper", "--samples", "10240"]
    args += ["--generators", "scoehr", "--repeats", "1", "--device", check.device, "--metrics", FIDELITY,
             "--seed", "0", "--no-report", "--out", str(out)]
    result = run(args, budget, prefix="  paper | ")
    record: dict[str, Any] = {k: result[k] for k in ("rc", "seconds", "timed_out", "command")}
    record["options"] = lines[1:]
    if result["rc"] != 0:
        return {"status": "failed", **record, "tail": result["tail"]}
    board = (out / "leaderboard.csv").read_text().splitlines()
    header = board[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in board[1:]]
    record["figures"] = {r["metric"]: float(r["mean"]) for r in rows if r["mean"]}
    cost = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    record["cost"] = next((c for c in cost if c.get("type") == "cost"), None)
    record["status"] = "ok"
    return record


# -- summary ----------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "—" if value is None else str(value)


def summary(results: dict[str, Any]) -> str:
    """check.md: status per stage, the figures against the issue's targets, and what failed."""
    stages = results["stages"]
    lines = ["# GPU device check (benchmarks/gpu/check.sh)", ""]
    if results.get("dry_run"):
        lines += ["**Dry run**: CPU and tiny sizes. These figures only show that the script works.", ""]
    pre = stages.get("preflight", {})
    device = pre.get("device") or {}
    lines += [f"Started {results['started']}, updated {results.get('updated')}. Device: "
              + ", ".join(f"{k} {v}" for k, v in device.items()) + f"; torch {pre.get('torch', '—')}, "
              f"torchsde {pre.get('torchsde', '—')}, Python {pre.get('python', '—')}.", "",
              "| stage | status | seconds |", "|---|---|---|"]
    for name in STAGES:
        s = stages.get(name)
        if s is not None:
            lines.append(f"| {name} | {s.get('status')} | {_fmt(s.get('seconds'))} |")
    lines.append("")
    speed = (stages.get("speed") or {}).get("figures", {}).get("measurements", {})
    if speed:
        lines += _speed_summary(speed, (stages.get("speed") or {}).get("figures", {}))
    e2e = stages.get("e2e") or {}
    if "agreement" in e2e:
        a, r = e2e["agreement"], e2e["reproducible"]
        lines += ["## End to end: CUDA against CPU, CUDA against itself", "",
                  f"- Statistical agreement (Welch per generator × fidelity metric, Holm at α = {a['alpha']}): "
                  f"**{'holds' if a['agree'] else 'FAILS'}** over {a['tested']} rows; smallest p {_fmt(a['smallest_p'])}.",
                  f"- Same seed, same device, two runs: **{'identical' if r['identical'] else 'NOT identical'}**."]
        for d in a["disagreeing"]:
            lines.append(f"  - disagrees: {d['generator']} {d['metric']}: {d['mean_a']:.4g} ± {d['std_a']:.2g} (CUDA) "
                         f"against {d['mean_b']:.4g} ± {d['std_b']:.2g} (CPU), p = {d['p']:.2g}")
        for name, g in r["generators"].items():
            if not g["identical"] or g["differing_metric_means"]:
                lines.append(f"  - {name}: {g['identical_samples']}/{g['samples']} samples identical, max |Δ| "
                             f"{_fmt(g['max_abs_difference'])}, {g['differing_metric_means']} metric means differ")
        lines.append("")
    pap = stages.get("paper") or {}
    if pap.get("status") == "ok":
        f, c = pap.get("figures", {}), pap.get("cost") or {}
        lines += ["## scoehr at the paper profile on the default dataset", "",
                  f"Options {pap.get('options') or 'as the profile sets them'}; fit {_fmt(c.get('fit_seconds'))} s, "
                  f"sample {_fmt(c.get('sample_seconds'))} s (GPU {_fmt(c.get('gpu_seconds'))} s, peak "
                  f"{_fmt(c.get('peak_gpu_mb'))} MB, utilization {_fmt(c.get('gpu_utilization'))} %).", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v, 4)} |" for k, v in f.items() if not k.startswith(("fit_", "sample_", "records_",
                                                                                       "peak_", "parameters", "gpu_"))]
        lines.append("")
    elif pap.get("status") == "skipped":
        lines += [f"Paper-profile job skipped: {pap.get('reason')}", ""]
    failures = [(n, s) for n, s in stages.items() if s.get("status") not in ("ok", "skipped")]
    if failures:
        lines += ["## What failed", ""]
        for name, s in failures:
            detail = s.get("problems") or s.get("reason") or ""
            lines += [f"### {name}: {s.get('status')} {detail}", "", "```", (s.get("tail") or "").strip()[-2500:], "```", ""]
            for run_name, tail in (s.get("tails") or {}).items():
                lines += [f"{run_name}:", "```", tail.strip()[-1500:], "```", ""]
    return "\n".join(lines) + "\n"


def _speed_summary(m: dict[str, Any], figures: dict[str, Any]) -> list[str]:
    lines = ["## Speed (benchmarks/gpu/speed.py)", ""]
    net = figures.get("latent_network", {})
    lines.append(f"scoehr's network: {net.get('parameters', 0):,} parameters, "
                 f"{_fmt(net.get('forward_gflops_per_record'))} GFLOP per record and step; raw-diffusion's "
                 f"{_fmt(figures.get('record_network', {}).get('forward_gflops_per_record'))}.")
    for c in m.get("ceilings", []):
        lines.append(f"Ceiling: {c['what']}: {_fmt(c.get('tflops') or c.get('tb_per_s'))} "
                     f"{'TFLOP/s' if 'tflops' in c else 'TB/s'}.")
    lines += ["", "| training setting | batch | steps/s | 50 epochs (min) | TFLOP/s | peak MB |", "|---|---|---|---|---|---|"]
    for t in m.get("training", []) + m.get("training-batches", []):
        if "steps_per_second" in t:
            lines.append(f"| {t.get('setting', 'default, larger batch')} | {t['batch']} | {_fmt(t['steps_per_second'])} | "
                         f"{_fmt(t['implied_50_epochs_minutes'])} | {_fmt(t.get('achieved_tflops'))} | {_fmt(t.get('peak_gpu_mb'))} |")
    scale = figures.get("scale", {})
    lines += ["", f"| sampling {scale.get('sample_rows', 10240):,} records | s/step | "
              f"{scale.get('sample_steps', 1000)} steps, extrapolated (s) | TFLOP/s | peak MB |", "|---|---|---|---|---|"]
    for section in ("sampling", "raw-diffusion-sampling"):
        for s in m.get(section, []):
            if "seconds_per_step" in s:
                extrapolated = next(v for k, v in s.items() if k.startswith("extrapolated_seconds"))
                name = ("raw-diffusion: " if section.startswith("raw") else "scoehr: ") + s["setting"]
                lines.append(f"| {name} | {_fmt(s['seconds_per_step'])} | {_fmt(extrapolated)} | "
                             f"{_fmt(s['achieved_tflops'])} | {_fmt(s['peak_gpu_mb'])} |")
    full = [s for s in m.get("sampling-full", []) if "wall_seconds" in s]
    lines += [""] + [f"Measured end to end: scoehr {s['rows']:,} records × {s['steps']} steps, {s['setting']}: "
                     f"**{_fmt(s['wall_seconds'])} s** (target ≤ {TARGET_SAMPLE_SECONDS} s), peak {_fmt(s['peak_gpu_mb'])} MB."
                     for s in full]
    default_train = next((t for t in m.get("training", []) if "steps_per_second" in t), None)
    if default_train:
        lines.append(f"Training, paper default at batch {default_train['batch']}: 50 epochs ≈ "
                     f"**{_fmt(default_train['implied_50_epochs_minutes'])} min** (target ≤ {TARGET_TRAIN_MINUTES} min).")
    raw = [s for s in m.get("raw-diffusion-sampling", []) if "seconds_per_step" in s]
    if raw:
        best = min(raw, key=lambda s: s["seconds_per_step"])
        extrapolated = next(v for k, v in best.items() if k.startswith("extrapolated_seconds"))
        lines.append(f"raw-diffusion, {best['setting']}: {scale.get('sample_steps', 1000)} steps ≈ "
                     f"**{_fmt(extrapolated)} s** extrapolated "
                     f"(target ≤ {TARGET_RAW_SAMPLE_SECONDS} s).")
    return lines + [""]


# -- main -------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ehrbench-gpu-check")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--budget", type=float, default=470.0, help="seconds for all stages together")
    parser.add_argument("--paper-fast", action="store_true",
                        help="the paper job with the direct integrator, a CUDA graph and TF32 on")
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f"check.py: unknown stage(s) {unknown}; stages are {', '.join(STAGES)}", file=sys.stderr)
        return 2
    check = Check(args.out, args.work, args.dry_run, _now() + args.budget, sys.executable)
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    budgets = DRY_BUDGETS if args.dry_run else BUDGETS
    check.results.update(stages_requested=stages, budget_seconds=args.budget)
    for stage in STAGES:
        if stage not in stages:
            continue
        left = check.left() - 5
        last = stage == [s for s in STAGES if s in stages][-1]
        budget = left if last else min(budgets[stage], left)  # the last stage asked for gets what is left
        if stage == "paper":
            estimate = paper_estimate(check) if not args.dry_run else None
            if estimate is not None and estimate > left:
                check.record(stage, {"status": "skipped", "estimate_seconds": estimate,
                                     "reason": f"estimated {estimate:.0f} s, {left:.0f} s left; run it alone in a "
                                               "call of its own: bash benchmarks/gpu/check.sh --stages preflight,paper "
                                               "--budget 570 (add --paper-fast for the direct integrator, a CUDA "
                                               "graph and TF32)"})
                continue
        if budget < 10:
            check.record(stage, {"status": "skipped", "reason": f"{left:.0f} s left of the budget"})
            continue
        print(f"== {stage} (up to {budget:.0f} s; {check.left():.0f} s left in all)", flush=True)
        begun = _now()
        try:
            if stage == "preflight":
                result = preflight(check, budget)
            elif stage == "pytest":
                result = pytest_stage(check, budget)
            elif stage == "speed":
                result = speed_stage(check, budget)
            elif stage == "e2e":
                result = e2e(check, budget)
            else:
                result = paper(check, budget, args.paper_fast)
        except Exception as exc:  # a broken stage is reported, and the next one still runs
            result = {"status": "failed", "tail": f"{type(exc).__name__}: {exc}"}
        result.setdefault("seconds", round(_now() - begun, 2))
        check.record(stage, result)
        print(f"== {stage}: {result['status']} in {result['seconds']} s", flush=True)
        if stage == "preflight" and result["status"] != "ok":
            print("preflight failed: stopping here (see check.md)", flush=True)
            break
    statuses = {s: r["status"] for s, r in check.results["stages"].items()}
    check.results["status"] = "ok" if all(v in ("ok", "skipped") for v in statuses.values()) else "failed"
    check.write()
    print(f"check: {check.results['status']} {statuses}; results in {args.out}/check.json and check.md", flush=True)
    return 0 if check.results["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
