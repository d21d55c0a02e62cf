"""How much a difference in accuracy on a few hundred problems means.

Two methods run on the same problems are paired: what matters is the
problems one solves and the other does not. The exact McNemar test asks
whether those discordant problems split more unevenly than a fair coin would
(a two-sided binomial test on them); the Wilson interval says how far one
run's accuracy could move on another draw of problems. Both are a few lines
of closed-form arithmetic, written here rather than pulling in SciPy for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    """``gained``: problems run A solves and run B does not; ``lost``: the other way round."""

    gained: int
    lost: int
    p: float

    def __str__(self) -> str:
        p = format_p(self.p)
        return f"+{self.gained} / -{self.lost} (p {p if p.startswith('<') else '= ' + p})"


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: P(a split at least this uneven | each discordant problem is a coin flip)."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(a: dict[str, bool], b: dict[str, bool], ids: list[str]) -> Paired:
    """Run A against run B on ``ids`` (correctness by id)."""
    gained = sum(1 for i in ids if a[i] and not b[i])
    lost = sum(1 for i in ids if b[i] and not a[i])
    return Paired(gained, lost, mcnemar_exact(gained, lost))


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy (stays inside [0, 1] and is sane at 0 or n correct)."""
    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def format_p(p: float) -> str:
    """Two significant digits (0.014, 0.58, 1); below 0.001 only that."""
    return "< 0.001" if p < 0.001 else f"{p:.2g}"
