"""Next-token entropy, the uncertainty signal of GlimpRouter and RankGuide (natural log)."""

from __future__ import annotations

import torch


def entropy(logits: torch.Tensor, top_k: int = 0) -> float:
    """Shannon entropy (nats) of softmax(logits) over the last dimension.

    ``top_k = 0`` uses the full vocabulary. ``top_k > 0`` reproduces GlimpRouter's
    public code: keep the k largest logits and renormalise over them.
    """
    z = logits.detach().float().reshape(-1)
    if top_k and top_k < z.numel():
        z = torch.topk(z, top_k).values
    logp = torch.log_softmax(z, dim=-1)
    return float(-(logp.exp() * logp).sum())
