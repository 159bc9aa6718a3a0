"""One run's analysis: the 1-D interpolation, the 2-D slice, curvature and shattered gradients, into
``<run>/landscape/``.

Every number is a function of the run's weights, its config and the options: the evaluation images are a seeded
subset of the run's own training split (un-augmented, mean-subtracted as in training), directions and random
vectors come from seeded CPU generators, BN runs in eval mode with the run's running statistics (on the 1-D line
with statistics re-estimated for each point's weights, ``Options.line_bn``), and TF32 is off on GPUs. Each stage
records a fingerprint of what it was computed from; a re-run reuses every finished stage and every finished point
of a scan, and recomputes what another fingerprint left.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from analysis.interventions import net_label
from analysis.landscape import curvature, directions, figures, layout, shattered
from analysis.landscape.harness import Run, atomic_write_json, atomic_write_text, read_json, training_images
from analysis.landscape.objective import Objective, make_batches
from analysis.landscape.progress import Progress
from analysis.landscape.scan import Scan, csv_text, read_rows, write_state
from analysis.load import run_label
from analysis.style import FORMATS, savefig

STAGES = ("line", "surface", "curvature", "gradients")
LINE_BN = ("recomputed", "running")
"""BN statistics along the 1-D line: re-estimated for each point's weights (default), or the initial and final running
statistics interpolated with the weights (at alpha 0 mean 0 and variance 1, which make BN the identity)."""
FORMAT_VERSION = 1  # bump when a stage's numbers change meaning, so old files are recomputed
SALT = {"subset": 0, "surface": 1, "lanczos": 2, "hutchinson": 3, "gradients": 4}


@dataclass(frozen=True)
class Options:
    """How finely to look. The defaults give a coarse answer on a laptop CPU in minutes; ``PAPER`` is the
    paper-quality setting for a GPU (51 x 51 grid on the whole training set)."""

    points: int = 11  # 2-D grid: points per axis
    span: float = 1.0  # 2-D grid: coordinates from -span to span (Li et al.: [-1, 1])
    line_points: int = 21  # 1-D interpolation: alphas from 0 to 1
    line_bn: str = "recomputed"  # 1-D line: BN statistics re-estimated at each point, or the interpolated "running"
    images: int = 1000  # training images evaluated (a seeded subset); 0 = the whole training split
    eigenvalues: int = 3  # top Hessian eigenvalues reported
    lanczos_steps: int = 20  # Hessian-vector products for the eigenvalues
    hutchinson_samples: int = 20  # Hessian-vector products for the trace
    gradient_lines: int = 4  # shattered gradients: lines between pairs of training images
    gradient_points: int = 128  # shattered gradients: inputs per line (Balduzzi et al.: 256)
    batch_size: int = 500  # images per forward pass (memory; and the batches BN statistics are re-estimated over)
    seed: int = 0  # evaluation subset, directions, random vectors, image pairs
    device: str = "auto"  # auto = cuda when available
    data_dir: str | None = None  # where CIFAR-10 is, when not at the run's data_dir
    stages: tuple[str, ...] = STAGES
    formats: tuple[str, ...] = FORMATS
    flush_seconds: float = 2.0  # a killed scan loses at most this much work

    def settings(self, stage: str) -> dict[str, Any]:
        """The options a stage's numbers depend on (its fingerprint covers these)."""
        common = {"images": self.images, "seed": self.seed, "version": FORMAT_VERSION}
        own = {
            "line": {"line_points": self.line_points, "line_bn": self.line_bn}
            | ({"batch_size": self.batch_size} if self.line_bn == "recomputed" else {}),
            "surface": {"points": self.points, "span": self.span},
            "curvature": {
                "lanczos_steps": self.lanczos_steps,
                "hutchinson_samples": self.hutchinson_samples,
                "checked": self.eigenvalues,
            },
            "gradients": {"gradient_lines": self.gradient_lines, "gradient_points": self.gradient_points},
        }[stage]
        return {**common, **own}


