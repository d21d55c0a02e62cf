"""Traces that end in a verbatim loop, and whether RankGuide's rank signals could see the loop.

RankGuide's collapse termination (Eq. 4) is aimed at a trace repeating itself: its windows of
boundary states fall to low rank and the test stops it. But the states are taken at step
boundaries. A loop inside one step (``= \\sqrt{27} - 2 = \\sqrt{27} - 2 = ...``, never writing the
delimiter) is cut at ``max_step_tokens`` again and again: no boundary state is taken while it runs
(unless ``cap_states``), no window moves, and neither rank threshold nor the collapse test can see it.
This module finds the traces whose text ends in a verbatim repetition and counts the states taken
while it ran, so ``tandem analyze`` can say how many of a run's token-budget cuts are such loops
and how many of those the rank signals were blind to.

The detector (``tandem.signals.repetition``, this project's own) is the engine's loop signal, read
here on text because a record keeps its steps' texts, not their token ids; a verbatim loop is
verbatim in either.
"""

from __future__ import annotations

import numpy as np

from tandem.analysis.runs import Run
from tandem.signals.repetition import trailing_repeat

MIN_LOOP_CHARS = 64  # shorter repeats ("1, 1, 1") are ordinary mathematics, not a stuck trace
MAX_PERIOD = 1000  # the longest repeated unit looked for (several steps' worth of text)


def trailing_loop(text: str, min_chars: int = MIN_LOOP_CHARS, max_period: int = MAX_PERIOD) -> tuple[int, int] | None:
    """``(period, length)`` in characters of the verbatim repetition ``text`` ends in (a unit and at
    least two more copies, the last possibly cut short, ``min_chars`` or more in all), or None."""
    chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per element
    return trailing_repeat(chars, min_chars, max_period)


def _steps_spanned(steps: list[dict], chars: int) -> list[dict]:
    """The trailing steps written in the loop, the last ``chars`` characters of the trace, in order: the
    last step, and each before it with more than half of its text inside (a loop's first unit often
    matches a few characters of the step before it, the delimiter, by chance; that step is not in it)."""
    out, n = steps[-1:], len(steps[-1]["text"]) if steps else 0
    for step in reversed(steps[:-1]):
        inside = min(len(step["text"]), chars - n)
        if inside * 2 <= len(step["text"]):
            break
        out.append(step)
        n += len(step["text"])
    return out[::-1]


def _has_ranks(run: Run) -> bool:
    return any(s["signals"].get("r1") is not None for r in run.results for s in r["steps"])


def loop_rows(runs: list[Run], collapsed: list[dict]) -> list[dict]:
    """One row per trace that ends in a verbatim loop: its run and id, outcome, how it ended, the loop's
    period and length in characters, the step it starts in, the steps it spans and how each ended, the
    SRM states taken while it ran (steps ended at a delimiter; cut steps too where the run set
    ``cap_states``; the last step never, the trace ends there), the step at which the collapse test
    fires on the trace (``collapsed``: the study's ``collapse_points``; None where it does not, and
    for a run without rank signals) and the repeated unit."""
    fired = {(c["run"], c["id"]): c["step"] for c in collapsed}
    out = []
    for run in runs:
        ranked = _has_ranks(run)
        for r in run.results:
            text = "".join(s["text"] for s in r["steps"])
            loop = trailing_loop(text)
            if loop is None:
                continue
            period, chars = loop
            spanned = _steps_spanned(r["steps"], chars)
            out.append({"run": run.name, "id": r.get("id"), "correct": bool(r["correct"]),
                        "finish_reason": r.get("finish_reason"), "period": period, "chars": chars,
                        "start_step": len(r["steps"]) - len(spanned), "step_ends": [s["end"] for s in spanned],
                        "states": sum(s["end"] in run.state_ends for s in spanned[:-1]),
                        "ranked": ranked, "collapse_step": fired.get((run.name, r.get("id"))),
                        "unit": text[-chars:][:period]})
    return out


def loop_table(runs: list[Run], rows: list[dict]) -> list[dict]:
    """Per run: traces, token-budget cuts, traces ending in a loop, of those the loops during which no
    SRM state was taken (invisible to the rank signals), and the looping traces the collapse test fires
    on, before the loop (at the latest at the step it starts in, which the test would keep from being
    written) and while it runs (None for a run without rank signals)."""
    out = []
    for run in runs:
        mine = [x for x in rows if x["run"] == run.name]
        hits = [x for x in mine if x["collapse_step"] is not None]
        ranked = _has_ranks(run)
        out.append({"run": run.name, "traces": len(run.results),
                    "budget": sum(r.get("finish_reason") == "budget" for r in run.results),
                    "loops": len(mine), "loops_at_budget": sum(x["finish_reason"] == "budget" for x in mine),
                    "without_states": sum(x["states"] == 0 for x in mine),
                    "collapse_before": sum(x["collapse_step"] <= x["start_step"] for x in hits) if ranked else None,
                    "collapse_in": sum(x["collapse_step"] > x["start_step"] for x in hits) if ranked else None})
    return out


def _unit_md(unit: str, width: int = 48) -> str:
    """The repeated unit as a Markdown table cell: newlines shown as \\n, cut to ``width`` characters."""
    text = unit.replace("\n", "\\n").replace("`", "'")
    text = text if len(text) <= width else text[: width - 1] + "…"
    return "`" + text.replace("|", "\\|") + "`"


def loops_md(table: list[dict], rows: list[dict]) -> list[str]:
    """Section 4 of ``tandem analyze``'s summary: the per-run counts, then one line per loop."""
    md = ["\n## 4. Loops\n",
          f"A trace ends in a loop when its text ends in one unit repeated verbatim at least three times "
          f"({MIN_LOOP_CHARS} characters or more). The SRM takes a state at each step that ends at the "
          "delimiter (and at a cut one with `cap_states`); a loop during which it takes none is invisible to "
          "the rank signals and to the collapse test.\n",
          "| run | traces | budget cuts | end in a loop (at the budget) | no state in the loop | "
          "collapse test fires: before the loop / in it |", "|---|---|---|---|---|---|"]
    for t in table:
        fires = "-" if t["collapse_before"] is None else f"{t['collapse_before']} / {t['collapse_in']}"
        md.append(f"| {t['run']} | {t['traces']} | {t['budget']} | {t['loops']} ({t['loops_at_budget']}) | "
                  f"{t['without_states']} | {fires} |")
    if rows:
        md += ["\n| run | id | correct | repeated unit | period | steps (cut) | states | collapse test at step |",
               "|---|---|---|---|---|---|---|---|"]
        for x in rows:
            cut = sum(e == "cap" for e in x["step_ends"])
            at = "-" if not x["ranked"] else (x["collapse_step"] if x["collapse_step"] is not None else "no")
            md.append(f"| {x['run']} | {x['id']} | {'yes' if x['correct'] else 'no'} | {_unit_md(x['unit'])} | "
                      f"{x['period']} | {x['start_step']}-{x['start_step'] + len(x['step_ends']) - 1} ({cut}) | "
                      f"{x['states']} | {at} |")
    return md
