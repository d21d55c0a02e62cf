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

Given two folders (a sweep measured again on another host, in another dtype or
by another tandem), it pairs each run with the one in the other folder that
computes the same thing (``report.computation_key``: method, the settings it
reads, models, budget, seed where it draws; not the machine or dtype) and sets
a table of the pairs above each pair's problem-by-problem comparison.

Written by hand: a diff of two files' records, a few lines no library holds.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from tandem.analysis.report import computation_key, settings_note, shared_settings
from tandem.analysis.runs import Run, common_ids, load_runs
from tandem.analysis.stats import Paired, paired, wilson
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
        raise EvalError(f"{path}: holds {len(runs)} runs; compare takes one eval file (or one run's shard files) per side, or two folders")
    return runs[0]


def compare(a: str | Path, b: str | Path) -> tuple[Run, Run, list[Agreement]]:
    """The two runs and their agreement on every problem both finished (in ``a``'s order)."""
    ra, rb = _one_run(a), _one_run(b)
    rows = _agree(ra, rb)
    if not rows:
        raise EvalError(f"{a} and {b} have no finished problem in common")
    return ra, rb, rows


def _agree(ra: Run, rb: Run) -> list[Agreement]:
    """The agreement of two runs on every problem both finished (none: an empty list)."""
    ba, bb = ra.by_id(), rb.by_id()
    return [agreement(ba[i], bb[i]) for i in common_ids([ra, rb])]


def pair_runs(runs_a: list[Run], runs_b: list[Run]) -> tuple[list[tuple[Run, Run]], list[Run], list[Run]]:
    """(pairs, A's runs left, B's runs left): each run of A with the run of B that computes the same thing.
    Where one side holds several such runs (the same command twice), only runs of the same name pair."""
    keys_a = [computation_key(r) for r in runs_a]
    keys_b = [computation_key(r) for r in runs_b]
    pairs = []
    for ra, ka in zip(runs_a, keys_a):
        same = [rb for rb, kb in zip(runs_b, keys_b) if kb == ka]
        if len(same) > 1 or keys_a.count(ka) > 1:
            same = [rb for rb in same if rb.name == ra.name]
        if len(same) == 1:
            pairs.append((ra, same[0]))
    paired_a, paired_b = {id(x) for x, _ in pairs}, {id(y) for _, y in pairs}
    return pairs, [r for r in runs_a if id(r) not in paired_a], [r for r in runs_b if id(r) not in paired_b]


@dataclass
class FolderComparison:
    """Two folders' runs: the pairs compared, the pairs with no problem finished in both, and each
    folder's runs without a partner."""

    compared: list[tuple[Run, Run, list[Agreement]]]
    empty: list[tuple[Run, Run]]
    left_a: list[Run]
    left_b: list[Run]


def compare_folders(a: str | Path, b: str | Path) -> FolderComparison:
    """Every pair of runs of the two folders that compute the same thing, each with its agreements."""
    pairs, left_a, left_b = pair_runs(load_runs([a]), load_runs([b]))
    if not pairs:
        raise EvalError(f"no run in {a} computes what a run in {b} does (method, the settings it reads, models, "
                        "budget, seed where it draws); to set two different runs side by side, name their files")
    compared, empty = [], []
    for ra, rb in pairs:
        rows = _agree(ra, rb)
        if rows:
            compared.append((ra, rb, rows))
        else:
            empty.append((ra, rb))
    if not compared:
        raise EvalError(f"the runs of {a} and {b} that pair have no finished problem in common")
    return FolderComparison(compared, empty, left_a, left_b)


def _describe(run: Run, shared: dict) -> str:
    """The run's file, method, the settings it reads that the other run does not share (as the report's
    settings column says them), and the processors that computed its records."""
    note = settings_note(run, shared)
    what = run.method + ("" if note == "-" else f" {note}")
    return f"`{run.path}` ({what}; computed on {_processors([run])})"


def _processors(runs) -> str:
    """The processor models that computed the runs' records."""
    return " / ".join(sorted({processor(rec.get("host")) or "not recorded" for run in runs for rec in run.results}))


@dataclass(frozen=True)
class Summary:
    """A pair of runs in numbers: problems, same texts, where the others part, grades, latencies."""

    n: int
    same: int
    part_step: float | None  # median first differing step of the texts that part
    part_chars: float | None  # median characters in common of those
    agree: int
    both: int
    neither: int
    solved: tuple[int, int]
    b_vs_a: Paired  # problems B solves and A does not, the reverse, McNemar p
    latency_s: tuple[float, float]
    latency_same_s: tuple[float, float] | None  # on the problems with the same text, where some part