PAPER = {
    "points": 51,
    "line_points": 51,
    "images": 0,
    "eigenvalues": 5,
    "lanczos_steps": 50,
    "hutchinson_samples": 100,
    "gradient_lines": 16,
    "gradient_points": 256,
    "batch_size": 2000,
}
"""``--paper``: Li et al.'s 51 x 51 grid over [-1, 1] on the whole training set, Balduzzi et al.'s 256 inputs a line,
and PyHessian-sized curvature runs. Sized for a GPU: on a CPU it takes days."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluation_subset(n: int, images: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of the evaluated training images: all of them, or a seeded random ``images`` of them."""
    if images <= 0 or images >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(_seed(seed, "subset"))
    return torch.randperm(n, generator=generator)[:images].sort().values


def _seed(seed: int, what: str) -> int:
    return seed * 1000 + SALT[what]


def _generator(seed: int, what: str) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(seed, what))


@contextlib.contextmanager
def numerics(device: torch.device) -> Iterator[None]:
    """fp32 without TF32 on GPUs (Hessian-vector products and small loss differences need the full mantissa), and
    denormals flushed to zero on CPUs as training does (a trained plain-44's Hessian-vector product ran 3x slower
    with them; values below 1e-38 change no number reported here). Both are restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
        if flush:
            torch.set_flush_denormal(False)


def label_of(run: Run) -> str:
    """The net's label as the report writes it: "plain-56", or "plain-56 (no BN, TAT)" for an intervention."""
    return net_label(run_label(run.arch, run.depth, run.config.shortcut, run.config.family), run.config.to_dict())


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return read_json(path)
    except (FileNotFoundError, ValueError):
        return None


