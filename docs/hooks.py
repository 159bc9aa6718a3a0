"""MkDocs hook: measured numbers and code-owned rules rendered into the pages at build time.

A measured figure lives in its results file (``benchmarks/results/*.json``) and a rule's numbers in the code that
applies it; pages name them with a placeholder instead of restating them, so a new measurement or rule changes
every page that shows it. Three placeholders:

- ``{{ result FILE#/json/pointer | FORMAT }}``: one value of a results file (RFC 6901 pointer; ``~1`` is ``/``);
- ``{{ table NAME }}``: a Markdown table from the results files (``TABLES``);
- ``{{ rule NAME }}``: a rule in the code's own words and numbers (``RULES``).

An unknown name, file or key stops the build (``mkdocs build --strict`` and plain ``build`` alike).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
PLACEHOLDER = re.compile(r"\{\{\s*(result|table|rule)\s+(.*?)\s*\}\}")
MODELS = {
    "cifar20": "CIFAR ResNet-20",
    "cifar56": "CIFAR ResNet-56",
    "cifar110": "CIFAR ResNet-110",
    "imagenet34": "ImageNet ResNet-34",
    "imagenet50": "ImageNet ResNet-50",
    "demo44": "demo plain/ResNet-44 pair",
}

FORMATS: dict[str, Callable[[Any], str]] = {
    "min": lambda v: f"{v / 60:.0f} min",
    "s": lambda v: f"{v:.0f} s",
    "n": lambda v: f"{v:,.0f}",
    "2": lambda v: f"{v:.2f}",
    "x": lambda v: f"{v:.2f}x",
    "ms": lambda v: f"{v * 1000:.0f} ms",
    "pct": lambda v: f"{v:.1%}",
    "raw": str,
}


class PlaceholderError(ValueError):
    """A placeholder names a file, key, table or rule that does not exist."""


def load(name: str) -> dict:
    """One results file, by its name in ``benchmarks/results/``."""
    path = RESULTS / name
    if not path.is_file():
        raise PlaceholderError(f"no results file {name!r} in {RESULTS}")
    return json.loads(path.read_text())


def pointer(document: Any, where: str) -> Any:
    """The value at an RFC 6901 JSON pointer (``/a/b/0``) of a document."""
    value = document
    for part in where.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PlaceholderError(f"no key {key!r} on the path {where!r}") from None
    return value


def result(spec: str) -> str:
    """``FILE#/pointer | FORMAT`` -> the formatted value."""
    target, _, fmt = (s.strip() for s in spec.partition("|"))
    name, hash_, where = target.partition("#")
    if not hash_:
        raise PlaceholderError(f"result needs FILE#/pointer, got {spec!r}")
    fmt = fmt or "raw"
    if fmt not in FORMATS:
        raise PlaceholderError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    return FORMATS[fmt](pointer(load(name), where))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _rates(report: dict) -> dict[tuple[str, str], float]:
    return {(r["model"], r["path"]): r["images_per_s"] for r in report["results"]}


def _source(*names: str) -> str:
    return "\n\n*From " + ", ".join(f"`benchmarks/results/{n}`" for n in names) + ".*"


def throughput_h100() -> str:
    """Training images/s on one H100 for each model and path, with the CUDA-graph run beside the eager one."""
    eager, compiled = _rates(load("h100.json")), _rates(load("h100_compile_reduce-overhead.json"))
    report = load("h100.json")
    models = list(dict.fromkeys(r["model"] for r in report["results"]))
    rows = []
    for m in models:
        cells = [f"{eager[(m, p)]:,.0f}" if (m, p) in eager else "" for p in ("default", "bare", "reference")]
        graph = compiled.get((m, "default"))
        extra = f"{graph:,.0f} (bare loop: {compiled[(m, 'bare')]:,.0f})" if graph else ""
        batch = next(r["batch"] for r in report["results"] if r["model"] == m)
        rows.append([f"{MODELS.get(m, m)}, batch {batch}", *cells, extra])
    header = ["model", "default (eager)", "bare loop", "reference pipeline", "default, `--compile reduce-overhead`"]
    note = f"\n\n{report['device']}, torch {report['torch']}, {report['steps']} timed steps after {report['warmup']}."
    return markdown_table(header, rows) + note + _source("h100.json", "h100_compile_reduce-overhead.json")


