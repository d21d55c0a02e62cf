"""The record of one solved problem: steps, signals, usage and timings (the ``--json`` schema)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tandem.backends.base import ModelUsage
from tandem.step_labels import validation_ratio


@dataclass
class Step:
    writer: str  # "srm" | "lrm" | "mixed" (MentorCollab: see tokens_by)
    ids: list[int]
    text: str
    signals: dict
    reason: str
    end: str  # "boundary" | "eos" | "cap" | "budget"
    label: str = "execution"  # "execution" | "reflection" | "transition" (tandem.step_labels)
    tokens_by: dict = field(default_factory=dict)  # {"srm": n, "lrm": m}: who wrote the step's tokens
    rejected: str | None = None  # SpecReason: the SRM draft this step replaced

    def to_dict(self) -> dict:
        return {
            "writer": self.writer,
            "text": self.text,
            "tokens": len(self.ids),
            "signals": self.signals,
            "reason": self.reason,
            "end": self.end,
            "label": self.label,
            "tokens_by": self.tokens_by,
            **({"rejected": self.rejected} if self.rejected is not None else {}),
        }


@dataclass
class Trace:
    question: str
    method: str
    answer: str | None
    text: str
    prompt_tokens: int
    latency_s: float
    config: dict
    steps: list[Step]
    usage: dict[str, ModelUsage]
    finish_reason: str  # "eos" | "budget" | "collapse"
    meta: dict = field(default_factory=dict)
    divergences: list = field(default_factory=list, repr=False)  # MentorCollab (context, SRM option, LRM option) ids; not serialised

    @property
    def lrm_token_share(self) -> float:
        gen = sum(len(s.ids) for s in self.steps)
        return sum(s.tokens_by.get("lrm", 0) for s in self.steps) / gen if gen else 0.0

    @property
    def validation_ratio(self) -> float | None:
        return validation_ratio(s.label for s in self.steps)

    def to_dict(self) -> dict:
        vr = self.validation_ratio
        return {
            "question": self.question,
            "method": self.method,
            "answer": self.answer,
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "latency_s": round(self.latency_s, 4),
            "finish_reason": self.finish_reason,
            "lrm_token_share": round(self.lrm_token_share, 4),
            "validation_ratio": None if vr is None else round(vr, 4),
            "config": self.config,
            "steps": [s.to_dict() for s in self.steps],
            "usage": {k: v.to_dict() for k, v in self.usage.items()},
            **({"meta": self.meta} if self.meta else {}),
        }
