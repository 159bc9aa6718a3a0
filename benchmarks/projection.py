"""Wall time of a CIFAR sweep on one GPU, from measured images/s, with its runs scheduled as run_sweep.py runs them.

    python -m benchmarks.projection benchmarks/results/h100.json     # re-project a saved throughput report

Each sweep point is one process, whose networks run in one of three ways (the throughput benchmark's paths):
``default`` (every network its own run, as a sweep of single networks would train them), ``pair`` (a pair's two
networks in one process, as fig6 trains them) or ``pair-fused`` (a pair as one fused network, where
``fusion_blocker`` allows; fig6's ResNet-110 pair warms up and stays unfused). A process's duration alone on the
GPU is its networks x max_steps x batch_size images over the measured images/s per network at its depth (time
per image linear in depth between measured depths). With k runs per GPU every process runs slower by
s_k = max(1, k x aggregate(1) / aggregate(k)), the runs-per-GPU measurement of ResNet-56 applied to every depth
and kept while fewer than k runs remain (so the projection errs long); below 1 is measurement noise, since
sharing a GPU makes no process faster. ``run_sweep.py`` starts the longest runs
first, each in the first free slot, and the sweep ends with its last run: the longest run is a floor that no
number of runs per GPU lowers.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from experiments.config import fusion_blocker
from experiments.sweep.runner import start_order
from experiments.sweep.spec import SweepError, SweepRun, load_sweep, resolve_runs

FIG6_SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "fig6.yaml"
PROCESS_KINDS = ("default", "pair", "pair-fused")
LAYOUT = {
    "default": "each network its own run, as run_sweep.py --split-pairs starts them",
    "pair": "each pair one run",
    "pair-fused": "each pair one run, fused where allowed",
}


@dataclass(frozen=True)
class Job:
    """One process of the projected sweep: its name, depth, networks, how they run, and images per network."""

    name: str
    depth: int
    networks: int
    kind: str
    images: int


def sweep_jobs(runs: list[SweepRun], path: str) -> list[Job]:
    """The processes that train ``runs`` on path ``path`` (see the module docstring), longest runs first."""
    if path not in PROCESS_KINDS:
        raise ValueError(f"path must be one of {', '.join(PROCESS_KINDS)}, got {path!r}")
    jobs = []
    for run in start_order(runs):
        cfg = run.config
        if cfg.dataset != "cifar10":
            raise ValueError(f"{run.name}: the projection covers CIFAR-10 runs, not {cfg.dataset}")
        images = cfg.max_steps * cfg.batch_size
        members = cfg.members()
        if path == "default" or len(members) == 1:
            jobs += [Job(f"{m.arch}-{m.depth}", m.depth, 1, "default", images) for m in members]
        else:
            kind = "pair-fused" if path == "pair-fused" and fusion_blocker(cfg) is None else "pair"
            jobs.append(Job(f"{cfg.arch}-{cfg.depth}", cfg.depth, len(members), kind, images))
    return jobs


def rate_at(rates: dict[int, float], depth: int) -> float:
    """Images/s at ``depth`` from rates measured at other depths; time per image is linear in depth."""
    if depth in rates:
        return rates[depth]
    below = [d for d in rates if d < depth]
    above = [d for d in rates if d > depth]
    if not below or not above:
        raise ValueError(f"depth {depth} is outside the measured depths {sorted(rates)}; measure it too")
    lo, hi = max(below), min(above)
    t = (depth - lo) / (hi - lo)
    return 1.0 / ((1 - t) / rates[lo] + t / rates[hi])


def durations(jobs: list[Job], rates: dict[str, dict[int, float]]) -> list[float]:
    """Seconds each job takes alone on the GPU; ``rates[kind][depth]`` counts every network's images (a pair: both)."""
    missing = sorted({j.kind for j in jobs} - set(rates))
    if missing:
        raise ValueError(f"the projection needs the {' and '.join(missing)} path measured too")
    return [j.networks * j.images / rate_at(rates[j.kind], j.depth) for j in jobs]


