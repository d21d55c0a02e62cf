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
by resuming each eval file on a growing prefix of the problems; with ``--stop-after 2h`` it starts no
new round once that long has passed, so a sweep sized to a time-limited machine stops with every point
on the same problems (``parse_duration``).

Command-line overrides (``--srm``, ``--lrm``, ``--max-tokens``, ``--set window=4``, ...) replace the file's
top-level keys and ``[settings]`` for every point, so one grid file (the paper's) runs on any model pair.
A key that a ``[[grid]]`` table itself sets is the point's own: overriding it is an error, not a silent
change of the grid.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from tandem.config import ConfigError, RunConfig, load_config_file, make_config

RUN_KEYS = ("method", "seed", "max_tokens", "srm", "lrm", "lrm_backend", "steer", "verifier_file")


def expand(path: str | Path, run_overrides: dict | None = None, setting_overrides: dict | None = None) -> list[tuple[str, RunConfig]]:
    """The grid's points, named. The overrides (run keys, settings) replace the file's shared values."""
    data = load_config_file(path)
    grids = data.pop("grid", None)
    if not grids or not isinstance(grids, list):
        raise ConfigError(f"{path}: needs at least one [[grid]] table")
    shared_settings = dict(data.pop("settings", {}) or {})
    unknown = set(data) - set(RUN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; known: {', '.join(RUN_KEYS)}, settings, grid")
    run_overrides, setting_overrides = dict(run_overrides or {}), dict(setting_overrides or {})
    unknown = set(run_overrides) - set(RUN_KEYS)
    if unknown:
        raise ConfigError(f"not a run key: {', '.join(sorted(unknown))}")
    data.update(run_overrides)
    shared_settings.update(setting_overrides)
    if run_overrides or setting_overrides:  # a bad override is named as such, before any point
        try:
            make_config(data, shared_settings)
        except ConfigError as e:
            raise ConfigError(f"{path} with the command line's values: {e}") from None
    points: list[tuple[str, RunConfig]] = []
    for i, grid in enumerate(grids, 1):
        if "method" not in grid:
            raise ConfigError(f"{path}: grid #{i} has no method")
        clash = sorted(set(grid) & (set(run_overrides) | set(setting_overrides)))
        if clash:
            raise ConfigError(f"{path}: grid #{i} sets {', '.join(clash)} itself; "
                              "the command line overrides only the file's shared keys and [settings]")
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


_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"{_NUMBER}|(?:{_NUMBER}h)?(?:{_NUMBER}m)?(?:{_NUMBER}s)?")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``45m``, ``2h`` or ``1h30m``; a ValueError that shows the forms otherwise."""
    m = _DURATION.fullmatch(text.strip().lower())
    if not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (e.g. 90s, 45m, 2h, 1h30m)")
    plain, h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return plain + 3600 * h + 60 * mins + s
