"""Signals the engine computes where the SRM already runs: entropy, boundaries, TT ranks."""

from tandem.signals.boundary import BoundaryTokens
from tandem.signals.entropy import entropy
from tandem.signals.rank_window import RankWindow
from tandem.signals.tt_rank import auto_dims, tt_decompose, tt_ranks

__all__ = ["BoundaryTokens", "RankWindow", "auto_dims", "entropy", "tt_decompose", "tt_ranks"]
