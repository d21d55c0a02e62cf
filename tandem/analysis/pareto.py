"""The Pareto plot of ``tandem report`` (the paper's Fig. 3): accuracy against mean latency, one marker
per operating point, each method's Pareto front drawn, each point labelled with the settings that tell
it from its method's others.

Operating points of different methods often sit within a few pixels of each other, so the labels are
placed rather than printed at a fixed offset: each goes to the first nearby spot that overlaps no other
label and no marker, and where the points crowd too much for that, a number stands beside each marker
and the settings go in a key below the axes. Hollow markers are runs measured mostly on a loaded
machine; bracketed letters name the machines when the latencies come from several. The placement is
this project's own code (matplotlib has no label-repel); the drawing is matplotlib's.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tandem.analysis.runs import METHOD_ORDER, pyplot, save_figure


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
        mine = [r for r in rows if r["method"] == m and r["latency_s"] is not None]
        pts = [(r["latency_s"], 100 * r["accuracy"]) for r in mine]
        color = f"C{i}"
        label = m  # on the first group drawn, so the legend shows a filled marker where the method has one
        for hollow in (False, True):
            group = [p for p, r in zip(pts, mine) if bool(r.get("busy")) == hollow]
            if group:
                ax.scatter(*zip(*group), marker=markers.get(m, "o"), s=90 if m == "rankguide" else 45, edgecolors=color,
                           facecolors="none" if hollow else color, linewidths=1.2, label=label, zorder=3)
                label = None
        labels += [(text, p, color) for p, r in zip(pts, mine) if (text := _point_text(r))]
        front = pareto_front(pts)
        if len(front) > 1:
            ax.plot(*zip(*front), color=color, lw=1.2, alpha=0.8, zorder=2)
    ax.set_xlim(*_at_least(ax.get_xlim(), 0.2 * ax.get_xlim()[1], low=0))
    ax.set_ylim(*_at_least(ax.get_ylim(), 10, low=-2.5, high=102.5))
    ax.set_xlabel("mean latency per problem (s)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    if any(r.get("busy") for r in rows):  # a proxy entry: hollow means the latency was measured on a loaded machine
        ax.scatter([], [], marker="o", s=45, facecolors="none", edgecolors="0.4", label="hollow: most problems\nfinished on a loaded machine")
    if any(r.get("hosts") for r in rows):  # a text-only entry: what the letters beside the points are
        ax.plot([], [], " ", label="[A], [B], ...: the machine that\nmeasured the latency (report.md)")
    ax.legend(frameon=True, framealpha=0.9, edgecolor="0.8", fontsize=9)  # framed: a one-entry legend must not read as a data point
    if title:
        ax.set_title(textwrap.fill(title, 80), fontsize=9)  # long model names would run off the figure
    fig.tight_layout()
    points = [(r["latency_s"], 100 * r["accuracy"]) for r in rows if r["latency_s"] is not None]
    drawn, clean = _place_labels(fig, ax, labels, points)
    if not clean:  # too crowded for its settings beside each marker: a number there, the settings in a key below
        for a in drawn:
            a.remove()
        _key_below(fig, ax, labels)
        _place_labels(fig, ax, [(str(n), xy, color) for n, (_, xy, color) in enumerate(labels, 1)], points)
    save_figure(fig, path)


def _at_least(lims: tuple[float, float], span: float, low: float = float("-inf"), high: float = float("inf")) -> tuple[float, float]:
    """Axis limits widened about their middle to at least ``span``, kept within [low, high] where they
    fit. The plot's axes span at least a fifth of the largest latency and ten points of accuracy, so
    that two points a second or a problem apart do not fill the figure as if they were far apart."""
    lo, hi = lims
    if hi - lo >= span:
        return lo, hi
    lo = max(min((lo + hi - span) / 2, high - span), low)
    return lo, lo + span


def _key_below(fig, ax, labels: list[tuple[str, tuple[float, float], str]]) -> None:
    """Grow the figure downwards and list ``n  settings`` for each labelled point there, in its method's
    colour, in two columns: the numbers beside the markers refer to it."""
    rows = (len(labels) + 1) // 2
    line = 11 / 72  # inches per key line (7-point text)
    extra = rows * line + 0.15
    w, h = fig.get_size_inches()
    bottom = ax.get_position().y0 * h  # the axes' lower edge and what is below it (the x label), in inches
    fig.set_size_inches(w, h + extra)
    pos = ax.get_position()
    ax.set_position([pos.x0, (bottom + extra) / (h + extra), pos.width, pos.height * h / (h + extra)])
    for n, (text, _, color) in enumerate(labels, 1):
        col, row = divmod(n - 1, rows)
        fig.text(0.02 + 0.5 * col, (extra - 0.1 - (row + 0.8) * line) / (h + extra), f"{n}  {text}", fontsize=7, color=color)


def _point_text(row: dict) -> str:
    """What the plot prints beside a point: its settings (nothing for a method's one plain run, such as
    ``srm``) and, when the plotted latencies come from more than one machine, the letters of the
    machines that measured this one's (``[C]``): latencies from different machines do not compare."""
    text = _point_label(row) if row["name"] != row["method"] else ""
    if row.get("hosts"):
        text = f"{text} [{row['hosts']}]".strip()
    return text


