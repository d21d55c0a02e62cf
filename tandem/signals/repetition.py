"""Verbatim repetition at the end of a sequence: the loop signal.

A small model that loses its way often writes one phrase again and again
(``= \\sqrt{27} - 2 = \\sqrt{27} - 2 = ...``) until the token budget runs out.
Where the phrase holds no step delimiter, no boundary state is taken while it
runs, so RankGuide's rank windows and its collapse test (Eq. 4) never see it
(RESULTS.md, MATH-500: 10 of the SRM's 12 looping budget cuts). This test looks
at the sequence itself: the token ids the engine already holds, or a trace's
text in ``tandem analyze``. It is this project's own addition, not the paper's:
a plain periodicity test, vectorised with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_COPIES = 3  # a unit and two more copies of it: twice can be a restatement, three times is a loop


def trailing_repeat(seq: Sequence[int] | np.ndarray, min_length: int, max_period: int) -> tuple[int, int] | None:
    """``(period, length)`` of the repetition ``seq`` ends in, or None: the smallest period p (up to
    ``max_period``) such that the end of ``seq`` is one unit of p items followed by at least two more
    copies of it (the last may be cut short, as a token budget cuts it), ``length`` items in all, at
    least ``min_length``."""
    items = np.asarray(seq[-(MIN_COPIES + 1) * max_period:])
    for p in range(1, min(max_period, len(items) // MIN_COPIES) + 1):
        differs = np.flatnonzero(items[p:] != items[:-p])
        same = len(items) - p if len(differs) == 0 else len(items) - p - 1 - int(differs[-1])  # trailing agreement
        if same >= (MIN_COPIES - 1) * p and same + p >= min_length:
            return p, same + p
    return None
