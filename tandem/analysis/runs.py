"""Loading eval result files and reducing each to the numbers a table needs.

Runs are compared on the problems they all finished (the intersection of
ids), so a run that is still going cannot flatter or hurt a method by having
solved a different subset. The files of one run split over processes
(``NAME.K-of-N.jsonl``, see ``tandem.eval.shards``) are read back as one run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from tandem.eval import shards
from tandem.eval.runner import IDENTITY, EvalError, ResultsFile, canonical, upgrade_config


METHOD_ORDER = ["srm", "lrm", "specreason", "glimprouter", "mentorcollab", "rankguide"]  # tables' and plots' order


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
        """The run's settings, read as the resume check reads them: defaults filled in for settings added
        after the file was written, and ``seed_scope = "run"`` for files from before it existed."""
        config = upgrade_config(self.header["config"])
        return config.get("settings", {}) if isinstance(config, dict) else {}

    @property
    def state_ends(self) -> set[str]:
        """How a step ends where the SRM takes a boundary state at its last token: at the delimiter, and
        where the run set ``cap_states`` at the ``max_step_tokens`` cut too."""
        return {"boundary", "cap"} if self.settings.get("cap_states", False) else {"boundary"}

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


def save_figure(fig, path: Path) -> None:
    """Write ``path`` (a PNG, for Markdown and the browser) and the same figure as a PDF beside it (vector
    graphics for a paper: TrueType fonts embedded, as publishers ask, and no creation date, so the
    same runs give the same bytes), then close the figure."""
    import matplotlib

    fig.savefig(path)
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(Path(path).with_suffix(".pdf"), metadata={"CreationDate": None})
    pyplot().close(fig)


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
    runs, parts = [], {}
    for f in files:
        header, results, _ = ResultsFile(f).read()
        if header is None:
            raise EvalError(f"{f}: not a tandem eval file (no header)")
        run = Run(f.stem, f, header, results)
        shard = shards.split_stem(f.stem)
        if shard is None:
            runs.append(run)
        else:
            if shard[0] not in parts:
                runs.append(shard[0])  # placeholder: the merged run takes the first shard's place
            parts.setdefault(shard[0], []).append((shard[1], shard[2], run))
    if not runs:
        raise EvalError(f"no eval files found in {', '.join(map(str, paths))}")
    return [merge_shards(r, parts[r]) if isinstance(r, str) else r for r in runs]


def merge_shards(name: str, parts: list[tuple[int, int, Run]]) -> Run:
    """The shard files of one run as one run, results back in problem order (shard K's j-th problem
    is problem j*N + K)."""
    counts = {n for _, n, _ in parts}
    ks = [k for k, _, _ in parts]
    first = parts[0][2]
    if len(counts) > 1 or len(set(ks)) < len(ks):
        raise EvalError(f"the shard files of {name} do not fit together: {', '.join(str(r.path) for *_, r in parts)}")

    def identity(run: Run) -> str:
        h = dict(run.header, dataset={k: v for k, v in run.header.get("dataset", {}).items() if k != "shard"})
        return canonical({k: h.get(k) for k in IDENTITY})

    for _, _, run in parts:
        if identity(run) != identity(first):
            raise EvalError(f"{run.path} and {first.path} are shards of {name} but hold different runs (settings, models or data)")
    (n,) = counts
    order = {(j * n + k): rec for k, _, run in parts for j, rec in enumerate(run.results)}
    header = dict(first.header, dataset={k: v for k, v in first.header["dataset"].items() if k != "shard"},
                  shards=[f"{k}/{n}" for k in sorted(ks)])
    return Run(name, first.path.with_name(f"{name}.jsonl"), header, [order[i] for i in sorted(order)])


def common_ids(runs: list[Run]) -> list[str]:
    ids = [r["id"] for r in runs[0].results]
    shared = set(ids)
    for run in runs[1:]:
        shared &= set(run.by_id())
    return [i for i in ids if i in shared]


def first_problems(runs: list[Run], n: int | None) -> list[Run]:
    """The runs cut to the first ``n`` problems they all finished (in the first run's order): to compare
    at a common prefix, e.g. the part of a long run measured on one machine."""
    if n is None:
        return runs
    if n < 1:
        raise ValueError(f"--limit must be at least 1, not {n}")
    keep = set(common_ids(runs)[:n])
    return [replace(r, results=[rec for rec in r.results if rec["id"] in keep]) for r in runs]


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