def summary(rows: list[Agreement]) -> Summary:
    same = [r for r in rows if r.same]
    parted = [r for r in rows if not r.same]
    both, neither = sum(all(r.correct) for r in rows), sum(not any(r.correct) for r in rows)
    ca, cb = ({r.id: r.correct[k] for r in rows} for k in (0, 1))

    def mean_latency(rs):
        return tuple(statistics.fmean(r.latency_s[k] for r in rs) for k in (0, 1))

    return Summary(
        len(rows), len(same),
        statistics.median(r.step for r in parted) if parted else None,
        statistics.median(r.chars for r in parted) if parted else None,
        both + neither, both, neither, (sum(ca.values()), sum(cb.values())), paired(cb, ca, [r.id for r in rows]),
        mean_latency(rows), mean_latency(same) if same and parted else None,
    )


def _accuracy(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k} ({k / n:.1%}, {lo:.1%}-{hi:.1%})"


def markdown(ra: Run, rb: Run, rows: list[Agreement], title: str = "# tandem compare") -> str:
    s = summary(rows)
    shared = shared_settings([ra, rb])
    lines = [
        title, "",
        f"A: {_describe(ra, shared)}", "", f"B: {_describe(rb, shared)}", "",
        f"Problems in both: {s.n}. **Same text: {s.same} of {s.n}.**",
    ]
    if s.part_step is not None:
        lines[-1] += (f" The other {s.n - s.same} part at step {s.part_step:g} (median; first step 0) "
                      f"after {s.part_chars:g} characters (median) in common.")
    lines += [
        "",
        f"Grades agree on {s.agree} of {s.n} (both right {s.both}, both wrong {s.neither}). "
        f"A solves {_accuracy(s.solved[0], s.n)}, B {_accuracy(s.solved[1], s.n)}; B against A: {s.b_vs_a} (exact McNemar).",
        "",
        f"Mean latency: A {s.latency_s[0]:.1f} s, B {s.latency_s[1]:.1f} s"
        + (f"; on the {s.same} problems with the same text A {s.latency_same_s[0]:.1f} s, B {s.latency_same_s[1]:.1f} s."
           if s.latency_same_s else "."),
        "",
        "| problem | same text | parts at step | characters in common | A correct | B correct | A latency (s) | B latency (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    mark = {True: "yes", False: "no"}
    for r in rows:
        lines.append(f"| {r.id} | {mark[r.same]} | {'-' if r.step is None else r.step} | {r.chars} | {mark[r.correct[0]]} | "
                     f"{mark[r.correct[1]]} | {r.latency_s[0]:.1f} | {r.latency_s[1]:.1f} |")
    return "\n".join(lines) + "\n"


def folders_markdown(a: str | Path, b: str | Path, fc: FolderComparison) -> str:
    """The pairs of two folders in one table (a row per pair), then each pair problem by problem."""
    compared = fc.compared
    lines = [
        "# tandem compare", "",
        f"A: `{a}` (computed on {_processors(x for x, _, _ in compared)})", "",
        f"B: `{b}` (computed on {_processors(y for _, y, _ in compared)})", "",
        "Runs paired by what they compute (method, the settings it reads, models, budget, seed where it draws), "
        "whatever machine or dtype computed them; each on the problems both finished.", "",
        "| run (A) | run (B) | problems | same text | texts part at step (median) | grades agree | A solves | B solves "
        "| B vs A | A latency (s) | B latency (s) | B / A latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ra, rb, rows in compared:
        s = summary(rows)
        lines.append(
            f"| {ra.name} | {rb.name} | {s.n} | {s.same} | {'-' if s.part_step is None else f'{s.part_step:g}'} | {s.agree} "
            f"| {s.solved[0]} | {s.solved[1]} | {s.b_vs_a} | {s.latency_s[0]:.1f} | {s.latency_s[1]:.1f} "
            f"| {s.latency_s[1] / s.latency_s[0]:.2f}x |")
    if fc.empty:
        lines += ["", "Paired, but no problem finished in both: " + ", ".join(f"`{x.name}` / `{y.name}`" for x, y in fc.empty) + "."]
    for side, left in (("A", fc.left_a), ("B", fc.left_b)):
        if left:
            lines += ["", f"Runs of {side} without a partner: " + ", ".join(f"`{r.name}` ({r.method})" for r in left) + "."]
    for ra, rb, rows in compared:
        lines += ["", markdown(ra, rb, rows, title=f"## {ra.name} / {rb.name}").rstrip("\n")]
    return "\n".join(lines) + "\n"
