"""``tandem sweep``: methods x threshold grids from a TOML file, one eval file per point.

    max_tokens = 1024          # run keys shared by every point (method, seed, max_tokens, srm, lrm, steer)
    [settings]                 # settings shared by every point
    window = 10

    [[grid]]
    method = "rankguide"
    te  = [0.7, 0.9]           # a list is swept, a scalar is fixed
    tr1 = [5, 6]

Each point is named after its method and its grid keys (``rankguide_te-0.7_tr1-5``)
and written to ``OUT/<name>.jsonl``; re-running the sweep resumes every point.
``tandem sweep --chunk N`` visits the points round-robin, N problems at a time,
by resuming each eval file on a growing prefix of the problems.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from tandem.config import ConfigError, RunConfig, load_config_file, make_config

RUN_KEYS = ("method", "seed", "max_tokens", "srm", "lrm", "lrm_backend", "steer", "verifier_file")


def expand(path: str | Path) -> list[tuple[str, RunConfig]]:
    data = load_config_file(path)
    grids = data.pop("grid", None)
    if not grids or not isinstance(grids, list):
        raise ConfigError(f"{path}: needs at least one [[grid]] table")
    shared_settings = dict(data.pop("settings", {}) or {})
    unknown = set(data) - set(RUN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; known: {', '.join(RUN_KEYS)}, settings, grid")
    points: list[tuple[str, RunConfig]] = []
    for i, grid in enumerate(grids, 1):
        if "method" not in grid:
            raise ConfigError(f"{path}: grid #{i} has no method")
        keys = sorted(grid)
        values = [v if isinstance(v, list) else [v] for v in (grid[k] for k in keys)]
        if any(len(v) == 0 for v in values):
            raise ConfigError(f"{path}: grid #{i} has an empty list")
        for combo in itertools.product(*values):
            point = dict(zip(keys, combo))
            run = {**data, **{k: v for k, v in point.items() if k in RUN_KEYS}}
            settings = {**shared_settings, **{k: v for k, v in point.items() if k not in RUN_KEYS}}
            try:
                cfg = make_config(run, settings)
            except ConfigError as e:
                raise ConfigError(f"{path}: grid #{i} point {point}: {e}") from None
            name = "_".join([str(point["method"])] + [f"{k}-{_short(v)}" for k, v in point.items() if k != "method"])
            points.append((name, cfg))
    names = [n for n, _ in points]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: points repeat: {', '.join(dupes)}")
    pair = {(c.srm, c.lrm, c.lrm_backend) for _, c in points}
    if len(pair) > 1:
        raise ConfigError(f"{path}: every point must use the same srm/lrm pair (models are loaded once)")
    return points


def _short(v) -> str:
    return str(v).replace("/", "-").replace(" ", "")
