"""Sliding window of the SRM's step-boundary hidden states and their TT ranks.

The engine pushes one hidden state per reasoning step (the capture layer's
input at the boundary token, and with ``cap_states`` at the last token of a step
the cap cut); once W states exist, every push yields the TT
ranks of the W x d1 x d2 x d3 tensor of the newest W states.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from tandem.signals.tt_rank import max_ranks, parse_dims, tt_ranks


class RankWindow:
    def __init__(self, hidden_size: int, window: int = 10, eps: float = 0.1, dims: str | None = None):
        if window < 2:
            raise ValueError(f"window must be >= 2 steps, got {window}")
        self.window = window
        self.eps = eps
        self.dims = parse_dims(dims, hidden_size)
        self.states: deque[np.ndarray] = deque(maxlen=window)
        self.ranks: list[int] | None = None  # ranks of the newest full window
        self.history: list[list[int]] = []  # ranks of every full window so far, in order

    @property
    def max_ranks(self) -> list[int]:
        return max_ranks(self.window, self.dims)

    def push(self, hidden: np.ndarray) -> list[int] | None:
        """Add one boundary state; return the new window's ranks (None while fewer than W)."""
        self.states.append(np.asarray(hidden, dtype=np.float64).reshape(-1))
        if len(self.states) < self.window:
            return None
        tensor = np.stack(self.states).reshape((self.window,) + self.dims)
        self.ranks = tt_ranks(tensor, self.eps)
        self.history.append(self.ranks)
        return self.ranks