def _point_label(row: dict) -> str:
    """What tells this point from the method's others: its settings column (only what differs from the
    shared settings, so no ``lookahead-16_..._seed-1`` repeated at every point), else its run name."""
    if row.get("note", "-") != "-":
        return row["note"]
    return row["name"].removeprefix(row["method"]).strip("_") or row["name"]


def _place_labels(fig, ax, labels: list[tuple[str, tuple[float, float], str]], points=()) -> tuple[list, bool]:
    """Annotate each point at the first of a few offsets whose text box stays in the axes and overlaps no
    earlier label and no marker (``points``, data coordinates). Returns the annotations and whether every
    one found a free place next to its marker.

    Operating points of different methods often sit within a few pixels of each other; a fixed
    offset makes their labels print over one another or over a neighbour's marker.
    """
    from matplotlib.transforms import Bbox

    fig.canvas.draw()  # fixes the axis limits, so text boxes can be measured
    renderer = fig.canvas.get_renderer()
    r = 6 * fig.dpi / 72  # a marker's half-width in pixels (markers are about 12 points across)
    centres = [tuple(c) for c in ax.transData.transform(list(points))] if points else []
    offsets = [((5, 4), "left"), ((5, -11), "left"), ((-5, 4), "right"), ((-5, -11), "right"), ((5, 12), "left"),
               ((5, -19), "left"), ((-5, 12), "right"), ((-5, -19), "right"), ((5, 20), "left"), ((5, -27), "left")]
    placed, drawn, clean = [], [], True
    for text, xy, color in labels:
        own = tuple(ax.transData.transform([xy])[0])  # its own marker is what it sits beside, not an obstacle
        markers = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in centres if (x, y) != own]
        tried = []  # (overlapping area, offset) of each offset that failed, for when none is free
        for (dx, dy), ha in offsets:
            a = ax.annotate(text, xy, textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=7, color=color)
            box = a.get_window_extent(renderer)
            a.remove()
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            clash = sum(_overlap(box, b) for b in placed + markers)
            if inside and clash == 0:
                tried = [(0.0, (dx, dy), ha)]
                break
            if inside:
                tried.append((clash, (dx, dy), ha))
        clash, (dx, dy), ha = min(tried, key=lambda t: t[0]) if tried else (None, *offsets[0])
        a = ax.annotate(text, xy, textcoords="offset points", xytext=(dx, dy), ha=ha, fontsize=7, color=color)
        placed.append(a.get_window_extent(renderer))
        drawn.append(a)
        clean = clean and clash == 0 and abs(dy) <= 12  # inside, free, and next to its marker
    return drawn, clean


def _overlap(a, b) -> float:
    """Area (pixels) shared by two boxes."""
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
