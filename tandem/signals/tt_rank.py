"""Error-bounded TT-SVD ranks of a window of hidden states (RankGuide, Algorithm 1).

Written by hand because it is the project's own idea: the RankGuide appendix
specifies a TT-SVD with a *uniform per-step* error budget, which general TT
libraries do not expose, and it must run in well under 2 ms per step.

A window of W step-boundary hidden states (W x d_hid) is reshaped to a tensor
W x d1 x ... x dN and decomposed left to right:

    unfolding k (k = 1..N) has r_{k-1} * n_k rows, where n_1 = W, n_k = d_{k-1};
    keep the smallest r_k whose discarded singular-value energy <= delta^2,
    delta^2 = eps^2 * ||X||_F^2 / N.

r1 is the rank along the reasoning-step dimension (<= W); r2.. are hidden-
feature ranks. Because the truncation errors of TT-SVD are orthogonal, the
reconstruction error is at most eps * ||X||_F (Theorem 1), which the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PAPER_LEAD = 16  # the paper reshapes d_hid into 16 x 16 x (d_hid / 256)


@dataclass(frozen=True)
class TensorTrain:
    """TT cores G0 (n0 x r1), Gk (r_k x n_k x r_{k+1}), last G_N (r_N x n_N)."""

    cores: list[np.ndarray]
    ranks: list[int]

    def full(self) -> np.ndarray:
        """Contract the cores back into the full tensor (Definition A.1)."""
        out = self.cores[0]
        for core in self.cores[1:]:
            out = np.tensordot(out, core, axes=([-1], [0]))
        return out


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, on any device
        x = x.detach().to("cpu").float().numpy()
    return np.asarray(x, dtype=np.float64)


def _rank_for_budget(sigma: np.ndarray, budget: float) -> int:
    """Smallest r >= 1 with sum_{i > r} sigma_i^2 <= budget."""
    tail = np.cumsum((sigma**2)[::-1])[::-1]  # tail[i] = sum_{j >= i} sigma_j^2
    # rank r discards sigma_r.. (0-based), i.e. tail[r]; r = len(sigma) discards nothing
    for r in range(1, len(sigma)):
        if tail[r] <= budget:
            return r
    return len(sigma)


def _truncate(mat: np.ndarray, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """Rank-r truncated SVD of ``mat`` = U_r (Sigma_r V_r^T), r the smallest within ``budget``.

    Computed from the eigendecomposition of the Gram matrix of the smaller side
    (at most 96 x 96 for the paper's shapes), which is several times faster than
    a full SVD and exact in exact arithmetic. Eigenvalue round-off is ~1e-16 of
    ||mat||^2, far below any budget eps^2 ||X||^2 / N with eps >= 1e-6.
    Returns (U_r, Sigma_r V_r^T).
    """
    m, n = mat.shape
    wide = m <= n
    w, vecs = np.linalg.eigh(mat @ mat.T if wide else mat.T @ mat)
    w, vecs = w[::-1], vecs[:, ::-1]  # descending
    sigma = np.sqrt(np.clip(w, 0.0, None))
    r = _rank_for_budget(sigma, budget) if sigma[0] > 0 else 1
    if wide:
        u = vecs[:, :r]
        return u, u.T @ mat
    v = vecs[:, :r]
    s = np.where(sigma[:r] > 0, sigma[:r], 1.0)
    return (mat @ v) / s, sigma[:r, None] * v.T


def tt_decompose(x, eps: float = 0.1) -> TensorTrain:
    """Algorithm 1: TT-SVD with a uniform per-step budget eps^2 ||x||^2 / N.

    ``x`` has shape (W, d1, ..., dN) with N >= 1; the result holds N ranks.
    """
    a = _as_array(x)
    if a.ndim < 2:
        raise ValueError(f"tt_decompose needs a tensor of order >= 2, got shape {a.shape}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    shape = a.shape
    n_steps = a.ndim - 1
    norm2 = float(np.sum(a * a))
    budget = eps * eps * norm2 / n_steps
    cores: list[np.ndarray] = []
    ranks: list[int] = []
    r_prev = 1
    rest = a
    for k in range(n_steps):
        mat = rest.reshape(r_prev * shape[k], -1)
        core, rest = _truncate(mat, budget)
        r = core.shape[1]
        cores.append(core.reshape(shape[k], r) if k == 0 else core.reshape(r_prev, shape[k], r))
        ranks.append(r)
        r_prev = r
    cores.append(rest.reshape(r_prev, shape[-1]))
    return TensorTrain(cores=cores, ranks=ranks)


def tt_ranks(x, eps: float = 0.1) -> list[int]:
    """TT ranks r1..rN of ``x`` (shape (W, d1, ..., dN)), numpy array or torch tensor."""
    return tt_decompose(x, eps).ranks


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def auto_dims(d_hid: int, n_factors: int = 3, lead: int = PAPER_LEAD) -> tuple[int, ...]:
    """Factor d_hid into ``n_factors`` integers, the leading ones as close to the paper's 16 as possible.

    1536 -> (16, 16, 6) exactly as in the paper; 896 (Qwen2.5-0.5B, not divisible
    by 256) -> (16, 14, 4). The distance is measured in log space so 8 and 32 are
    equally far from 16; ties go to the larger leading factor.
    """
    if d_hid < 1 or n_factors < 1:
        raise ValueError("d_hid and n_factors must be positive")
    if n_factors == 1:
        return (d_hid,)
    candidates = []

    def search(remaining: int, prefix: tuple[int, ...]) -> None:
        if len(prefix) == n_factors - 1:
            cost = sum(abs(math.log(f / lead)) for f in prefix)
            candidates.append(((cost, tuple(-f for f in prefix)), prefix + (remaining,)))
            return
        for f in _divisors(remaining):
            search(remaining // f, prefix + (f,))

    search(d_hid, ())
    return min(candidates)[1]


def parse_dims(spec: str | None, d_hid: int) -> tuple[int, ...]:
    """``"16x14x4"`` -> (16, 14, 4), checked against d_hid; None -> :func:`auto_dims`."""
    if spec is None or spec == "auto":
        return auto_dims(d_hid)
    try:
        dims = tuple(int(p) for p in str(spec).lower().split("x"))
    except ValueError:
        raise ValueError(f"dims must look like 16x14x4, got {spec!r}") from None
    if math.prod(dims) != d_hid or any(d < 1 for d in dims):
        raise ValueError(f"dims {spec!r} multiply to {math.prod(dims)}, but the hidden size is {d_hid}")
    return dims


def max_ranks(window: int, dims: tuple[int, ...]) -> list[int]:
    """Largest ranks any window can have: r_k <= min(prod of modes left, prod of modes right)."""
    modes = (window,) + tuple(dims)
    return [min(math.prod(modes[: k + 1]), math.prod(modes[k + 1 :])) for k in range(len(dims))]