def makespan(seconds: list[float], slots: int, slowdown: float = 1.0) -> float:
    """When the last job ends if they start in order, each in the first free slot, each ``slowdown`` x longer."""
    free_at = [0.0] * slots
    for s in seconds:
        i = free_at.index(min(free_at))
        free_at[i] += s * slowdown
    return max(free_at)


def project(
    jobs: list[Job], rates: dict[str, dict[int, float]], aggregate: dict[int, float] | None = None
) -> dict[str, object]:
    """The sweep's wall time one run at a time and, with a runs-per-GPU measurement, at the best runs per GPU."""
    alone = durations(jobs, rates)
    longest = max(range(len(jobs)), key=alone.__getitem__)
    out: dict[str, object] = {
        "runs": len(jobs),
        "one_run_per_gpu_s": makespan(alone, 1),
        "longest_run": jobs[longest].name,
        "longest_run_alone_s": alone[longest],
    }
    aggregate = aggregate or {}
    usable = {k: v for k, v in aggregate.items() if 1 < k <= len(jobs)} if 1 in aggregate else {}
    if usable:
        times = {k: makespan(alone, k, max(1.0, k * aggregate[1] / v)) for k, v in usable.items()}
        best = min(times, key=times.__getitem__)
        out["runs_per_gpu_s"] = times
        out["best_runs_per_gpu"] = best
        out["best_runs_per_gpu_s"] = times[best]
    return out


def describe(path: str, projection: dict) -> str:
    """One line: the projection of ``path`` in minutes, with its floor."""
    line = (
        f"fig6 sweep projected ({path}: {LAYOUT[path]}; {projection['runs']} runs): "
        f"{projection['one_run_per_gpu_s'] / 60:.1f} min one run per GPU"
    )
    if "best_runs_per_gpu" in projection:
        line += (
            f", {projection['best_runs_per_gpu_s'] / 60:.1f} min with {projection['best_runs_per_gpu']} runs per GPU"
        )
    return line + (f"; floor: {projection['longest_run']} alone takes {projection['longest_run_alone_s'] / 60:.1f} min")


def from_report(report: dict, sweep: Path = FIG6_SWEEP) -> dict[str, dict]:
    """Projections of ``sweep`` for every path a throughput report measured at CIFAR depths 20, 56 and 110."""
    rates: dict[str, dict[int, float]] = {}
    for r in report["results"]:
        model = r["model"]
        if model.startswith("cifar") and r["path"] in PROCESS_KINDS:
            rates.setdefault(r["path"], {})[int(model.removeprefix("cifar"))] = r["images_per_s"]
    aggregate = {int(k): v for k, v in report.get("runs_per_gpu_aggregate", {}).items()}
    runs = resolve_runs(load_sweep(sweep), where=str(sweep))
    out = {}
    for path, by_depth in rates.items():
        if not {20, 56, 110} <= set(by_depth):
            continue
        jobs = sweep_jobs(runs, path)
        try:
            with_runs = aggregate if path == report.get("runs_path", "default") else None
            out[path] = project(jobs, rates, with_runs)
        except ValueError as e:
            print(f"fig6 sweep projected ({path}): {e}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("report", help="a JSON report of python -m benchmarks.throughput")
    p.add_argument("--sweep", default=str(FIG6_SWEEP), help="a CIFAR sweep file (default: sweeps/fig6.yaml)")
    args = p.parse_args(argv)
    try:
        report = json.loads(Path(args.report).read_text())
        projections = from_report(report, Path(args.sweep))
    except (OSError, json.JSONDecodeError, KeyError, SweepError, ValueError) as e:
        print(f"error: {args.report}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if not projections:
        print("no path in the report was measured at CIFAR depths 20, 56 and 110", file=sys.stderr)
        return 2
    print(f"{report.get('device', '?')}, torch {report.get('torch', '?')}, compile {report.get('compile', 'off')}")
    for path, projection in projections.items():
        print(describe(path, projection))
    return 0


if __name__ == "__main__":
    sys.exit(main())