def runs_per_gpu() -> str:
    """Aggregate images/s of CIFAR ResNet-56 with k runs sharing one H100, eager and compiled."""
    eager = load("h100.json")["runs_per_gpu_aggregate"]
    graphs = load("h100_compile_reduce-overhead_4_runs_per_gpu.json")["runs_per_gpu_aggregate"]
    rows = [[k, f"{v:,.0f}", f"{graphs[k]:,.0f}" if k in graphs else ""] for k, v in eager.items()]
    header = ["runs per GPU", "images/s, eager", "images/s, `--compile reduce-overhead`"]
    return markdown_table(header, rows) + _source("h100.json", "h100_compile_reduce-overhead_4_runs_per_gpu.json")


def fig6_projection() -> str:
    """The fig6 sweep's projected wall time on one H100, one run at a time and k runs per GPU."""
    p = load("h100.json")["fig6_projection"]["default"]
    rows = [["1 (one run at a time)", f"{p['one_run_per_gpu_s'] / 60:.0f}"]]
    rows += [
        [k, f"{s / 60:.0f}" + (" (best)" if int(k) == p["best_runs_per_gpu"] else "")]
        for k, s in p["runs_per_gpu_s"].items()
    ]
    rows.append([f"floor: {p['longest_run']} alone", f"{p['longest_run_alone_s'] / 60:.0f}"])
    note = f"\n\nEach network its own run ({p['runs']} runs, as `--split-pairs` starts them)."
    return markdown_table(["runs per GPU", "projected minutes"], rows) + note + _source("h100.json")


def _rate_table(name: str, paths: tuple[str, ...], ratio: str, header: list[str]) -> str:
    """Images/s of each model on each path of one results file, and one of the file's ratios."""
    report = load(name)
    rates = _rates(report)
    models = list(dict.fromkeys(r["model"] for r in report["results"]))
    rows = [
        [MODELS.get(m, m), *(f"{rates[(m, p)]:,.0f}" for p in paths), f"{report['ratios'][f'{m} {ratio}']:.2f}x"]
        for m in models
    ]
    return markdown_table(header, rows) + _source(name)


def cpu_harness() -> str:
    """The Lightning step against the bare loop and the reference pipeline on the project's CPU."""
    header = ["model (batch 128)", "default", "bare loop", "reference", "default / bare"]
    return _rate_table("cpu.json", ("default", "bare", "reference"), "default/bare", header)


def cpu_pairs() -> str:
    """A fused pair against the unfused pair on the project's CPU."""
    header = ["model (pair, batch 128)", "pair images/s", "fused pair images/s", "fused / pair"]
    return _rate_table("cpu_pairs.json", ("pair", "pair-fused"), "pair-fused/pair", header)


def demo_walls() -> str:
    """The main job's wall time: the fresh-clone runs on the idle CPU and the runs on the shared one."""
    after = load("demo_walls.json")["after"]
    idle = after["fresh_clone_idle"]
    rows = [[seed, f"{wall:.0f}", "idle, fresh clone", idle["verdicts"][seed]] for seed, wall in idle["wall_s"].items()]
    rows += [
        ["seed 0", f"{r['wall_s']:.0f}", f"shared, load {r['load_average'][0]:.1f} to {r['load_average'][1]:.1f}", ""]
        for r in after["runs"]
    ]
    header = ["seed", "wall time (s)", "machine", "verdict"]
    return markdown_table(header, rows) + f"\n\n{after['layout']}." + _source("demo_walls.json")


def demo_profile() -> str:
    """Where a demo step's time goes, per pair of nets, on one and two threads (idle machine)."""
    report = load("demo_profile.json")
    phases = list(next(iter(report["pairs"].values()))["per_step_s"]["1 thread(s)"])
    rows = []
    for depth, pair in report["pairs"].items():
        evaluation = pair["per_evaluation_s"]
        for i, (threads, steps) in enumerate(pair["per_step_s"].items()):
            once = [f"{evaluation[k]['wall'] * 1000:.0f}" if i == 0 else "" for k in evaluation]
            rows.append([depth, threads, *(f"{steps[k]['wall'] * 1000:.1f}" for k in phases), *once])
    evaluated = list(next(iter(report["pairs"].values()))["per_evaluation_s"])
    header = ["pair depth", "threads", *(f"{p} (ms)" for p in phases), *(f"{e} (ms)" for e in evaluated)]
    start = ", ".join(f"{k} {v:.1f} s" for k, v in report["startup_s"].items() if v >= 0.1)
    note = f"\n\nStart-up of each run's process: {start}. Per run, once: " + ", ".join(
        f"{k} {v['wall'] * 1000:.0f} ms" for k, v in report["once_s"].items()
    )
    return markdown_table(header, rows) + note + "." + _source("demo_profile.json")


