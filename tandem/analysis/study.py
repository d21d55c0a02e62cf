"""``tandem analyze``: the paper's section-3 study (its Fig. 1) on your own traces.

1. Minimum r1 and r2 over each sample's windows, correct vs incorrect answers
   (the paper: incorrect SRM answers reach lower minimum ranks). A minimum over
   more windows is lower by construction, and incorrect answers run longer, so
   the study also sets the minima side by side at equal window counts,
   gives the first window's r2, which does not depend on length, and the mean
   r2 at each window position (whether r2 itself falls along a trace); and
   where RankGuide's collapse test (W low-rank windows in a row) would have
   stopped each trace, correct and incorrect.
2. First-token entropy of steps whose window is low rank vs high rank (the
   paper: the two signals are complementary, not redundant), and in bands of
   r2 from the lowest tenth up, since a threshold pools the lowest ranks (a
   trajectory repeating itself: confident, low entropy) with moderate ones.
3. Validation step ratio by run (SRM vs LRM) and by outcome.
4. Traces that end in a verbatim loop, and whether the SRM took any boundary
   state while it ran (``tandem.analysis.loops``): a loop inside steps the
   token cap cuts gives the rank signals, and the collapse test, nothing to see.

Ranks exist only where a full window of W boundary states existed, so the
study reports how many samples had any; on short solutions (GSM8K with the
embedded pair) record traces with a smaller ``window``.

The figures go out as PNG and PDF, the summary as Markdown, and the values
behind every figure as JSON (``summary.json``: each sample's minimum ranks,
each step's entropy, each run's validation ratios), so a figure can be drawn
again in a paper's own style from the same numbers.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from tandem.analysis.loops import loop_rows, loop_table, loops_md
from tandem.analysis.runs import Run, first_problems, load_runs, pyplot, save_figure
from tandem.config import Settings
from tandem.policies.rankguide import has_collapsed, rank_is_low


def _stats(xs: list[float]) -> str:
    if not xs:
        return "n=0"
    return f"n={len(xs)}, mean {statistics.fmean(xs):.3f}, median {statistics.median(xs):.3f}"


def window_signals(run: Run, record: dict) -> list[tuple[int, dict]]:
    """``(step index, signals)`` of the steps at which a new full window of boundary states arrived, in
    order: the windows themselves, as the engine's rank history holds them. A step records the ranks of
    the newest window, and a step the ``max_step_tokens`` cap cut takes no state (unless the run set
    ``cap_states``), so the step after it repeats the old window's ranks; the engine reads one state per
    step that ended at a delimiter (a step ends at its first), which the next step's signals show."""
    steps, ends = record["steps"], run.state_ends
    return [(i, s["signals"]) for i, s in enumerate(steps)
            if s["signals"].get("r1") is not None and i > 0 and steps[i - 1]["end"] in ends]


def rank_samples(runs: list[Run]) -> list[dict]:
    """One row per sample with at least one full window: its run and id, whether it is correct, how many
    windows it has, its minimum r1 and r2, its first window's r2 and every window's r2 in order (None and
    [] where the trace records r1 only)."""
    rows = []
    for run in runs:
        for r in run.results:
            windows = [sig for _, sig in window_signals(run, r)]
            r1 = [sig["r1"] for sig in windows]
            r2 = [sig["r2"] for sig in windows if sig.get("r2") is not None]
            if r1:
                rows.append({"run": run.name, "id": r.get("id"), "correct": bool(r["correct"]), "windows": len(r1),
                             "min_r1": min(r1), "min_r2": min(r2) if r2 else None, "first_r2": r2[0] if r2 else None,
                             "r2s": r2})
    return rows


def _by_outcome(rows: list[dict], key: str) -> dict[str, list]:
    """{"correct"|"incorrect": [row[key] for the rows of that outcome]}, rows without a value left out."""
    out = {"correct": [], "incorrect": []}
    for row in rows:
        if row[key] is not None:
            out["correct" if row["correct"] else "incorrect"].append(row[key])
    return out


def min_ranks(rows: list[dict]) -> dict[str, dict[str, list[int]]]:
    """{"r1"|"r2": {"correct"|"incorrect": [per-sample minimum]}} from :func:`rank_samples`' rows."""
    return {rk: _by_outcome(rows, f"min_{rk}") for rk in ("r1", "r2")}


WINDOW_BINS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, None))


