"""Loading eval result files and reducing each to the numbers a table needs.

Runs are compared on the problems they all finished (the intersection of
ids), so a run that is still going cannot flatter or hurt a method by having
solved a different subset.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from tandem.eval.runner import EvalError, ResultsFile


@dataclass
class Run:
    name: str
    path: Path
    header: dict
    results: list[dict]

    @property
    def method(self) -> str:
        return self.header["config"]["method"]

    @property
    def settings(self) -> dict:
        """The run's settings, with defaults filled in for settings added after it was written."""
        from tandem.config import Settings

        try:
            return Settings.model_validate(self.header["config"].get("settings", {})).model_dump()
        except Exception:  # noqa: BLE001 - a file from a much older tandem: show what it has
            return self.header["config"].get("settings", {})

    @property
    def steered(self) -> bool:
        return bool(self.header.get("steer"))

    def by_id(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.results}


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Eval files, or folders of them (``*.jsonl``, sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.jsonl"))
        elif p.is_file():
            files.append(p)
        else:
            raise EvalError(f"no such file or folder: {p}")
    runs = []
    for f in files:
        header, results, _ = ResultsFile(f).read()
        if header is None:
            raise EvalError(f"{f}: not a tandem eval file (no header)")
        runs.append(Run(f.stem, f, header, results))
    if not runs:
        raise EvalError(f"no eval files found in {', '.join(map(str, paths))}")
    return runs


def common_ids(runs: list[Run]) -> list[str]:
    ids = [r["id"] for r in runs[0].results]
    shared = set(ids)
    for run in runs[1:]:
        shared &= set(run.by_id())
    return [i for i in ids if i in shared]


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def summarize(run: Run, ids: list[str] | None = None) -> dict:
    """Accuracy, latency, steps, tokens, validation ratio and LRM share over ``ids`` (default: all)."""
    recs = run.by_id()
    rows = [recs[i] for i in ids] if ids is not None else run.results
    n = len(rows)
    lrm_tokens = sum(r["usage"]["lrm"]["completion_tokens"] for r in rows)
    all_tokens = sum(r["usage"]["lrm"]["completion_tokens"] + r["usage"]["srm"]["completion_tokens"] for r in rows)
    return {
        "name": run.name,
        "method": run.method,
        "n": n,
        "accuracy": sum(bool(r["correct"]) for r in rows) / n if n else None,
        "latency_s": _mean(r["latency_s"] for r in rows),
        "steps": _mean(len(r["steps"]) for r in rows),
        "tokens": _mean(r["generated_tokens"] for r in rows),
        "validation_ratio": _mean(r.get("validation_ratio") for r in rows),
        "lrm_share": lrm_tokens / all_tokens if all_tokens else 0.0,
        "rank_available": _mean(any(s["signals"].get("r1") is not None for s in r["steps"]) for r in rows),
    }
