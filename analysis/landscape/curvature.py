"""Curvature of the training loss from Hessian-vector products: Lanczos for the extreme eigenvalues, Hutchinson for
the trace (as PyHessian does: Yao et al., "PyHessian: Neural Networks Through the Lens of the Hessian", 2020).

Both take ``matvec: v -> H v`` on flat vectors, so they work on any symmetric operator (the tests give them an
explicit matrix and a quadratic loss with a closed-form Hessian). Random vectors come from a seeded CPU generator.

Lanczos with full reorthogonalisation builds an orthonormal Krylov basis ``V`` with ``V^T H V = T`` tridiagonal;
the eigenvalues of ``T`` (Ritz values) approximate the extreme eigenvalues of ``H``, the largest first, and
``|beta_m s_mi|`` bounds each one's residual ``||H y - theta y||``. One run of ``steps`` products gives the top
``k`` eigenvalues at once (power iteration with deflation needs tens of products per eigenvalue) and the most
negative one too, whose ratio to the largest Li et al. (Sec. 6) use to gauge how far from convex a minimum is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


def rademacher(dim: int, generator: torch.Generator) -> torch.Tensor:
    """A vector of independent +-1 entries (float64, CPU)."""
    return torch.randint(0, 2, (dim,), generator=generator).to(torch.float64).mul_(2).sub_(1)


@dataclass(frozen=True)
class Spectrum:
    """Ritz values of a Lanczos run, largest first, with a residual bound for each (exact arithmetic) and, for the
    first ``check`` of them, the residual ``||H y - theta y|| / |theta|`` measured with one more product each."""

    ritz_values: list[float]
    residuals: list[float]
    steps: int
    measured: list[float]

    def top(self, k: int) -> list[float]:
        return self.ritz_values[:k]

    @property
    def largest(self) -> float:
        return self.ritz_values[0]

    @property
    def smallest(self) -> float:
        return self.ritz_values[-1]


def lanczos(
    matvec: MatVec,
    dim: int,
    steps: int,
    generator: torch.Generator,
    like: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
    check: int = 0,
) -> Spectrum:
    """``steps`` Lanczos iterations (fewer if the Krylov space closes) from a seeded Rademacher start vector, then
    ``check`` more products that measure how well the largest ``check`` Ritz pairs satisfy ``H y = theta y``.

    Vectors take the dtype and device of ``like`` (float64 on CPU if None); the tridiagonal matrix is float64.
    With ``steps >= dim`` the Ritz values are the eigenvalues of ``H`` (up to rounding).
    """
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else torch.device("cpu")
    steps = min(steps, dim)
    basis = torch.empty(steps, dim, dtype=dtype, device=device)
    v = rademacher(dim, generator).to(dtype=dtype, device=device)
    basis[0] = v / v.norm()
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(steps):
        w = matvec(basis[j])
        alpha = float(torch.dot(w, basis[j]))
        alphas.append(alpha)
        w = w - alpha * basis[j]
        if j > 0:
            w = w - betas[-1] * basis[j - 1]
        known = basis[: j + 1]
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w = w - known.T @ (known @ w)
        beta = float(w.norm())
        betas.append(beta)
        if progress is not None:
            progress(j + 1, steps)
        if j == steps - 1 or beta <= 1e-10 * max(1.0, max(abs(a) for a in alphas)):
            break
        basis[j + 1] = w / beta
    m = len(alphas)
    tri = np.diag(alphas) + np.diag(betas[: m - 1], 1) + np.diag(betas[: m - 1], -1)
    values, vectors = np.linalg.eigh(tri)
    order = np.argsort(values)[::-1]
    residuals = np.abs(betas[m - 1] * vectors[m - 1, order])
    measured = []
    for i in order[: min(check, m)]:
        s_i = torch.as_tensor(vectors[:, i], dtype=dtype, device=device)
        y = basis[:m].T @ s_i
        theta = float(values[i])
        measured.append(float((matvec(y) - theta * y).norm() / (abs(theta) * y.norm())))
    return Spectrum([float(x) for x in values[order]], [float(r) for r in residuals], m, measured)


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson's estimate of ``tr(H)``: the mean of ``v^T H v`` over Rademacher ``v``, and its standard error."""

    samples: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    @property
    def stderr(self) -> float:
        n = len(self.samples)
        return float(np.std(self.samples, ddof=1) / math.sqrt(n)) if n > 1 else math.nan


def hutchinson(
    matvec: MatVec,
    dim: int,
    samples: int,
    generator: torch.Generator,
    like: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TraceEstimate:
    """``samples`` Rademacher quadratic forms ``v^T H v``; their mean is an unbiased estimate of the trace.

    Its variance is ``2 sum_{i != j} H_ij^2`` per sample: exact for a diagonal ``H``.
    """
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else torch.device("cpu")
    values = []
    for i in range(samples):
        v = rademacher(dim, generator).to(dtype=dtype, device=device)
        values.append(float(torch.dot(v, matvec(v))))
        if progress is not None:
            progress(i + 1, samples)
    return TraceEstimate(values)
