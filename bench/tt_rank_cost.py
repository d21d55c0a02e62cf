"""Cost of one RankGuide rank evaluation: TT ranks of a W x d_hid window (Algorithm 1).

    .venv/bin/python bench/tt_rank_cost.py [--repeats 500]

Inputs are window-shaped like real boundary states (a few shared directions
plus noise), for W = 10 and the hidden sizes of the embedded SRM (896) and of
R1-Distill-1.5B / the embedded LRM (1536). Target: median under 2 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tandem.signals.rank_window import RankWindow


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=500)
    ap.add_argument("--window", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for d in (896, 1536):
        win = RankWindow(hidden_size=d, window=args.window)
        basis = rng.standard_normal((4, d))
        states = [rng.standard_normal(4) @ basis + 0.5 * rng.standard_normal(d) for _ in range(args.repeats + args.window)]
        for h in states[: args.window - 1]:
            win.push(h)
        times = []
        for h in states[args.window - 1 :][: args.repeats]:
            t0 = time.perf_counter()
            ranks = win.push(h.astype(np.float32))
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        print(
            f"d_hid={d} dims={'x'.join(map(str, win.dims))} W={args.window}: "
            f"median {statistics.median(times):.3f} ms, p90 {times[int(0.9 * len(times))]:.3f} ms, "
            f"max {times[-1]:.3f} ms (ranks of last window {ranks})"
        )


if __name__ == "__main__":
    main()