def min_r2_by_windows(rows: list[dict]) -> list[dict]:
    """Minimum r2, correct vs incorrect, within bins of equal window count (1, 2, 3-4, 5-8, 9+): the
    comparison of section 1 with trace length held (nearly) fixed. Empty bins are left out."""
    out = []
    for lo, hi in WINDOW_BINS:
        inside = [r for r in rows if r["min_r2"] is not None and r["windows"] >= lo and (hi is None or r["windows"] <= hi)]
        if inside:
            label = f"{lo}+" if hi is None else (str(lo) if lo == hi else f"{lo}-{hi}")
            out.append({"windows": label, **_by_outcome(inside, "min_r2")})
    return out


LAST_POSITION = 9  # windows from the 9th on are pooled: few traces are that long


def r2_by_position(rows: list[dict]) -> list[dict]:
    """r2 of every sample's k-th window (k = 1 .. 8, then 9+ pooled), correct vs incorrect. A falling
    minimum could be the minimum's arithmetic alone; this shows whether r2 itself falls as a trace goes on,
    and whether the outcomes differ at the same position. Positions no sample reaches are left out."""
    out = []
    for k in range(1, LAST_POSITION + 1):
        at = [{"correct": r["correct"], "r2": v} for r in rows for i, v in enumerate(r["r2s"], 1) if min(i, LAST_POSITION) == k]
        if at:
            out.append({"window": f"{k}+" if k == LAST_POSITION else str(k), **_by_outcome(at, "r2")})
    return out


def _settings(run: Run) -> dict:
    """The run's settings over the defaults (a header written by hand, as in tests, may name only some)."""
    return {**Settings().model_dump(), **run.settings}


def _thresholds(settings: dict, tr1: int | None, tr2: int | None) -> tuple[int, int]:
    """The rank thresholds given to the study, else the run's own (``settings``: ``_settings(run)``)."""
    return (tr1 if tr1 is not None else settings["tr1"]), (tr2 if tr2 is not None else settings["tr2"])


def _ranks(signals: dict) -> list[int]:
    return [signals["r1"]] + ([signals["r2"]] if signals.get("r2") is not None else [])


def collapse_points(runs: list[Run], tr1: int | None, tr2: int | None) -> list[dict]:
    """Where RankGuide's collapse test (Eq. 4: the last W windows all low rank) would have stopped each
    trace: one row per sample it fires on, with the step, the sample's length, outcome and how it ended.
    On a trace written without the test (the SRM alone, say) this asks which trajectories it would have
    cut short, and whether any of them were heading for a right answer."""
    out = []
    for run in runs:
        settings = _settings(run)
        t1, t2 = _thresholds(settings, tr1, tr2)
        w = settings["window"]
        for r in run.results:
            history = []  # the windows' ranks so far, as the engine hands them to the policy
            for i, sig in window_signals(run, r):
                history.append(_ranks(sig))
                if has_collapsed(history, w, t1, t2):
                    out.append({"run": run.name, "id": r.get("id"), "correct": bool(r["correct"]), "step": i,
                                "steps": len(r["steps"]), "finish_reason": r.get("finish_reason")})
                    break
    return out


def entropy_by_rank(runs: list[Run], tr1: int | None, tr2: int | None) -> dict[str, list[float]]:
    out = {"low rank": [], "high rank": []}
    for run in runs:
        t1, t2 = _thresholds(_settings(run), tr1, tr2)
        for r in run.results:
            for s in r["steps"]:
                sig = s["signals"]
                if sig.get("r1") is None or sig.get("entropy") is None:
                    continue
                out["low rank" if rank_is_low(_ranks(sig), t1, t2) else "high rank"].append(sig["entropy"])
    return out


def step_signals(runs: list[Run]) -> list[dict]:
    """Every step with a full r2 window: its r2, its first-token entropy and whether its sample is correct."""
    return [{"r2": s["signals"]["r2"], "entropy": s["signals"]["entropy"], "correct": bool(r["correct"])}
            for run in runs for r in run.results for s in r["steps"]
            if s["signals"].get("r2") is not None and s["signals"].get("entropy") is not None]


R2_QUANTILES = (0.1, 0.25, 0.5)  # band edges: the r2 below which a tenth, a quarter, half of the steps lie