class RunAnalysis:
    """The loaded pieces of one run (networks, images, objective) and its four stages."""

    def __init__(self, run: Run, options: Options, stream: TextIO | None = None):
        self.run, self.options = run, options
        self.stream = stream if stream is not None else sys.stderr
        self.out = layout.run_folder(run.path)
        self.device = resolve_device(options.device)
        self.label = label_of(run)
        data = training_images(run.config, options.data_dir)
        self.subset = evaluation_subset(len(data), options.images, options.seed)
        x, y = data.normalized(self.subset)
        self.images, self.labels = x.to(self.device), y.to(self.device)
        net = run.build()
        self.initial = {k: v.detach().clone().to(self.device) for k, v in net.state_dict().items()}
        net.load_state_dict(run.final_state())
        net.to(self.device)
        self.net = net
        self.objective = Objective(net, make_batches(self.images, self.labels, options.batch_size, self.device))
        self.final = {k: v.detach() for k, v in net.state_dict().items()}
        self.base = run.fingerprint()
        self.timings: dict[str, float] = {}
        self.worked = False  # set by a stage that computed anything (a finished stage is only read back)

    def fingerprint(self, stage: str) -> str:
        return _digest(self.base, stage, self.options.settings(stage))

    def _progress(self, stage: str, unit: str, every: int | None = None) -> Progress:
        return Progress(f"{self.run.name}: {stage}", unit, every, self.stream)

    def _split(self, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return (
            {k: state[k] for k in self.objective.params},
            {k: state[k] for k in self.objective.buffers},
        )

    # -- stages ------------------------------------------------------------------------------------------------------

    def line(self, compute: bool = True) -> list[dict[str, float]] | None:
        alphas = np.linspace(0.0, 1.0, self.options.line_points)
        points = [{"i": i, "alpha": float(a)} for i, a in enumerate(alphas)]

        def evaluate(point: Mapping[str, float]) -> dict[str, float]:
            state = directions.interpolate(self.initial, self.final, point["alpha"])
            if self.options.line_bn == "recomputed":
                state = self.objective.bn_statistics_for(state)
            params, buffers = self._split(state)
            loss, error = self.objective.evaluate(params, buffers)
            return {"loss": loss, "error": error}

        scan = Scan(
            self.out / layout.LINE_CSV,
            "line",
            self.fingerprint("line"),
            points,
            ["i"],
            ["loss", "error"],
            evaluate,
            self.options.flush_seconds,
        )
        if not compute:
            return scan.run() if scan.done() else None
        with self._progress("line", "points") as progress:
            rows = scan.run(progress)
        self.worked = scan.computed > 0
        return rows

    def surface(self, compute: bool = True) -> list[dict[str, float]] | None:
        grid = directions.axis(self.options.points, self.options.span)
        points = [
            {"i": i, "j": j, "alpha": float(a), "beta": float(b)}
            for i, a in enumerate(grid)
            for j, b in enumerate(grid)
        ]
        weights = self.objective.params
        dirs: list[dict[str, torch.Tensor]] = []

        def evaluate(point: Mapping[str, float]) -> dict[str, float]:
            if not dirs:
                dirs.extend(directions.directions(weights, _seed(self.options.seed, "surface")))
            params = directions.move(weights, [(point["alpha"], dirs[0]), (point["beta"], dirs[1])])
            loss, error = self.objective.evaluate(params)
            return {"loss": loss, "error": error}

        scan = Scan(
            self.out / layout.SURFACE_CSV,
            "surface",
            self.fingerprint("surface"),
            points,
            ["i", "j"],
            ["loss", "error"],
            evaluate,
            self.options.flush_seconds,
        )
        if not compute:
            return scan.run() if scan.done() else None
        with self._progress("surface", "points", every=self.options.points) as progress:
            rows = scan.run(progress)
        self.worked = scan.computed > 0
        return rows

    def _stored(self, path: Path, stage: str) -> tuple[str, dict[str, Any] | None]:
        """The stage's fingerprint, and its stored result when that was computed with the same options and run."""
        fingerprint = self.fingerprint(stage)
        done = _read_json(path)
        return fingerprint, (done if done is not None and done.get("fingerprint") == fingerprint else None)

    def curvature(self, compute: bool = True) -> dict[str, Any] | None:
        path = self.out / layout.CURVATURE_JSON
        fingerprint, done = self._stored(path, "curvature")
        if done is not None or not compute:
            return done
        self.worked = True
        params = self.objective.params
        matvec = self.objective.flat_hvp(params)
        like = self.objective.flatten(params)
        o = self.options
        with self._progress("Lanczos", "Hessian-vector products") as progress:
            spectrum = curvature.lanczos(
                matvec, like.numel(), o.lanczos_steps, _generator(o.seed, "lanczos"), like, progress, o.eigenvalues
            )
        with self._progress("Hutchinson", "Hessian-vector products") as progress:
            trace = curvature.hutchinson(
                matvec, like.numel(), o.hutchinson_samples, _generator(o.seed, "hutchinson"), like, progress
            )
        result = {
            "fingerprint": fingerprint,
            "parameters": like.numel(),
            "lanczos_steps": spectrum.steps,
            "ritz_values": spectrum.ritz_values,
            "ritz_residuals": spectrum.residuals,
            "measured_residuals": spectrum.measured,
            "top_eigenvalue": spectrum.largest,
            "min_eigenvalue": spectrum.smallest,
            "trace": trace.mean,
            "trace_stderr": trace.stderr,
            "hutchinson_samples": trace.samples,
            "loss": "mean cross-entropy over the evaluation images, BN in eval mode, weight decay not included",
        }
        atomic_write_json(path, result)
        write_state(self.out, "curvature", fingerprint)
        return result

    def gradients(self, compute: bool = True) -> dict[str, Any] | None:
        path = self.out / layout.SHATTERED_JSON
        fingerprint, done = self._stored(path, "gradients")
        if done is not None or not compute:
            return done
        self.worked = True
        o = self.options
        n = len(self.labels)
        if n < 2:
            raise ValueError("shattered gradients need at least two evaluation images (--images)")
        order = torch.randperm(n, generator=_generator(o.seed, "gradients"))
        max_lag = o.gradient_points // 2
        curves, lengths, trace_rows = [], [], []
        params, buffers = self.objective.params, self.objective.buffers
        with self._progress("gradients", "lines", every=1) as progress:
            for line in range(o.gradient_lines):
                a, b = (int(order[(2 * line + k) % n]) for k in (0, 1))
                inputs, t = shattered.line_inputs(self.images[a], self.images[b], o.gradient_points)
                grads = shattered.input_gradients(self.net, params, buffers, inputs, int(self.labels[a]), o.batch_size)
                curve = shattered.autocorrelation(grads, max_lag)
                curves.append(curve)
                lengths.append(shattered.autocorrelation_length(curve))
                step = (self.images[b] - self.images[a]).flatten().to(torch.float64).cpu()
                directional = (grads @ step).numpy()
                pixel = int(grads.var(0).argmax())
                for k, tk in enumerate(t):
                    trace_rows.append(
                        {
                            "line": line,
                            "t": float(tk),
                            "directional": float(directional[k]),
                            "pixel": float(grads[k, pixel]),
                        }
                    )
                progress(line + 1, o.gradient_lines)
        stacked = np.array(curves)
        mean = np.nanmean(stacked, axis=0)
        std = np.nanstd(stacked, axis=0)
        length = shattered.autocorrelation_length(mean)
        spacing = 1.0 / (o.gradient_points - 1)
        rows = [
            {"lag": k, "distance": k * spacing, "autocorrelation": float(mean[k]), "std": float(std[k])}
            for k in range(len(mean))
        ]
        atomic_write_text(
            self.out / layout.AUTOCORRELATION_CSV, csv_text(("lag", "distance", "autocorrelation", "std"), rows)
        )
        atomic_write_text(self.out / layout.GRADIENTS_CSV, csv_text(("line", "t", "directional", "pixel"), trace_rows))
        result = {
            "fingerprint": fingerprint,
            "autocorrelation_length": length.lag,
            "autocorrelation_length_distance": length.lag * spacing,
            "censored": length.censored,
            "lag1_autocorrelation": float(mean[1]),
            "max_lag": max_lag,
            "line_lengths": [x.lag for x in lengths],
            "line_censored": [x.censored for x in lengths],
            "lines": o.gradient_lines,
            "points": o.gradient_points,
            "output": "logit of the first image's class; line from one training image to another, t in [0, 1]",
            "threshold": shattered.THRESHOLD,
        }
        atomic_write_json(path, result)
        write_state(self.out, "gradients", fingerprint)
        return result

    # -- everything --------------------------------------------------------------------------------------------------

    def analyse(self) -> dict[str, Any]:
        """Run the requested stages (reusing finished work), draw the figures and write landscape.json."""
        results: dict[str, Any] = {}
        earlier = _read_json(self.out / layout.SUMMARY_JSON) or {}
        with numerics(self.device):
            for stage in STAGES:
                self.worked = False
                t0 = time.perf_counter()
                results[stage] = getattr(self, stage)(compute=stage in self.options.stages)
                if self.worked:
                    self.timings[stage] = time.perf_counter() - t0
                elif earlier.get("fingerprints", {}).get(stage) == self.fingerprint(stage):
                    if stage in earlier.get("wall_time_s", {}):
                        self.timings[stage] = earlier["wall_time_s"][stage]  # computed by an earlier run
        summary = self.summary(results)
        self.draw(results, summary)
        atomic_write_json(self.out / layout.SUMMARY_JSON, summary)
        return summary

    def summary(self, results: Mapping[str, Any]) -> dict[str, Any]:
        o = self.options
        cfg = self.run.config
        out: dict[str, Any] = {
            "run": self.run.name,
            "label": self.label,
            "arch": cfg.arch,
            "depth": cfg.depth,
            "shortcut": cfg.shortcut,
            "seed": cfg.seed,
            "dataset": cfg.dataset,
            "images": len(self.labels),
            "bn": "eval mode, the run's running statistics"
            + ("; on the 1-D line re-estimated at each point" if o.line_bn == "recomputed" else ""),
            "augmentation": "none",
            "settings": {k: v for k, v in asdict(o).items() if k not in ("data_dir", "flush_seconds")},
            "device": str(self.device),
            "torch": torch.__version__,
            "host": platform.node(),
            "wall_time_s": dict(self.timings),  # seconds each stage took in the run that computed (or finished) it
            "fingerprints": {stage: self.fingerprint(stage) for stage in STAGES if results.get(stage)},
        }
        out.update(zip(("final_loss", "final_error"), self._final(results), strict=True))
        line = results.get("line")
        if line:
            out.update(
                line_bn=o.line_bn,
                initial_loss=line[0]["loss"],
                initial_error=line[0]["error"],
                line_final_loss=line[-1]["loss"],
                line_max_loss=max(r["loss"] for r in line),
                line_barrier=barrier(line),
            )
        surface = results.get("surface")
        if surface:
            losses = np.array([r["loss"] for r in surface])
            centre = surface_centre(surface)
            finite = losses[np.isfinite(losses)]
            out.update(
                surface_centre_loss=centre["loss"],
                surface_min_loss=float(finite.min()) if finite.size else None,
                surface_max_loss=float(finite.max()) if finite.size else None,
                surface_nonconvex_fraction=nonconvex_fraction(surface),
            )
        curv = results.get("curvature")
        if curv:
            out.update(
                top_eigenvalues=curv["ritz_values"][: o.eigenvalues],
                top_eigenvalue_residuals=curv["measured_residuals"],
                top_eigenvalue_residual=curv["measured_residuals"][0] if curv["measured_residuals"] else None,
                top_eigenvalue=curv["top_eigenvalue"],
                min_eigenvalue=curv["min_eigenvalue"],
                trace=curv["trace"],
                trace_stderr=curv["trace_stderr"],
                eigenvalue_ratio=abs(curv["min_eigenvalue"] / curv["top_eigenvalue"])
                if curv["top_eigenvalue"]
                else None,
            )
        grads = results.get("gradients")
        if grads:
            out.update(
                autocorrelation_length=grads["autocorrelation_length"],
                autocorrelation_length_distance=grads["autocorrelation_length_distance"],
                autocorrelation_censored=grads["censored"],
                lag1_autocorrelation=grads["lag1_autocorrelation"],
            )
        return out

    def _final(self, results: Mapping[str, Any]) -> tuple[float, float]:
        """Loss and error of the final weights with the run's running statistics: the 2-D slice's centre or the
        end of a line that used those statistics when either was computed, else one evaluation."""
        surface = results.get("surface")
        if surface:
            centre = surface_centre(surface)
            if centre["alpha"] == 0 and centre["beta"] == 0:
                return centre["loss"], centre["error"]
        line = results.get("line")
        if line and self.options.line_bn == "running":
            return line[-1]["loss"], line[-1]["error"]
        return self.objective.evaluate(self.objective.params)

    def draw(self, results: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        caption = figures.caption(self.label, len(self.labels))
        drawn = {
            "line": lambda: figures.line_figure(
                results["line"],
                figures.caption(self.label, len(self.labels), figures.LINE_BN_NOTES[self.options.line_bn]),
            ),
            "surface": lambda: figures.surface_figure(results["surface"], caption),
            "curvature": lambda: figures.curvature_figure(results["curvature"], caption, self.options.eigenvalues),
            "gradients": lambda: figures.gradients_figure(
                read_rows(self.out / layout.GRADIENTS_CSV),
                read_rows(self.out / layout.AUTOCORRELATION_CSV),
                results["gradients"],
                caption,
            ),
        }
        for stage, draw in drawn.items():
            if results.get(stage):
                savefig(draw(), self.out / stage, self.options.formats)


def surface_centre(surface: list[Mapping[str, float]]) -> Mapping[str, float]:
    """The 2-D slice's point nearest the final weights (alpha = beta = 0 on an odd grid)."""
    return min(surface, key=lambda r: abs(r["alpha"]) + abs(r["beta"]))


def barrier(line: list[Mapping[str, float]]) -> float:
    """How far the loss rises on the way from the initial to the final weights above both ends: the largest loss
    strictly between them minus the larger end, or 0 (Goodfellow et al., ICLR 2015: monotone paths have none)."""
    inside = [r["loss"] for r in line[1:-1]]
    return max(0.0, max(inside, default=-math.inf) - max(line[0]["loss"], line[-1]["loss"]))


def nonconvex_fraction(surface: list[Mapping[str, float]]) -> float | None:
    """The share of the 2-D slice's second differences (between grid neighbours, along both axes) that are
    negative: 0 where the slice is convex along the grid lines, about a half where it is chaotic. A cheap cousin of
    Li et al.'s map of |lambda_min / lambda_max|; None for a grid under 3 x 3 or one with non-finite losses.
    """
    n = int(max(r["i"] for r in surface)) + 1
    grid = np.full((n, n), np.nan)
    for r in surface:
        grid[int(r["i"]), int(r["j"])] = r["loss"]
    if n < 3 or not np.isfinite(grid).all():
        return None
    second = np.concatenate([np.diff(grid, 2, axis=0).ravel(), np.diff(grid, 2, axis=1).ravel()])
    return float((second < 0).mean())


def analyse_run(run: Run, options: Options, stream: TextIO | None = None) -> dict[str, Any]:
    """Analyse one finished run into ``<run>/landscape/`` and return its summary (also in landscape.json)."""
    return RunAnalysis(run, options, stream).analyse()


def read_summary(run_path: str | Path) -> dict[str, Any] | None:
    """A run's landscape.json, or None when it has not been analysed."""
    return _read_json(layout.run_folder(run_path) / layout.SUMMARY_JSON)
