"""``tandem regrade``: grade an eval file's records again from their texts, with this tandem's grader.

Why: until 16b0d82 eval's worker threads graded by the numeric fallback alone
(math-verify raised off the main thread, ``tandem/eval/grading.py``), so a file
whose golds are not numbers (MATH-500's fractions, tuples, words) carries
wrong verdicts though its texts are right; and until 8199f20 that fallback read the last number
of any answer (``\\frac{1}{3}`` passed for a gold 3), so a file may carry wrong "correct"
verdicts as well. Regrading recomputes ``answer``,
``correct`` and ``grade_note`` of each math record exactly as ``tandem eval``
does now, and nothing else; code problems (decided by running their tests) are
left as they are. The file is replaced atomically, and its header gains a
``regraded`` entry (when, under which code, which ids changed), so the change
stays on record. Not while an eval is appending to the same file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from tandem.eval.datasets import Problem
from tandem.eval.grading import NO_BOX, grade
from tandem.eval.runner import EvalError, ResultsFile, versions


def _is_math(record: dict) -> bool:
    """Math records carry no grade note or the no-box one; a code record's note is its test outcome."""
    return record.get("grade_note") in (None, NO_BOX)


def regrade(path: Path, write: bool = True) -> tuple[int, list[tuple[str, bool, bool]]]:
    """(math records graded, [(id, old verdict, new verdict) for every record whose grade changed]).
    With ``write``, the changed file replaces the old one."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"{path}: no such eval file")
    header, records, _ = ResultsFile(path).read()
    if header is None:
        raise EvalError(f"{path}: empty; not an eval file")
    graded, changes = 0, []
    for r in records:
        if not _is_math(r) or "text" not in r:
            continue
        graded += 1
        answer, correct, note = grade(Problem(r["id"], r.get("question", ""), r["gold"]), r["text"])
        if bool(correct) != r.get("correct"):
            changes.append((r["id"], bool(r.get("correct")), bool(correct)))
        r.update(answer=answer, correct=bool(correct), grade_note=note)
    if write and changes:
        header.setdefault("regraded", []).append({
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(),
            "changed": [i for i, _, _ in changes],
        })
        tmp = path.with_name(path.name + ".regrade-tmp")
        tmp.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in [header, *records]), encoding="utf-8")
        os.replace(tmp, path)
    return graded, changes
