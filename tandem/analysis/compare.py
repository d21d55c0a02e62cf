"""``tandem compare``: two eval files, problem by problem: the same text or not, where they part, and
whether their grades agree.

Greedy decoding is deterministic on one processor model, so a run measured
again (in another session, on another host of the same model) writes byte for
byte the texts of its records, and only the clock differs: then the two
latencies compare, and a mixed file is one run. Another processor model's
kernels round differently, and the texts part somewhere; this says at which
step and after how many characters, and what that did to the grades (paired,
as the report pairs runs). It also answers the method question "which problems
did this run write exactly as the SRM alone would have?".

Written by hand: a diff of two files' records, a few lines no library holds.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from tandem.analysis.report import settings_note, shared_settings
from tandem.analysis.runs import Run, common_ids, load_runs
from tandem.analysis.stats import paired, wilson
from tandem.eval.runner import EvalError
from tandem.hardware import processor


@dataclass(frozen=True)
class Agreement:
    """One problem in both files. ``step``: the first step whose text differs (None when the final
    texts are the same); ``chars``: how many characters of the final texts agree from the start."""

    id: str
    same: bool
    step: int | None
    chars: int
    correct: tuple[bool, bool]
    latency_s: tuple[float, float]


def agreement(a: dict, b: dict) -> Agreement:
    """How record ``b`` agrees with record ``a`` (the same problem in two files). Texts only: who wrote
    a step does not count, so a collaboration run can be set beside the SRM alone."""
    same = a["text"] == b["text"]
    step = None
    if not same:
        sa, sb = ([s["text"] for s in r["steps"]] for r in (a, b))
        step = next((i for i, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
    return Agreement(a["id"], same, step, len(os.path.commonprefix([a["text"], b["text"]])),
                     (bool(a["correct"]), bool(b["correct"])), (a["latency_s"], b["latency_s"]))


def _one_run(path: str | Path) -> Run:
    runs = load_runs([path])
    if len(runs) != 1:
        raise EvalError(f"{path}: holds {len(runs)} runs; compare takes one eval file (or one run's shard files) per side")
    return runs[0]


def compare(a: str | Path, b: str | Path) -> tuple[Run, Run, list[Agreement]]:
    """The two runs and their agreement on every problem both finished (in ``a``'s order)."""
    ra, rb = _one_run(a), _one_run(b)
    ids = common_ids([ra, rb])
    if not ids:
        raise EvalError(f"{a} and {b} have no finished problem in common")
    ba, bb = ra.by_id(), rb.by_id()
    return ra, rb, [agreement(ba[i], bb[i]) for i in ids]


def _describe(run: Run, shared: dict) -> str:
    """The run's file, method, the settings it reads that the other run does not share (as the report's
    settings column says them), and the processors that computed its records."""
    note = settings_note(run, shared)
    procs = sorted({processor(r.get("host")) or "not recorded" for r in run.results})
    what = run.method + ("" if note == "-" else f" {note}")
    return f"`{run.path}` ({what}; computed on {' / '.join(procs)})"


def markdown(ra: Run, rb: Run, rows: list[Agreement]) -> str:
    n = len(rows)
    same = [r for r in rows if r.same]
    parted = [r for r in rows if not r.same]
    ca, cb = ({r.id: r.correct[k] for r in rows} for k in (0, 1))
    ids = [r.id for r in rows]
    both, neither = sum(all(r.correct) for r in rows), sum(not any(r.correct) for r in rows)
    shared = shared_settings([ra, rb])

    def acc(c):
        k = sum(c.values())
        lo, hi = wilson(k, n)
        return f"{k} ({k / n:.1%}, {lo:.1%}-{hi:.1%})"

    lines = [
        "# tandem compare", "",
        f"A: {_describe(ra, shared)}", "", f"B: {_describe(rb, shared)}", "",
        f"Problems in both: {n}. **Same text: {len(same)} of {n}.**",
    ]
    if parted:
        lines[-1] += (
            f" The other {len(parted)} part at step {statistics.median(r.step for r in parted):g} (median; first step 0) "
            f"after {statistics.median(r.chars for r in parted):g} characters (median) in common."
        )
    lines += [
        "",
        f"Grades agree on {both + neither} of {n} (both right {both}, both wrong {neither}). "
        f"A solves {acc(ca)}, B {acc(cb)}; B against A: {paired(cb, ca, ids)} (exact McNemar).",
        "",
        f"Mean latency: A {statistics.fmean(r.latency_s[0] for r in rows):.1f} s, "
        f"B {statistics.fmean(r.latency_s[1] for r in rows):.1f} s"
        + (f"; on the {len(same)} problems with the same text A {statistics.fmean(r.latency_s[0] for r in same):.1f} s, "
           f"B {statistics.fmean(r.latency_s[1] for r in same):.1f} s." if same and parted else "."),
        "",
        "| problem | same text | parts at step | characters in common | A correct | B correct | A latency (s) | B latency (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    mark = {True: "yes", False: "no"}
    for r in rows:
        lines.append(f"| {r.id} | {mark[r.same]} | {'-' if r.step is None else r.step} | {r.chars} | {mark[r.correct[0]]} | "
                     f"{mark[r.correct[1]]} | {r.latency_s[0]:.1f} | {r.latency_s[1]:.1f} |")
    return "\n".join(lines) + "\n"
