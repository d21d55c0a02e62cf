"""Files tandem makes from a model and reads back for it (steering vectors, MLP verifiers).

One place decides how they are written (a format tag, a temporary file then a
rename, so an interrupted save leaves nothing that looks finished), how they
are read (``weights_only``, a clear error for a missing or foreign file), and
how they are checked against the SRM they are loaded for (hidden size and
weights fingerprint recorded when they were made).
"""

from __future__ import annotations

from pathlib import Path

import torch


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
