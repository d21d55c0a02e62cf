"""``tandem report``: the paper's Table 1 (Markdown) and Fig. 3-style Pareto plot from eval files.

Latency is relative to the LRM-only run and steps relative to the SRM-only
run when those runs are among the inputs (else the columns show "-"). A
second table pairs every run with the SRM-only and LRM-only runs on the same
problems (gained / lost, exact McNemar p) and gives each accuracy its 95%
interval: at a few hundred problems most gaps between routers are noise, and
the report should say which are not.
"""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path

from tandem.analysis.runs import Run, common_ids, first_problems, load_runs, pyplot, summarize
from tandem.analysis.stats import paired, wilson

METHOD_ORDER = ["srm", "lrm", "specreason", "glimprouter", "mentorcollab", "rankguide"]


ENGINE_SETTINGS = ("delimiter", "temperature", "top_p", "max_step_tokens", "answer_tokens")


def _settings_note(run: Run, base: dict) -> str:
    """The settings this run's method reads (plus engine-wide ones) that differ from the shared ones."""
    from tandem.policies import POLICIES

    policy = POLICIES.get(run.method)
    relevant = set(ENGINE_SETTINGS) | set(getattr(policy, "reads", ()) if policy else run.settings)
    if run.settings.get("temperature"):
        relevant.add("seed_scope")  # sampled runs draw per problem or per run: two such rows differ only here
    diff = {k: v for k, v in run.settings.items() if k in relevant and base.get(k) != v}
    note = " ".join(f"{k}={v}" for k, v in sorted(diff.items()))
    if run.steered:
        s = run.header["steer"]
        note = f"steer={s.get('kind')} alpha={s.get('alpha')} " + note
    return note.strip() or "-"


def _fmt(x, spec: str) -> str:
    if x is None:
        return "-"
    return format(x, spec) + ("x" if spec == ".2f" else "")


