"""Verbatim loops at the end of a trace (`tandem.analysis.loops`): the periodicity test, and whether the
SRM took any boundary state while a loop ran, on hand-written records."""

from __future__ import annotations

from pathlib import Path

from tandem.analysis.loops import loop_rows, loop_table, loops_md, trailing_loop
from tandem.analysis.runs import Run
from tandem.analysis.study import collapse_points

OPENING = "We expand the product and collect the terms of equal degree.\n\n"


def test_a_unit_repeated_three_times_at_the_end_is_a_loop_even_when_the_budget_cuts_it_short():
    unit = " = \\sqrt{27} - 2"  # 16 characters, as one of the 0.5B's MATH-500 loops
    assert trailing_loop(OPENING + unit * 10) == (16, 160)
    assert trailing_loop(OPENING + unit * 10 + " = \\sq") == (16, 166)  # cut inside the unit
    assert trailing_loop(OPENING + "=" * 80) == (1, 80)
    assert trailing_loop(OPENING + "x" + "ab" * 40) == (2, 80)  # the smallest period, not 4 or 8


def test_short_repeats_and_ordinary_endings_are_not_loops():
    assert trailing_loop(OPENING + "The roots are 1, 1, 1, 1.") is None  # repeated, but under 64 characters
    assert trailing_loop(OPENING + "A" * 40 + "B" * 40) is None  # 40 of one character: under 64
    unit = "Now we check the second case, where the sum is even and the product odd. "
    assert trailing_loop(OPENING + unit * 2) is None  # a unit and one copy: two, not three
    assert trailing_loop(OPENING + unit * 3) == (len(unit), 3 * len(unit))
    assert trailing_loop(OPENING + "So the answer is $\\boxed{42}$.") is None
    assert trailing_loop("") is None


def _step(text: str, end: str, r2: int | None = None) -> dict:
    signals = {"entropy": 0.1, "r1": None if r2 is None else 4, "r2": r2}
    return {"writer": "srm", "text": text, "end": end, "signals": signals}


def test_a_loop_inside_cut_steps_takes_no_state_and_one_across_steps_does():
    """Three records: a loop inside steps the token cap cut (no delimiter: no state, no window, the
    collapse test blind), the same display repeated step after step (a state at each, low rank: the
    collapse test fires while it runs) and a trace that ends normally."""
    inside = OPENING + " = (x - a)^2 (x - b)" * 6
    cut = {"id": "cut", "correct": False, "finish_reason": "budget", "steps": [
        _step(OPENING, "boundary"), _step(inside[len(OPENING):70], "cap", 44), _step(inside[70:], "budget", 44)]}
    display = "\\[\n(x - h)^2 + (y - k)^2 = 1\n\\]\n\n"
    across = {"id": "across", "correct": False, "finish_reason": "budget", "steps": [
        _step(OPENING, "boundary"), _step(display, "boundary", 44), _step(display, "boundary", 20),
        _step(display, "boundary", 18), _step(display, "boundary", 16), _step(display[:20], "budget", 16)]}
    fine = {"id": "fine", "correct": True, "finish_reason": "eos", "steps": [
        _step(OPENING, "boundary"), _step("So the answer is $\\boxed{3}$.", "eos", 44)]}
    srm = Run("srm", Path("srm.jsonl"), {"config": {"method": "srm", "settings": {"window": 2, "tr1": 3, "tr2": 41}}},
              [cut, across, fine])
    lrm = Run("lrm", Path("lrm.jsonl"), {"config": {"method": "lrm"}},
              [{**cut, "steps": [{**s, "signals": {"entropy": None, "r1": None, "r2": None}} for s in cut["steps"]]}])
    rows = loop_rows([srm, lrm], collapse_points([srm], None, None))
    assert [(x["run"], x["id"], x["period"], x["states"], x["start_step"], x["collapse_step"]) for x in rows] == [
        ("srm", "cut", 20, 0, 1, None), ("srm", "across", len(display), 4, 1, 3), ("lrm", "cut", 20, 0, 1, None)]
    # the loop's first unit matches the blank line that ends the opening step: that step is not in the loop
    assert rows[0]["step_ends"] == ["cap", "budget"] and rows[1]["step_ends"] == ["boundary"] * 4 + ["budget"]
    assert rows[1]["unit"] in display * 2
    table = loop_table([srm, lrm], rows)
    assert table[0] == {"run": "srm", "traces": 3, "budget": 2, "loops": 2, "loops_at_budget": 2, "without_states": 1,
                        "collapse_before": 0, "collapse_in": 1}
    assert table[1]["collapse_before"] is None and table[1]["without_states"] == 1
    md = "\n".join(loops_md(table, rows))
    assert "| srm | 3 | 2 | 2 (2) | 1 | 0 / 1 |" in md and "| lrm | 1 | 1 | 1 (1) | 1 | - |" in md
    rows_md = [line for line in md.splitlines() if "| across |" in line]
    assert len(rows_md) == 1 and "= 1\\n\\]" in rows_md[0]  # the unit's newlines shown as \n: one table row
    # with cap_states the cut step's last token is a state of its own
    capped = Run("srm", srm.path, {"config": {"method": "srm", "settings": {"window": 2, "cap_states": True}}}, [cut])
    assert loop_rows([capped], [])[0]["states"] == 1
