"""The narrow interface between the engine and a model: a per-sequence Session.

A Session is one model's view of one shared token sequence (the Context). It
remembers how many of the context's tokens are already in its KV cache
(``seen``) and, when asked to work, first feeds only the tokens it has not yet
seen. Nothing crosses this interface as text: token ids in, token ids out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

PROMPT = "prompt"  # writer label of the initial prompt
ENGINE = "engine"  # writer label of tokens the engine inserts (e.g. the final-answer cue)


@dataclass
class Context:
    """The one token sequence both models work on, with who wrote each token."""

    ids: list[int]
    writers: list[str] = field(default_factory=list)
    prompt_len: int = 0

    @classmethod
    def from_prompt(cls, prompt_ids: list[int]) -> "Context":
        return cls(ids=list(prompt_ids), writers=[PROMPT] * len(prompt_ids), prompt_len=len(prompt_ids))

    def append(self, token_id: int, writer: str) -> None:
        self.ids.append(int(token_id))
        self.writers.append(writer)

    def __len__(self) -> int:
        return len(self.ids)

    def truncate(self, length: int) -> None:
        """Drop every token at position >= ``length`` (never into the prompt)."""
        if length < self.prompt_len:
            raise ValueError(f"cannot truncate into the prompt ({length} < {self.prompt_len})")
        del self.ids[length:]
        del self.writers[length:]

    @property
    def generated(self) -> int:
        return len(self.ids) - self.prompt_len


@dataclass
class ModelUsage:
    """What one model did for one request.

    ``prompt_tokens`` counts every token the model processed without having
    generated it (the initial prompt, catch-up on the other model's tokens,
    engine-inserted tokens); ``completion_tokens`` the tokens it generated;
    ``seconds`` the wall time spent in its forward passes and sampling, of
    which ``prefill_seconds`` in forwards that fed tokens it did not generate.
    ``boundary_positions``: step-boundary tokens of the reasoning it fed;
    ``steered_positions``: of those, the ones a steering vector was added to.
    ``scoring_tokens``: tokens fed for side questions on a fork (SpecReason's
    score, MentorCollab's verifier) that never entered the context; they are
    included in ``prompt_tokens``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    prefill_seconds: float = 0.0
    boundary_positions: int = 0
    steered_positions: int = 0
    scoring_tokens: int = 0
    remote: dict | None = None  # what a remote server did (requests, retries, recomputed tokens, ...)

    def record_feed(self, seconds: float, foreign: int) -> None:
        """A forward over context tokens, ``foreign`` of which this model did not generate."""
        self.seconds += seconds
        self.prompt_tokens += foreign
        if foreign:
            self.prefill_seconds += seconds

    def record_side(self, seconds: float, tokens: int) -> None:
        """A forward over ``tokens`` side-question ids on a fork (never part of the context)."""
        self.seconds += seconds
        self.prefill_seconds += seconds
        self.prompt_tokens += tokens
        self.scoring_tokens += tokens

    def to_dict(self) -> dict:
        extra = {"remote": dict(self.remote)} if self.remote is not None else {}
        return extra | {
            "scoring_tokens": self.scoring_tokens,
            "boundary_positions": self.boundary_positions,
            "steered_positions": self.steered_positions,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 4),
            "prefill_seconds": round(self.prefill_seconds, 4),
        }


Sampler = Callable[[torch.Tensor], int]
StopRule = Callable[[int], bool]


class StopTokens:
    """A ``StopRule`` that ends on any of a fixed set of token ids and says which, so a server
    can stop there itself (vLLM's ``stop_token_ids``) instead of being cut off mid-stream.
    ``before`` runs before every check (the engine's cancellation check)."""

    def __init__(self, ids, before: Callable[[], None] | None = None):
        self.token_ids = frozenset(ids)
        self.before = before

    def __call__(self, token_id: int) -> bool:
        if self.before is not None:
            self.before()
        return token_id in self.token_ids


class SessionBase:
    """What every backend's session shares: its role, how much of the context it has fed
    (``seen``), its usage, the logits of the last fed token, and the decode loop."""

    def __init__(self, role: str):
        self.role = role
        self.seen = 0
        self.usage = ModelUsage()
        self._logits: torch.Tensor | None = None

    @property
    def next_logits(self) -> torch.Tensor:
        if self._logits is None:
            raise RuntimeError(f"{self.role}: no logits yet; sync first")
        return self._logits

    def sync(self, ctx: Context, capture=()) -> list:
        raise NotImplementedError

    def peek_ids(self, ctx: Context, extra: list[int], ids: list[int], float32: bool = False) -> torch.Tensor:
        """The logits of the tokens ``ids`` after ``ctx`` + ``extra`` (a side question, as ``peek``).
        ``float32``: computed in float32, not rounded to the model's dtype; a backend whose logits are
        float32 already (llama.cpp) reads them as they are, and the in-process transformers session
        computes them from the final hidden state (``HFSession.peek_ids``)."""
        return self.peek(ctx, extra)[ids]

    def generate(self, ctx: Context, sampler: Sampler, stop: StopRule, max_new: int) -> list[int]:
        """Sample from the next-token logits, append to ``ctx``, feed it, repeat. The last token is
        left unfed (exactly as ``model.generate`` does), to be fed at the next sync."""
        self.sync(ctx)
        out: list[int] = []
        while len(out) < max_new:
            t0 = time.perf_counter()
            tok = sampler(self.next_logits)
            self.usage.seconds += time.perf_counter() - t0
            ctx.append(tok, self.role)
            out.append(tok)
            self.usage.completion_tokens += 1
            if stop(tok) or len(out) >= max_new:
                break
            self.sync(ctx)
        return out


class Session(Protocol):
    role: str
    usage: ModelUsage
    seen: int

    def sync(self, ctx: Context, capture: list[int] = ()) -> list[np.ndarray]:
        """Feed ``ctx.ids[seen:]``; return the capture-layer states at the absolute positions ``capture``."""

    @property
    def next_logits(self) -> torch.Tensor:
        """Logits for the token after the last one fed (valid after a sync)."""

    def generate(self, ctx: Context, sampler: Sampler, stop: StopRule, max_new: int) -> list[int]:
        """Append up to ``max_new`` sampled tokens to ``ctx``, ending after the first that ``stop`` accepts."""

    def peek(self, ctx: Context, extra: list[int]) -> torch.Tensor:
        """Logits after ``ctx`` + ``extra`` without keeping ``extra`` (a side question on a forked cache)."""

    def peek_ids(self, ctx: Context, extra: list[int], ids: list[int], float32: bool = False) -> torch.Tensor:
        """The logits of ``ids`` after ``ctx`` + ``extra``, as ``peek``; ``float32``: not rounded to the
        model's dtype."""

    def rollback(self, length: int) -> None:
        """Forget every token at position >= ``length``."""
