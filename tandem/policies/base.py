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
    ``loop``: period in tokens of the verbatim repetition the generated tokens end in (None: none,
    or not asked for: computed only where ``loop_tokens`` is set).
    """

    entropy: float | None = None
    ranks: list[int] | None = None
    loop: int | None = None

    @property
    def r1(self) -> int | None:
        return self.ranks[0] if self.ranks else None

    @property
    def r2(self) -> int | None:
        return self.ranks[1] if self.ranks and len(self.ranks) > 1 else None

    def to_dict(self) -> dict:
        e = None if self.entropy is None else round(self.entropy, 4)
        out = {"entropy": e, "r1": self.r1, "r2": self.r2}
        return out if self.loop is None else {**out, "loop": self.loop}  # records without loops keep their shape


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


@dataclass
class Review:
    """SpecReason-style verdict on a finished SRM step: keep it, or roll it back and let ``rewrite`` write it."""

    keep: bool
    reason: str
    rewrite: Writer = "lrm"


class Policy:
    name: ClassVar[str] = "base"
    needs_srm: ClassVar[bool] = True  # run the SRM at every step start (signals need it)
    uses_lrm: ClassVar[bool] = True  # False: the LRM is never asked, so its weights need not be loaded
    reuse_glimpse: bool = True  # an SRM step starts from the step-start distribution already computed
    reads: ClassVar[tuple[str, ...]] = ()  # settings this method uses (reports show these)
    reviews: ClassVar[bool] = False  # after each SRM step the engine gets the LRM's 0-9 score and calls review()
    mentored: ClassVar[bool] = False  # SRM steps are written token by token, with probe() asked before each

    def __init__(self, settings: Settings, seed: int = 0):
        self.settings = settings
        self.seed = seed

    def choose(self, view: StepView) -> Decision:
        raise NotImplementedError

    def review(self, view: StepView, score: float) -> Review:
        """After an SRM step (``reviews`` policies): keep it or have it rewritten."""
        return Review(True, "not reviewed")

    def probe(self, word_start: bool) -> bool:
        """Before an SRM token (``mentored`` policies): compare the two models' next tokens here?"""
        return False

    def option_order(self) -> bool | None:
        """Mentored divergence: show the LRM's option first (as A) to the verifier? None: ask in both orders."""
        return False

    def pick(self, p_lrm: float) -> Writer:
        """Mentored divergence: whose continuation to keep, given the verifier's probability for the LRM's."""
        return "srm"

    def warnings(self, max_ranks: list[int]) -> list[str]:
        """Settings that cannot work with this model (e.g. a threshold no rank can reach)."""
        return []