def entropy_by_r2_band(steps: list[dict]) -> list[dict]:
    """First-token entropy in bands of r2 cut at the steps' own 10th, 25th and 50th percentiles (so the
    bands carry over to models whose r2 runs higher). Ties stay in the lower band, so the bands are
    only roughly a tenth, 15%, a quarter and a half of the steps; a band left empty by ties is dropped."""
    ordered = sorted(x["r2"] for x in steps)
    if not ordered:
        return []
    # the smallest r2 with at least a share q of the steps at or below it (rounded: 0.1 * 30 is not 3.0)
    edges = sorted({ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)] for q in R2_QUANTILES})
    out, lo = [], None
    for hi in [*edges, None]:
        band = [x["entropy"] for x in steps if (lo is None or x["r2"] > lo) and (hi is None or x["r2"] <= hi)]
        if band:
            label = f"r2 <= {hi}" if lo is None else (f"r2 > {lo}" if hi is None else f"{lo} < r2 <= {hi}")
            out.append({"band": label, "entropy": band})
        lo = hi
    return out


def validation(runs: list[Run]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for run in runs:
        d = {"all": [], "correct": [], "incorrect": []}
        for r in run.results:
            v = r.get("validation_ratio")
            if v is None:
                continue
            d["all"].append(v)
            d["correct" if r["correct"] else "incorrect"].append(v)
        out[run.name] = d
    return out


def _legend_or_note(ax, note: str, **legend) -> None:
    """The legend where something was drawn; otherwise ``note`` across the empty axes, so that a figure
    of traces without full rank windows says why it is empty."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, **legend)
    else:
        ax.text(0.5, 0.5, note, ha="center", va="center", color="0.4", transform=ax.transAxes)


def _length_control(md: list[str], rows: list[dict]) -> list[dict]:
    """Section 1's length control in Markdown: windows per sample, minima at equal window counts, and
    the first window's r2. Returns the binned minima for summary.json."""
    windows = _by_outcome(rows, "windows")
    md.append(f"- windows per sample: correct {_stats(windows['correct'])}; incorrect {_stats(windows['incorrect'])}")
    first = _by_outcome(rows, "first_r2")
    md.append(f"- first window's r2 (independent of length): correct {_stats(first['correct'])}; "
              f"incorrect {_stats(first['incorrect'])}")
    binned = min_r2_by_windows(rows)
    _outcome_table(md, "A minimum over more windows is lower by construction; min r2 at equal window counts:",
                   "windows", binned)
    return binned


def _outcome_table(md: list[str], intro: str, column: str, groups: list[dict]) -> None:
    """Correct vs incorrect statistics in Markdown, one row per group (named by its ``column`` value);
    nothing where there are no groups."""
    if groups:
        md.append(f"\n{intro}\n\n| {column} | correct | incorrect |\n|---|---|---|")
        md += [f"| {g[column]} | {_stats(g['correct'])} | {_stats(g['incorrect'])} |" for g in groups]


def _plot_r2_by_position(plt, positions: list[dict], path: Path) -> None:
    """Mean r2 at each window position, correct and incorrect, with a standard error where n > 1 and
    each point's n beside it."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    for j, (name, color, marker) in enumerate((("correct", "C2", "o"), ("incorrect", "C3", "s"))):
        pts = [(i, p[name]) for i, p in enumerate(positions, 1) if p[name]]
        if not pts:
            continue
        xs = [i - 0.08 + 0.16 * j for i, _ in pts]
        means = [statistics.fmean(v) for _, v in pts]
        errs = [statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0.0 for _, v in pts]
        ax.errorbar(xs, means, yerr=errs, color=color, marker=marker, ms=4, capsize=2, lw=1,
                    label=f"{name} ({sum(len(v) for _, v in pts)} windows)")
        for x, m, (_, v) in zip(xs, means, pts):
            ax.annotate(str(len(v)), (x, m), textcoords="offset points", xytext=(4, -9) if j else (-4, 5),
                        ha="left" if j else "right", fontsize=6, color=color)  # correct above left, incorrect below right
    _legend_or_note(ax, "no sample with a full r2 window", loc="lower left")
    ax.set_xticks(range(1, len(positions) + 1), [p["window"] for p in positions])
    ax.set_xlabel("window position in the sample (n beside each point)")
    ax.set_ylabel("mean r2 (standard error)")
    fig.tight_layout()
    save_figure(fig, path)


def _plot_min_r2_vs_windows(plt, rows: list[dict], path: Path) -> None:
    """Each sample's minimum r2 against its number of windows, correct and incorrect side by side
    (offset a little so that equal points do not hide each other)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    for j, (name, color, marker) in enumerate((("correct", "C2", "o"), ("incorrect", "C3", "x"))):
        pts = [(r["windows"], r["min_r2"]) for r in rows if r["min_r2"] is not None and r["correct"] == (name == "correct")]
        if pts:
            ax.scatter([w - 0.12 + 0.24 * j for w, _ in pts], [v for _, v in pts], s=14, color=color, marker=marker,
                       alpha=0.7, label=f"{name} (n={len(pts)})")
    _legend_or_note(ax, "no sample with a full r2 window", loc="best")
    ax.set_xlabel("full windows in the sample")
    ax.set_ylabel("minimum r2 over the sample's windows")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    save_figure(fig, path)


def _collapse_md(md: list[str], collapsed: list[dict], runs: list[Run]) -> None:
    """Section 1's closing lines: where the collapse test would have stopped these traces."""
    by = _by_outcome(collapsed, "step")
    n = {k: sum(bool(r["correct"]) == (k == "correct") for run in runs for r in run.results) for k in by}
    cut = sum(c["finish_reason"] == "budget" for c in collapsed)
    budget = sum(r.get("finish_reason") == "budget" for run in runs for r in run.results)
    md.append(f"\nThe collapse test (Eq. 4: the last W windows all low rank) fires on {len(collapsed)} of "
              f"{sum(n.values())} traces: {len(by['correct'])} of {n['correct']} correct, {len(by['incorrect'])} of "
              f"{n['incorrect']} incorrect; {cut} of them (of {budget} in all) ran into the token budget.")
    if collapsed:
        md.append("Where it fires (step / the trace's steps): " + ", ".join(
            f"{c['id']} {c['step']}/{c['steps']} ({'correct' if c['correct'] else 'incorrect'}, {c['finish_reason']})"
            for c in collapsed))


def _plot_entropy_vs_r2(plt, steps: list[dict], tr2: int | None, path: Path) -> None:
    """Each step's first-token entropy against its window's r2 (jittered a little: r2 is an integer),
    correct and incorrect samples apart, with the r2 threshold where one was given."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    jitter = np.random.default_rng(0)  # fixed: the same figure from the same traces
    for name, color, marker in (("correct", "C2", "o"), ("incorrect", "C3", "x")):
        pts = [x for x in steps if x["correct"] == (name == "correct")]
        if pts:
            ax.scatter([x["r2"] + jitter.uniform(-0.2, 0.2) for x in pts], [x["entropy"] for x in pts], s=10,
                       color=color, marker=marker, alpha=0.6, label=f"steps of {name} samples (n={len(pts)})")
    if tr2 is not None and steps:
        ax.axvline(tr2, color="0.5", ls="--", lw=0.8)
        ax.annotate(f"tr2 = {tr2}", (tr2, 1), xycoords=("data", "axes fraction"), xytext=(3, -10),
                    textcoords="offset points", fontsize=7, color="0.4")
    # above the axes: inside, it would cover points or the threshold's label wherever they fall
    _legend_or_note(ax, "no step with a full r2 window", loc="lower left", bbox_to_anchor=(0, 1), ncol=2, fontsize=7)
    ax.set_xlabel("r2 of the step's window")
    ax.set_ylabel("first-token entropy (nats)")
    fig.tight_layout()
    save_figure(fig, path)


def analyze(paths: list[str | Path], out: Path, tr1: int | None = None, tr2: int | None = None,
            limit: int | None = None) -> Path:
    """The study on the runs' traces, into ``out``; ``limit``: on the first N problems every run finished
    only (``first_problems``, as ``report --limit``), so a study stays the same while its runs grow."""
    runs = first_problems(load_runs(paths), limit)
    out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    ranked = [r for r in runs if r.method != "lrm"]
    first = f" (the first {limit} problems all the runs finished)" if limit is not None else ""
    md = [f"# tandem analyze\n\nRuns{first}: {', '.join(f'{r.name} ({r.method}, {len(r.results)} problems)' for r in runs)}\n"]

    rows = rank_samples(ranked)
    mins = min_ranks(rows)
    with_ranks = len(rows)
    total = sum(len(r.results) for r in ranked)
    md.append(f"## 1. Minimum TT ranks per sample\n\nSamples with at least one full window: {with_ranks} of {total}.\n")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), dpi=150)
    for ax, rk in zip(axes, ("r1", "r2")):
        groups = {"correct": mins[rk]["correct"], "incorrect": mins[rk]["incorrect"]}
        values = sorted({v for g in groups.values() for v in g})
        for j, (name, color) in enumerate((("correct", "C2"), ("incorrect", "C3"))):
            g = groups[name]
            if g:  # share of the group's samples at each integer rank: the groups differ in size
                ax.bar([v - 0.2 + 0.4 * j for v in values], [g.count(v) / len(g) for v in values], width=0.4,
                       color=color, label=f"{name} (n={len(g)})")
        ax.set_xlabel(f"minimum {rk} over the sample's windows")
        ax.set_ylabel("share of samples")
        if values:
            ax.set_xlim(values[0] - 1, values[-1] + 1)
            if len(values) <= 12 and values[-1] - values[0] <= 15:  # a tick per value only where they cannot crowd
                ax.set_xticks(values)
            else:
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1.25 if len(values) == 1 else None)
        _legend_or_note(ax, "no sample with a full rank window", loc="upper left")
        md.append(f"- min {rk}: correct {_stats(groups['correct'])}; incorrect {_stats(groups['incorrect'])}")
    fig.tight_layout()
    save_figure(fig, out / "min_ranks.png")
    binned = _length_control(md, rows)
    _plot_min_r2_vs_windows(plt, rows, out / "min_r2_vs_windows.png")
    positions = r2_by_position(rows)
    _outcome_table(md, "r2 of each sample's k-th window (not a minimum: whether r2 itself falls along a trace):",
                   "window", positions)
    _plot_r2_by_position(plt, positions, out / "r2_by_position.png")
    collapsed = collapse_points(ranked, tr1, tr2)
    _collapse_md(md, collapsed, ranked)

    ent = entropy_by_rank(ranked, tr1, tr2)
    md.append("\n## 2. Step entropy, low-rank vs high-rank windows\n")
    md += [f"- {k}: {_stats(v)}" for k, v in ent.items()]
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    if any(ent.values()):
        ax.hist([ent["low rank"], ent["high rank"]], bins=20, density=True, color=["C1", "C0"], alpha=0.8,
                label=[f"low rank (n={len(ent['low rank'])})", f"high rank (n={len(ent['high rank'])})"])
    _legend_or_note(ax, "no step with a full rank window")
    ax.set_xlabel("first-token entropy of the step (nats)")
    ax.set_ylabel("density")
    fig.tight_layout()
    save_figure(fig, out / "entropy_by_rank.png")
    steps = step_signals(ranked)
    bands = entropy_by_r2_band(steps)
    if bands:
        md.append("\nFirst-token entropy in bands of r2 (cut at the steps' 10th, 25th and 50th percentiles):\n\n"
                  "| r2 band | entropy |\n|---|---|")
        md += [f"| {b['band']} | {_stats(b['entropy'])} |" for b in bands]
    _plot_entropy_vs_r2(plt, steps, tr2, out / "entropy_vs_r2.png")

    val = validation(runs)
    md.append("\n## 3. Validation step ratio\n\n| run | all | correct | incorrect |\n|---|---|---|---|")
    for name, d in val.items():
        md.append(f"| {name} | {_stats(d['all'])} | {_stats(d['correct'])} | {_stats(d['incorrect'])} |")
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(val)), 3.6), dpi=150)
    names = list(val)
    top = 0.0
    for j, (k, color) in enumerate((("correct", "C2"), ("incorrect", "C3"))):
        means = [statistics.fmean(val[n][k]) if val[n][k] else 0.0 for n in names]
        top = max(top, *means) if means else top
        bars = ax.bar([x + 0.38 * j for x in range(len(names))], means, width=0.38, color=color, label=k)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks([x + 0.19 for x in range(len(names))], names, fontsize=8)
    ax.set_ylim(0, max(0.05, 1.3 * top))
    ax.set_ylabel("mean validation step ratio")
    ax.legend(frameon=False, loc="upper left")
    fig.tight_layout()
    save_figure(fig, out / "validation_ratio.png")

    loops = loop_rows(runs, collapsed)
    loop_counts = loop_table(runs, loops)
    md += loops_md(loop_counts, loops)

    md.append("\n![min ranks](min_ranks.png)\n![min r2 vs windows](min_r2_vs_windows.png)\n![r2 by position](r2_by_position.png)\n![entropy](entropy_by_rank.png)\n![entropy vs r2](entropy_vs_r2.png)\n![validation](validation_ratio.png)\n")
    (out / "summary.md").write_text("\n".join(md))
    data = {"runs": [{"name": r.name, "method": r.method, "path": str(r.path), "problems": len(r.results)} for r in runs],
            "limit": limit, "tr1": tr1, "tr2": tr2, "samples": total, "samples_with_windows": with_ranks,
            "min_ranks": mins, "rank_samples": rows, "min_r2_by_windows": binned, "r2_by_position": positions,
            "entropy_by_rank": ent, "entropy_by_r2_band": bands, "step_signals": steps, "collapse": collapsed, "validation": val,
            "loops": loops, "loops_by_run": loop_counts}
    (out / "summary.json").write_text(json.dumps(data) + "\n")
    return out
