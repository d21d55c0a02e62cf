"""Steering vectors: how they are computed from labelled boundary states, stored and checked.

SEAL: v = mean(h | execution steps) - mean(h | reflection and transition steps),
over every calibration sample. RankGuide: the same difference over only the
samples none of whose windows was low rank (r1 < tr1 or r2 < tr2), the paper's
filter against collapsed trajectories. ``h`` is the input of the steering
layer at the boundary token that ends the step. Both come from the same
traces and are saved together with what produced them, so a vector made for
another model, layer or hidden size is refused at load time.

A ``Steering`` is what the SRM's backend applies: ``alpha * v`` added to the
steering layer's input at boundary positions (see ``HFSession``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tandem.artifacts import check_made_for, load_artifact, save_artifact

FORMAT = "tandem-steer/1"
STEER_KINDS = ("rankguide", "seal")


class SteeringError(ValueError):
    """A steering vector file that cannot be used with this model; the message says why."""


@dataclass
class Steering:
    """One vector applied to one model: ``alpha * vector`` at ``layer``'s input, at boundary tokens."""

    vector: torch.Tensor
    alpha: float
    layer: int
    kind: str
    source: str = ""

    def describe(self) -> dict:
        return {"kind": self.kind, "alpha": self.alpha, "layer": self.layer, "file": self.source,
                "norm": round(float(self.vector.norm()), 4)}


def difference(execution: list[np.ndarray], validation: list[np.ndarray]) -> np.ndarray | None:
    """mean(execution) - mean(validation); None when either side has no states."""
    if not execution or not validation:
        return None
    return np.mean(np.stack(execution), 0) - np.mean(np.stack(validation), 0)


@dataclass
class SteerVectors:
    """Both kinds of vector for one model and layer, plus metadata (counts, thresholds, provenance)."""

    vectors: dict[str, np.ndarray]
    meta: dict

    def save(self, path: str | Path) -> None:
        vectors = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in self.vectors.items()}
        save_artifact(path, FORMAT, {"vectors": vectors, "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> "SteerVectors":
        data = load_artifact(path, FORMAT, "steering", "tandem calibrate", SteeringError)
        return cls({k: v.numpy() for k, v in data["vectors"].items()}, data["meta"])

    def for_model(self, hf, kind: str, alpha: float, source: str = "") -> Steering:
        """The ``kind`` vector as a Steering for ``hf``; refuses another model, hidden size or layer range."""
        m = self.meta
        if kind not in STEER_KINDS:
            raise SteeringError(f"steer_kind must be one of {', '.join(STEER_KINDS)}, got {kind!r}")
        check_made_for(m, hf, f"steering vector {source}", SteeringError)
        if not 0 <= int(m["layer"]) < hf.num_layers:
            raise SteeringError(f"steering layer {m['layer']} is outside the SRM's {hf.num_layers} layers")
        v = self.vectors.get(kind)
        if v is None:
            counts = m.get("counts", {}).get(kind, {})
            raise SteeringError(
                f"{source} has no {kind} vector: its calibration kept {counts.get('execution_steps', 0)} execution and "
                f"{counts.get('validation_steps', 0)} reflection/transition steps (both sides are needed)"
            )
        vec = torch.as_tensor(v, dtype=torch.float32)
        return Steering(vec, float(alpha), int(m["layer"]), kind, source)
