"""``tandem report --by FIELD``: accuracy and latency by an attribute of the problems (MATH-500's
``level`` or ``subject``, any field of a local JSONL).

Where a router helps is a question of difficulty: a method that gains on level-2 problems and loses on
level-5 ones can show the same overall accuracy as one that does the opposite. Eval records do not carry
their problem's attributes; they are read again from the dataset each run's header names
(``datasets.load_from_info``), so files written before this existed break down as well, and a field the
dataset does not have is an error that lists the fields it has.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tandem.analysis.runs import Run, pyplot, save_figure
from tandem.artifacts import safe_name
from tandem.eval.datasets import DatasetError, load_from_info

MISSING = "(none)"


def dataset_lines(runs: list[Run], ids: list[str]) -> tuple[dict[str, dict], set[str]]:
    """(problem id -> its dataset line, for ``ids``; every field name the datasets have), read once from
    each distinct dataset the runs' headers name, whatever the number of fields broken down by."""
    wanted = set(ids)
    lines: dict[str, dict] = {}
    seen: list[dict] = []
    columns: set[str] = set()
    for run in runs:
        info = run.header.get("dataset") or {}
        if info in seen:
            continue
        seen.append(info)
        try:
            problems = load_from_info(info)
        except (DatasetError, KeyError, TypeError) as e:
            raise DatasetError(f"--by: cannot read the dataset {run.path} names ({info}): {e}") from None
        for p in problems:
            columns |= set(p.row)
            if p.id in wanted and p.id not in lines:
                lines[p.id] = p.row
    absent = [i for i in ids if i not in lines]
    if absent:
        raise DatasetError(f"--by: {len(absent)} problem(s) of the runs are not in their dataset, e.g. {absent[0]!r}")
    return lines, columns


def problem_values(lines: dict[str, dict], columns: set[str], field: str) -> dict[str, object]:
    """Problem id -> the value of ``field`` in its dataset line (``MISSING`` where that line lacks it)."""
    if field not in columns:
        raise DatasetError(f"--by {field}: the dataset has no field {field!r}; its fields: {', '.join(sorted(columns))}")
    return {i: _value(line.get(field)) for i, line in lines.items()}


def _value(v):
    """A field's value as a group: a number or a text; a list or object as its JSON; absent or null as ``MISSING``."""
    if v is None:
        return MISSING
    return v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True)


def _order(values) -> list:
    """Numbers in numeric order, then everything else as text; ``MISSING`` last."""
    vs = set(values)
    nums = sorted(v for v in vs if isinstance(v, (int, float)) and not isinstance(v, bool))
    rest = sorted((v for v in vs if v not in nums and v != MISSING), key=str)
    return nums + rest + ([MISSING] if MISSING in vs else [])


def figure_name(field: str) -> str:
    """The bar chart's file for ``field`` (its PDF beside it), as report.md links it."""
    return f"by_{safe_name(field)}.png"


def breakdowns(runs: list[Run], rows: list[dict], ids: list[str], fields: tuple[str, ...],
               gap: tuple[str, str] | None = None) -> list[dict]:
    """``breakdown`` for each of ``fields``, every field checked before any is computed."""
    lines, columns = dataset_lines(runs, ids)
    values = [(field, problem_values(lines, columns, field)) for field in fields]
    return [breakdown(runs, rows, ids, field, v, gap) for field, v in values]


