"""One eval split over several processes: ``--shard K/N`` and the files it writes.

Problems are independent units of work, so N processes (on one GPU, on
several machines, or each with its own remote LRM) can each take every N-th
problem: shard K solves problems K, K+N, K+2N, ... and writes its own
resumable file, ``NAME.K-of-N.jsonl`` beside the ``--out`` it was given (no
two processes ever append to one file). The header's dataset entry records
the shard, so a file resumes only as the same shard. ``tandem report`` and
``tandem analyze`` read the N files of a run back as one run named NAME.

Latency in shards is each problem's own wall time while the other shards
share the machine: fine for accuracy, and for latency only when every method
compared ran under the same sharing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence, TypeVar

T = TypeVar("T")

_STEM = re.compile(r"^(?P<name>.+)\.(?P<k>\d+)-of-(?P<n>\d+)$")


class ShardError(ValueError):
    pass


def parse(spec: str | None) -> tuple[int, int] | None:
    """``"K/N"`` -> (K, N), with 0 <= K < N; None stays None."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m:
        raise ShardError(f"--shard takes K/N (e.g. 0/4: the first of four processes), got {spec!r}")
    k, n = int(m[1]), int(m[2])
    if n < 1 or not 0 <= k < n:
        raise ShardError(f"--shard {spec}: K must be in 0..N-1 and N at least 1")
    return k, n


def select(items: Sequence[T], shard: tuple[int, int] | None) -> list[T]:
    """Every N-th item from the K-th (all of them without a shard)."""
    if shard is None:
        return list(items)
    k, n = shard
    return list(items[k::n])


def path(out: Path, shard: tuple[int, int] | None) -> Path:
    """Where shard K of N writes for ``--out out``: ``NAME.K-of-N.jsonl``."""
    if shard is None:
        return out
    k, n = shard
    return out.with_name(f"{out.stem}.{k}-of-{n}{out.suffix or '.jsonl'}")


def info(shard: tuple[int, int] | None) -> dict:
    """What the header's dataset entry adds for a shard (nothing without one)."""
    return {} if shard is None else {"shard": f"{shard[0]}/{shard[1]}"}


def split_stem(stem: str) -> tuple[str, int, int] | None:
    """``NAME.K-of-N`` -> (NAME, K, N); None for a file that is not a shard."""
    m = _STEM.match(stem)
    return (m["name"], int(m["k"]), int(m["n"])) if m else None
