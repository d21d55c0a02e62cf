"""Files tandem makes from a model and reads back for it (steering vectors, MLP verifiers).

One place decides how they are written (a format tag, a temporary file then a
rename, so an interrupted save leaves nothing that looks finished), how they
are read (``weights_only``, a clear error for a missing or foreign file), how
they are checked against the SRM they are loaded for (hidden size and weights
fingerprint recorded when they were made), and where the work in progress of
the commands that make them lives (``Parts``: one file per finished problem,
so an interrupted run resumes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tandem.eval.datasets import upgrade_info


def save_artifact(path: str | Path, fmt: str, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": fmt, **payload}, tmp)
    tmp.replace(path)


def load_artifact(path: str | Path, fmt: str, what: str, maker: str, error: type[Exception]) -> dict:
    """The saved dict; ``error`` names the file and, for a missing one, the command that makes it."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} file not found: {path} (make one with `{maker}`)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise error(f"{path}: not a tandem {what} file ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{path}: not a tandem {what} file (format {data.get('format') if isinstance(data, dict) else '?'})")
    return data


def check_made_for(meta: dict, hf, what: str, error: type[Exception]) -> None:
    """Refuse an artifact made for another hidden size or other weights than the SRM ``hf``."""
    if meta.get("hidden_size") != hf.hidden_size:
        raise error(
            f"{what} was made for hidden size {meta.get('hidden_size')} ({meta.get('model')}), "
            f"but the SRM {hf.name} has {hf.hidden_size}"
        )
    want, have = meta.get("fingerprint") or {}, getattr(hf, "fingerprint", {}) or {}
    if want.get("value") and have.get("value") and want != have:
        raise error(
            f"{what} was made for {meta.get('model')} ({want['kind']} {str(want['value'])[:12]}…), "
            f"not for the SRM {hf.name} ({have['kind']} {str(have['value'])[:12]}…)"
        )


class Parts:
    """``OUT.parts/`` next to an artifact being made from many problems: a manifest (what the run
    was started with) and one ``.npz`` per finished problem, written as soon as it is done.
    ``open`` refuses a folder from another run, and one from this run unless ``resume`` is given."""

    def __init__(self, out: str | Path, error: type[Exception]):
        self.out = Path(out)
        self.folder = self.out.with_name(self.out.name + ".parts")
        self.error = error

    def open(self, manifest: dict, resume: bool, fill: tuple[str, ...] = ()) -> set[str]:
        """The ids already done. ``fill``: manifest keys an older folder may lack (taken as given).
        The number of problems (``dataset.limit``) is not compared: a resumed run may take more or
        fewer of the same problems."""
        mf = self.folder / "manifest.json"
        if mf.exists():
            if not resume:
                raise self.error(f"{self.folder} holds an earlier run: add --resume to continue it, or delete the folder")
            old, new = _identity(json.loads(mf.read_text())), _identity(manifest)
            for key in fill:
                old.setdefault(key, new.get(key))
            if old != new:
                diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise self.error(f"{self.folder} was started with other settings ({', '.join(diff)}); delete it or use another --out")
            return {p.stem for p in self.folder.glob("*.npz") if not p.name.endswith(".tmp.npz")}
        self.folder.mkdir(parents=True, exist_ok=True)
        mf.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return set()

    def path(self, pid: str) -> Path:
        return self.folder / f"{safe_name(pid)}.npz"

    def save(self, pid: str, **arrays) -> None:
        """Write one problem's arrays; a temporary file then a rename, so a kill leaves no half part."""
        path = self.path(pid)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    def load(self, pid: str):
        return np.load(self.path(pid))


def _identity(manifest: dict) -> dict:
    """What must match for a run to resume: the manifest as it reads back from its file (tuples
    become lists), less the dataset's ``limit``."""
    m = json.loads(json.dumps(manifest))
    if isinstance(m.get("dataset"), dict):
        m["dataset"] = upgrade_info(m["dataset"])
        m["dataset"].pop("limit", None)
    return m


def safe_name(pid: str) -> str:
    """A problem id as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in pid)
