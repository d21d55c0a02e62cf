"""Token sampling: greedy (the papers' setting for R1 models) or seeded temperature / top-p,
and the seed each problem's random draws start from."""

from __future__ import annotations

import hashlib

import torch


def problem_seed(seed: int, prompt: list[int]) -> int:
    """A 31-bit seed from the run's seed and the problem's prompt ids.

    Why: a generator started from the run's seed alone gives every problem the same draws, so
    MentorCollab would probe all problems at the same positions (and at whatever rate that one
    sequence happens to have), and sampling would reuse one noise sequence. Hashing the prompt
    keeps each problem reproducible on its own, whatever order or process it runs in."""
    digest = hashlib.sha256(f"{int(seed)}:{','.join(map(str, prompt))}".encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


class Sampler:
    def __init__(self, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0):
        if temperature < 0 or not 0 < top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        self.temperature = temperature
        self.top_p = top_p
        self.seed = int(seed)  # remote servers sample themselves: they get a seed derived from it
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, logits: torch.Tensor) -> int:
        if self.temperature == 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.detach().float().cpu() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, 0) - sorted_p < self.top_p  # always keeps the top token
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs, 1, generator=self.generator))
