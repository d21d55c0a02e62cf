"""The one place that decides what ends a reasoning step.

A step ends at any token whose text *contains* the delimiter ("\\n\\n" by
default). Qwen's BPE merges the blank line into tokens such as ".\\n\\n" or
")\\n\\n", so a string stop on "\\n\\n" alone would miss most boundaries; the
decision is made once per vocabulary id, by decoding each id on its own.
"""

from __future__ import annotations

import torch


class BoundaryTokens:
    """Set of token ids that end a step, plus the end-of-sequence ids."""

    def __init__(self, tokenizer, delimiter: str = "\n\n", eos_ids: set[int] | None = None, texts: list[str] | None = None):
        """``texts``: each id decoded on its own, if the caller already has them."""
        if not delimiter:
            raise ValueError("the step delimiter must be a non-empty string")
        self.delimiter = delimiter
        if texts is None:
            texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.ids = frozenset(i for i, t in enumerate(texts) if delimiter in t)
        self.eos_ids = frozenset(eos_ids if eos_ids is not None else _eos_ids(tokenizer))

    def is_boundary(self, token_id: int) -> bool:
        return token_id in self.ids

    def is_eos(self, token_id: int) -> bool:
        return token_id in self.eos_ids

    def mask(self, ids: list[int]) -> torch.Tensor:
        """Boolean tensor: which of ``ids`` are boundary tokens."""
        return torch.tensor([i in self.ids for i in ids], dtype=torch.bool)


def _eos_ids(tokenizer) -> set[int]:
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    # chat models end a turn with their own token (<|im_end|> for Qwen, <|eot_id|> for Llama 3)
    for tok in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return ids
