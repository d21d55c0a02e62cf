"""``tandem calibrate``: SRM traces on calibration problems -> SEAL and RankGuide steering vectors.

Per problem (one unit of work, saved as soon as it is done so ``--resume``
picks up an interrupted run): the SRM solves it greedily through the engine
(``srm`` method, so the routing signals and TT ranks of every window are
recorded exactly as at inference time), the answer is graded, each step is
labelled from its text, and one extra forward over the finished sequence reads
the steering layer's input at every boundary token that ends a step (the same
value the capture hook sees during decoding; tests/test_engine.py checks that
equality). The vectors are computed at the end from all saved problems, so the
filter thresholds can change without re-running the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tandem.artifacts import Parts, safe_name
from tandem.config import RunConfig
from tandem.eval.datasets import Problem
from tandem.eval.grading import grade
from tandem.policies.rankguide import rank_is_low
from tandem.prompt import prompt_ids
from tandem.steering.vector import SteeringError, SteerVectors, difference
from tandem.step_labels import StepLabeler


@dataclass
class Sample:
    """What calibration keeps of one problem."""

    id: str
    correct: bool
    states: np.ndarray  # (k, d): steering-layer input at the boundary ending each of k steps
    labels: list[str]  # label of each of those k steps
    ranks: list[list[int]]  # ranks of every window seen while solving (may be empty)

    def low_rank(self, tr1: int, tr2: int) -> bool:
        return any(rank_is_low(r, tr1, tr2) for r in self.ranks)

    def save(self, parts: Parts) -> None:
        parts.save(self.id, states=self.states.astype(np.float32), labels=np.array(self.labels, dtype=str),
                   ranks=json.dumps(self.ranks), correct=self.correct, id=self.id)

    @classmethod
    def load(cls, path: Path) -> "Sample":
        z = np.load(path)
        return cls(str(z["id"]), bool(z["correct"]), z["states"], [str(x) for x in z["labels"]], json.loads(str(z["ranks"])))


def boundary_states(hf, ids: list[int], positions: list[int], layer: int) -> np.ndarray:
    """Input of ``layer`` at ``positions`` of ``ids``, from one forward without a cache."""
    if not positions:
        return np.zeros((0, hf.hidden_size), np.float32)
    with hf.lock, torch.inference_mode(), hf.capturing(layer):
        hf.model(input_ids=torch.tensor([ids], device=hf.device), use_cache=False, logits_to_keep=1)
        hs = hf.take_captured()[0]
    return hs[positions].float().cpu().numpy()


def calibrate_one(engine, problem: Problem, config: RunConfig, layer: int, labeler: StepLabeler) -> Sample:
    prompt = prompt_ids(engine.tokenizer, problem.question)
    trace = engine.run(prompt, config, question=problem.question)
    _, correct, _ = grade(problem, trace.text)
    ids, positions, labels = list(prompt), [], []
    for step in trace.steps:
        ids += step.ids
        if step.end == "boundary":
            positions.append(len(ids) - 1)
            labels.append(labeler.label(step.text))
    ranks = [[s.signals["r1"], s.signals["r2"]] for s in trace.steps if s.signals.get("r1") is not None]
    return Sample(problem.id, bool(correct), boundary_states(engine.srm, ids, positions, layer), labels, ranks)


def build_vectors(samples: list[Sample], tr1: int, tr2: int) -> tuple[dict, dict]:
    """Both vectors and their counts. SEAL: all samples; RankGuide: samples with no low-rank window."""
    vectors, counts = {}, {}
    for kind, keep in (("seal", samples), ("rankguide", [s for s in samples if not s.low_rank(tr1, tr2)])):
        ex = [st for s in keep for st, lab in zip(s.states, s.labels, strict=True) if lab == "execution"]
        va = [st for s in keep for st, lab in zip(s.states, s.labels, strict=True) if lab != "execution"]
        v = difference(ex, va)
        if v is not None:
            vectors[kind] = v
        counts[kind] = {"samples": len(keep), "execution_steps": len(ex), "validation_steps": len(va),
                        "norm": None if v is None else round(float(np.linalg.norm(v)), 4)}
    return vectors, counts


def calibrate(
    engine, problems: list[Problem], out: Path, config: RunConfig, layer: int | None = None,
    labeler: StepLabeler | None = None, resume: bool = False, dataset: dict | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    on_resumed: Callable[[list[Sample]], None] | None = None,
) -> SteerVectors:
    import tandem

    config = config.model_copy(update={"method": "srm", "steer": None})
    labeler = labeler or StepLabeler()  # SEAL's keyword rules
    layer = engine.srm.resolve_layer(layer)
    fp = getattr(engine.srm, "fingerprint", None)
    runtime = getattr(engine.srm, "runtime", None)  # device and dtype: bf16 hidden states differ from fp32 ones
    manifest = {"config": config.model_dump(), "layer": layer, "labels": labeler.model_dump(), "srm": engine.srm.name,
                "fingerprint": fp, "runtime": runtime, "dataset": dataset}
    parts = Parts(out, SteeringError)
    done = parts.open(manifest, resume, fill=("runtime",))  # folders from before tandem recorded the runtime
    by_id = {p.id: Sample.load(parts.path(p.id)) for p in problems if safe_name(p.id) in done}
    if on_resumed and by_id:  # once, before any new sample (as run_eval's on_resumed)
        on_resumed(list(by_id.values()))
    for p in problems:
        if p.id in by_id:
            continue
        sample = by_id[p.id] = calibrate_one(engine, p, config, layer, labeler)
        sample.save(parts)  # float32 states, as computed: a resumed run builds the same vectors
        if on_sample:
            on_sample(sample)
    samples = [by_id[p.id] for p in problems]
    s = config.settings
    vectors, counts = build_vectors(samples, s.tr1, s.tr2)
    meta = {
        "model": engine.srm.name, "fingerprint": fp, "runtime": runtime, "hidden_size": engine.srm.hidden_size, "layer": layer,
        "counts": counts, "samples_total": len(samples),
        "accuracy": sum(x.correct for x in samples) / len(samples) if samples else None,
        "samples_with_windows": sum(1 for x in samples if x.ranks),
        "thresholds": {"window": s.window, "tr1": s.tr1, "tr2": s.tr2, "eps": s.eps, "dims": s.dims},
        "dataset": dataset, "labels": labeler.model_dump(), "config": config.model_dump(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tandem": tandem.__version__,
    }
    result = SteerVectors(vectors, meta)
    result.save(out)
    return result