def breakdown(runs: list[Run], rows: list[dict], ids: list[str], field: str, values: dict[str, object],
              gap: tuple[str, str] | None = None) -> dict:
    """Per value of ``field``: its problems, and per run (in the order of ``rows``) the problems solved and
    the mean latency on them. With ``gap`` (the names of the SRM-only and LRM-only runs), also the problems
    the LRM solves and the SRM does not (``lrm_gap``) and how many of them each run solves (``recovered``):
    what collaboration is for, and where it falls short. ``values``: ``problem_values`` of ``field``."""
    groups = _order(values[i] for i in ids)
    by_name = {r.name: r.by_id() for r in runs}
    out = {"field": field, "values": groups, "problems": {}, "runs": {}}
    members = {g: [i for i in ids if values[i] == g] for g in groups}
    for g in groups:
        out["problems"][str(g)] = len(members[g])
    if gap:
        srm, lrm = by_name[gap[0]], by_name[gap[1]]
        extra = {g: [i for i in members[g] if lrm[i]["correct"] and not srm[i]["correct"]] for g in groups}
        out["lrm_gap"] = {"srm": gap[0], "lrm": gap[1], "problems": {str(g): len(extra[g]) for g in groups}}
    for row in rows:
        recs = by_name[row["name"]]
        out["runs"][row["name"]] = {
            str(g): {"solved": sum(bool(recs[i]["correct"]) for i in members[g]),
                     "latency_s": sum(recs[i]["latency_s"] for i in members[g]) / len(members[g])}
            | ({"recovered": sum(bool(recs[i]["correct"]) for i in extra[g])} if gap else {})
            for g in groups
        }
    return out


def _label(field: str, value) -> str:
    return f"{field} {value}" if isinstance(value, (int, float)) else str(value)


def breakdown_tables(b: dict) -> str:
    """Markdown tables with one column per value of the field: accuracy, mean latency, and where the runs
    include the SRM-only and LRM-only ones, the part of the LRM's gain each other run recovers."""
    field, groups, n = b["field"], b["values"], b["problems"]
    head = "| run | " + " | ".join(f"{_label(field, g)} (n={n[str(g)]})" for g in groups) + " |"
    rule = "|---|" + "---|" * len(groups)
    acc = [f"Accuracy by {field} (the problems of each value of the dataset's field {field!r}; solved / n):\n", head, rule]
    lat = [f"\nMean latency (s) by {field}:\n", head, rule]
    for name, cells in b["runs"].items():
        acc.append(f"| {name} | " + " | ".join(
            f"{cells[str(g)]['solved'] / n[str(g)]:.1%} ({cells[str(g)]['solved']}/{n[str(g)]})" for g in groups) + " |")
        lat.append(f"| {name} | " + " | ".join(f"{cells[str(g)]['latency_s']:.1f}" for g in groups) + " |")
    return "\n".join(acc + lat + _gap_table(b)) + "\n"


def _gap_table(b: dict) -> list[str]:
    gap = b.get("lrm_gap")
    if not gap:
        return []
    field, groups, k = b["field"], b["values"], gap["problems"]
    lines = [f"\nThe LRM's gain by {field}: of the problems {gap['lrm']} solves and {gap['srm']} does not (n), how many "
             "each other run solves:\n",
             "| run | " + " | ".join(f"{_label(field, g)} (n={k[str(g)]})" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for name, cells in b["runs"].items():
        if name not in (gap["srm"], gap["lrm"]):
            lines.append(f"| {name} | " + " | ".join(f"{cells[str(g)]['recovered']}" for g in groups) + " |")
    return lines


def breakdown_plot(b: dict, path: Path, title: str = "") -> None:
    """Grouped bars: one group per value of the field, one bar per run, the accuracy on its problems."""
    plt = pyplot()
    groups, names = b["values"], list(b["runs"])
    width_in = min(10.0, max(6.4, 1.2 * len(groups)))
    fig, ax = plt.subplots(figsize=(width_in, 4.0 + 0.2 * len(names)), dpi=150)
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        xs = [j - 0.4 + width * (k + 0.5) for j in range(len(groups))]
        ys = [100 * b["runs"][name][str(g)]["solved"] / b["problems"][str(g)] for g in groups]
        ax.bar(xs, ys, width, label=name, color=f"C{k}")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{_label(b['field'], g)}\n(n={b['problems'][str(g)]})" for g in groups], fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(textwrap.fill(title, int(11 * width_in)), fontsize=8)  # long model names would run off the figure
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)  # below: never on a bar
    fig.tight_layout()
    save_figure(fig, path)
