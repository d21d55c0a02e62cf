"""What a policy sees and what it answers: the small interface every method implements.

Like transformers' LogitsProcessor, a policy is a small object with one call:
``choose(view) -> Decision``, asked before every step. It reads signals the
engine already computed and never touches a model or a KV cache. A policy
object lives for one problem, so it may keep per-problem state in ``self``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from tandem.config import Settings

Writer = Literal["srm", "lrm"]


@dataclass
class Signals:
    """Signals at the start of a step, computed by the engine on the SRM's own forward.

    ``entropy``: of the SRM's next-token distribution (the first token of this step).
    ``ranks``: TT ranks r1..rN of the newest window of W boundary states (None before W steps).
    """

    entropy: float | None = None
    ranks: list[int] | None = None

    @property
    def r1(self) -> int | None:
        return self.ranks[0] if self.ranks else None

    @property
    def r2(self) -> int | None:
        return self.ranks[1] if self.ranks and len(self.ranks) > 1 else None

    def to_dict(self) -> dict:
        e = None if self.entropy is None else round(self.entropy, 4)
        return {"entropy": e, "r1": self.r1, "r2": self.r2}


@dataclass
class StepView:
    """Read-only state handed to a policy before step ``index``."""

    index: int
    signals: Signals
    rank_history: list[list[int]]  # ranks of every full window so far, oldest first
    writers: list[str] = field(default_factory=list)  # writer of each finished step


@dataclass
class Decision:
    """Who writes the next step, and why. ``finish``: write the final answer now and stop."""

    writer: Writer
    reason: str
    finish: bool = False


class Policy:
    name: ClassVar[str] = "base"
    needs_srm: ClassVar[bool] = True  # run the SRM at every step start (signals need it)
    reuse_glimpse: bool = True  # an SRM step starts from the step-start distribution already computed

    def __init__(self, settings: Settings):
        self.settings = settings

    def choose(self, view: StepView) -> Decision:
        raise NotImplementedError

    def warnings(self, max_ranks: list[int]) -> list[str]:
        """Settings that cannot work with this model (e.g. a threshold no rank can reach)."""
        return []