def table(runs: list[Run]) -> tuple[str, list[dict]]:
    ids = common_ids(runs)
    shared = {k: v for k, v in runs[0].settings.items() if all(r.settings.get(k) == v for r in runs)}
    rows = [summarize(r, ids) | {"note": _settings_note(r, shared), "steered": r.steered} for r in runs]
    lrm = _baseline(rows, "lrm")
    srm = _baseline(rows, "srm")
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(key=lambda r: (rank.get(r["method"], 99), r["name"]))
    lines = [
        f"Problems: {len(ids)} (the ids every run finished). Settings shared by all runs: "
        + (", ".join(f"{k}={v!r}" for k, v in sorted(shared.items())) or "-")
        + ". The settings column shows the rest.\n",
        "| run | method | settings | acc. | latency (s) | latency vs LRM | steps | steps vs SRM | tokens | valid. ratio | LRM share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat_rel = r["latency_s"] / lrm["latency_s"] if lrm and lrm["latency_s"] else None
        steps_rel = r["steps"] / srm["steps"] if srm and srm["steps"] else None
        r["latency_vs_lrm"], r["steps_vs_srm"] = lat_rel, steps_rel
        lines.append(
            f"| {r['name']} | {r['method']} | {r['note']} | {_fmt(r['accuracy'], '.1%')} | {_fmt(r['latency_s'], '.1f')} "
            f"| {_fmt(lat_rel, '.2f')} | {_fmt(r['steps'], '.1f')} | {_fmt(steps_rel, '.2f')} | {_fmt(r['tokens'], '.0f')} "
            f"| {_fmt(r['validation_ratio'], '.3f')} | {_fmt(r['lrm_share'], '.1%')} |"
        )
    return "\n".join(lines) + "\n", rows


def paired_table(runs: list[Run], rows: list[dict]) -> str:
    """Each run against the SRM-only and LRM-only runs, problem by problem, in the order of ``rows``."""
    ids = common_ids(runs)
    correct = {r.name: {i: bool(rec["correct"]) for i, rec in r.by_id().items()} for r in runs}
    bases = [(m, _baseline(rows, m)) for m in ("srm", "lrm")]
    bases = [(m, b) for m, b in bases if b]
    lines = [
        f"Paired on the same {len(ids)} problems: +problems the run solves and the {' / '.join(m.upper() for m, _ in bases)}-only "
        "run does not, -the other way round; p: exact McNemar test (two-sided). Accuracy with its 95% Wilson interval.\n",
        "| run | acc. (95% CI) | " + " | ".join(f"vs {m.upper()}-only" for m, _ in bases) + " |",
        "|---|---|" + "---|" * len(bases),
    ]
    for r in rows:
        lo, hi = wilson(sum(correct[r["name"]][i] for i in ids), len(ids))
        cells = ["-" if b is r else str(paired(correct[r["name"]], correct[b["name"]], ids)) for _, b in bases]
        lines.append(f"| {r['name']} | {r['accuracy']:.1%} ({lo:.1%}-{hi:.1%}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _concurrency_note(runs: list[Run], ids: set[str]) -> str:
    """Runs whose problems were solved several at a time (``--workers``): their latencies are not single-stream."""
    marks = []
    for r in runs:
        ws = sorted({rec.get("workers", 1) for rec in r.results if rec["id"] in ids})
        if ws and ws != [1]:
            marks.append(f"{r.name} ({'/'.join(map(str, ws))})")
    if not marks:
        return ""
    return "Latency measured with several problems in flight (`--workers`), not one at a time: " + ", ".join(marks) + "."


def _host_label(h: dict | None) -> str:
    """One machine in a line: name, boot, GPU (or CPU), CPU count and, for a CPU, whether bf16 is in hardware."""
    if not h:
        return "not recorded"
    boot = f" (boot {h['boot']})" if h.get("boot") else ""
    bf16 = {True: ", bf16 in hardware", False: ", bf16 emulated"}.get(h.get("cpu_bf16"), "") if not h.get("gpu") else ""
    return f"{h.get('node')}{boot}: {h.get('gpu') or h.get('cpu')}, {h.get('cpus')} CPUs{bf16}"


def _host_note(runs: list[Run], ids: set[str]) -> str:
    """Latencies from more than one machine (a resumed file may span several): how many problems of each run
    each machine measured and their mean latency there, so that a reader compares runs on one machine."""
    per_run = {r.name: {} for r in runs}  # run -> machine -> latencies
    for r in runs:
        for rec in r.results:
            if rec["id"] in ids:
                per_run[r.name].setdefault(_host_label(rec.get("host")), []).append(rec["latency_s"])
    hosts = sorted({h for lat in per_run.values() for h in lat})
    if len(hosts) < 2:
        return ""
    names = {h: chr(ord("A") + i) for i, h in enumerate(hosts)}
    machines = "; ".join(f"{names[h]} = {h}" for h in hosts)
    shares = ", ".join(
        f"{n} " + " / ".join(f"{names[h]} {len(xs)} ({statistics.fmean(xs):.1f} s)" for h, xs in sorted(lat.items()))
        for n, lat in per_run.items()
    )
    return f"Latency measured on more than one machine: {machines}. Problems per machine (mean latency there): {shares}."


def _load_note(runs: list[Run], ids: set[str]) -> str:
    """Problems finished while other work loaded the machine (1-minute load average above its CPUs by half
    again): their latencies were slowed by it. The load average lags, so this flags, it does not measure."""
    marks = []
    for r in runs:
        rs = [rec for rec in r.results if rec["id"] in ids and rec.get("load") is not None and rec.get("host")]
        busy = [rec for rec in rs if rec["load"] > 1.5 * max(1, rec["host"].get("cpus") or 1)]
        if busy:
            marks.append(f"{r.name} ({len(busy)} of {len(rs)})")
    if not marks:
        return ""
    return "Problems finished while the machine's load average was above 1.5x its CPUs (other work sharing them): " + ", ".join(marks) + "."


def _baseline(rows: list[dict], method: str) -> dict | None:
    """The unsteered run of ``method`` that the relative columns divide by."""
    return next((r for r in rows if r["method"] == method and not r["steered"]), None)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by a faster-or-equal, more-or-equally accurate point; sorted by latency."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def pareto_plot(rows: list[dict], path: Path, title: str = "") -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    markers = {"srm": "s", "lrm": "D", "rankguide": "*", "glimprouter": "o", "specreason": "^", "mentorcollab": "v"}
    methods = sorted({r["method"] for r in rows}, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99)
    labels = []
    for i, m in enumerate(methods):
        pts = [(r["latency_s"], 100 * r["accuracy"]) for r in rows if r["method"] == m and r["latency_s"] is not None]
        color = f"C{i}"
        ax.scatter(*zip(*pts), marker=markers.get(m, "o"), s=90 if m == "rankguide" else 45, color=color, label=m, zorder=3)
        labels += [(_point_label(r), (r["latency_s"], 100 * r["accuracy"]), color)
                   for r in rows if r["method"] == m and r["latency_s"] is not None and r["name"] != m]
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot(*zip(*front), color=color, lw=1.2, alpha=0.8, zorder=2)
    ax.set_xlabel("mean latency per problem (s)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=True, framealpha=0.9, edgecolor="0.8", fontsize=9)  # framed: a one-entry legend must not read as a data point
    if title:
        ax.set_title(textwrap.fill(title, 80), fontsize=9)  # long model names would run off the figure
    fig.tight_layout()
    _place_labels(fig, ax, labels)
    fig.savefig(path)
    plt.close(fig)


def _point_label(row: dict) -> str:
    """What tells this point from the method's others: its settings column (only what differs from the
    shared settings, so no ``lookahead-16_..._seed-1`` repeated at every point), else its run name."""
    if row.get("note", "-") != "-":
        return row["note"]
    return row["name"].removeprefix(row["method"]).strip("_") or row["name"]


def _place_labels(fig, ax, labels: list[tuple[str, tuple[float, float], str]]) -> None:
    """Annotate each point at the first of a few offsets whose text box stays in the axes and overlaps no earlier label.

    Operating points of different methods often sit within a few pixels of each other; a fixed
    offset makes their labels print over one another.
    """
    fig.canvas.draw()  # fixes the axis limits, so text boxes can be measured
    renderer = fig.canvas.get_renderer()
    offsets = [((5, 4), "left"), ((5, -11), "left"), ((-5, 4), "right"), ((-5, -11), "right"), ((5, 12), "left"),
               ((5, -19), "left"), ((-5, 12), "right"), ((-5, -19), "right"), ((5, 20), "left"), ((5, -27), "left")]
    placed = []
    for text, xy, color in labels:
        tried = []  # (overlapping area, offset) of each offset that failed, for when none is free
        for (dx, dy), ha in offsets:
            a = ax.annotate(text, xy, textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=7, color=color)
            box = a.get_window_extent(renderer)
            a.remove()
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            clash = sum(_overlap(box, b) for b in placed)
            if inside and clash == 0:
                tried = [(0.0, (dx, dy), ha)]
                break
            if inside:
                tried.append((clash, (dx, dy), ha))
        _, (dx, dy), ha = min(tried, key=lambda t: t[0]) if tried else (0.0, *offsets[0])
        a = ax.annotate(text, xy, textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=7, color=color)
        placed.append(a.get_window_extent(renderer))


def _overlap(a, b) -> float:
    """Area (pixels) shared by two boxes."""
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _model(header: dict, role: str) -> str:
    """A model's name with its dtype, and its device when that is not the CPU (latency means nothing
    without it); files written before tandem recorded the runtime are unmarked."""
    m = header["models"][role]
    runtime = m.get("runtime") or {}
    marks = [runtime.get("dtype")] + ([runtime["device"]] if runtime.get("device", "cpu") != "cpu" else [])
    marks = [x for x in marks if x]
    return f"{m['name']} ({', '.join(marks)})" if marks else m["name"]


def report(paths: list[str | Path], out: Path | None = None, limit: int | None = None) -> Path:
    """Write report.md and pareto.png next to the runs (or into ``out``); return the folder.
    ``limit``: compare on the first N problems every run finished only."""
    runs = first_problems(load_runs(paths), limit)
    first = Path(paths[0])
    out = out or (first if first.is_dir() else first.parent)
    out.mkdir(parents=True, exist_ok=True)
    md, rows = table(runs)
    ids = set(common_ids(runs))  # the notes speak of the problems the table compares
    for note in (_concurrency_note(runs, ids), _host_note(runs, ids), _load_note(runs, ids)):
        if note:
            md += "\n" + note + "\n"
    if ids and (_baseline(rows, "srm") or _baseline(rows, "lrm")):
        md += "\n" + paired_table(runs, rows)
    h = runs[0].header
    title = f"{h['dataset'].get('name')} ({len(ids)} problems) · {_model(h, 'srm')} / {_model(h, 'lrm')}"
    (out / "report.md").write_text(f"# tandem report\n\n{title}\n\n{md}\n![pareto](pareto.png)\n")
    pareto_plot(rows, out / "pareto.png", title)
    return out