def signals_cost() -> str:
    """The signal probe's cost: one probe, training speed with probes every few steps, and at the presets' own."""
    report = load("signals_cpu.json")
    rows = [
        [
            MODELS.get(r["model"], r["model"]),
            f"{r['probe_s']:.2f}",
            f"{r['probe_s'] / r['step_s']:.0f}",
            f"{r['eval_every']}: {r['ratio']:.2f}x",
            f"{r['preset']} ({r['preset_eval_every']}): {r['projected_ratio_at_preset']:.3f}x",
        ]
        for r in report["results"]
    ]
    header = ["model", "one probe (s)", "in training steps", "speed, probing every N steps", "at the preset's interval"]
    return markdown_table(header, rows) + _source("signals_cpu.json")


def decode_cpu() -> str:
    """ImageNet JPEG decoding on the CPU path."""
    report = load("decode_cpu.json")
    rows = [[r["path"], str(r["workers"]), f"{r['images_per_s']:.0f}"] for r in report["results"]]
    note = f"\n\n{report['cpu_count']} cores, batch {report['batch']}, files of {report['mean_file_kb']:.0f} KB."
    return markdown_table(["path", "workers", "images/s"], rows) + note + _source("decode_cpu.json")


def paper_counts() -> str:
    """The exact counts our nets must equal, beside the figures the paper prints (``models/paper.py``)."""
    from models.paper import CIFAR_COUNTS, IMAGENET_COUNTS

    rows = []
    for d, c in CIFAR_COUNTS.items():
        rows.append([f"CIFAR-10 {d}", f"{c.params_a:,}", f"{c.params_b:,}", c.table6_params, f"{c.mmacs_a:g}M"])
        rows[-1] += ["", str(c.table6_error)]
    for d, c in IMAGENET_COUNTS.items():
        rows.append([f"ImageNet {d}", "", f"{c.params:,}", "", f"{c.gmacs_stride_1x1:g}G ({c.gmacs_stride_3x3:g}G)"])
        rows[-1] += [f"{c.table1_flops / 1e9:g}e9", ""]
    header = [
        "ResNet",
        "params, option A",
        "params, option B",
        "paper's params (Table 6)",
        "multiply-adds (stride_in 3x3)",
        "paper's FLOPs (Table 1)",
        "paper's best test error (Table 6)",
    ]
    return markdown_table(header, rows) + "\n\n*From `models/paper.py`.*"


TABLES: dict[str, Callable[[], str]] = {
    "throughput-h100": throughput_h100,
    "runs-per-gpu": runs_per_gpu,
    "fig6-projection": fig6_projection,
    "cpu-harness": cpu_harness,
    "cpu-pairs": cpu_pairs,
    "demo-walls": demo_walls,
    "demo-profile": demo_profile,
    "signals-cost": signals_cost,
    "decode-cpu": decode_cpu,
    "paper-counts": paper_counts,
}


def verdict_rule() -> str:
    """The verdict's noise rule in the report's own words, and each number it uses."""
    from dataclasses import fields

    from analysis.signals import VANISHING_RATIO
    from analysis.verdict import RULE

    rows = [[f"`NoiseRule.{f.name}`", f"{getattr(RULE, f.name):g}"] for f in fields(RULE)]
    rows.append(["`VANISHING_RATIO` (Sec. 4.1, `analysis/signals.py`)", f"{VANISHING_RATIO:g}"])
    return f"> {RULE.text()}\n\n" + markdown_table(["number", "value"], rows)


RULES: dict[str, Callable[[], str]] = {"verdict": verdict_rule}


def expand(kind: str, spec: str) -> str:
    """One placeholder's text."""
    if kind == "result":
        return result(spec)
    named = TABLES if kind == "table" else RULES
    if spec not in named:
        raise PlaceholderError(f"no {kind} named {spec!r}; known: {', '.join(named)}")
    return named[spec]()


def render(markdown: str) -> str:
    """Every placeholder of a page replaced by its text."""
    return PLACEHOLDER.sub(lambda m: expand(m.group(1), m.group(2)), markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: render a page's placeholders before Markdown is converted."""
    return render(markdown)
