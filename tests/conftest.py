"""Shared test fixtures: a real byte-level BPE tokenizer trained here and tiny random Qwen2 models.

Nothing is downloaded. End-to-end tests marked ``embedded`` use the real pair
that `tandem setup` prepared, and are skipped with a clear reason if it is not there.
"""

from __future__ import annotations

import os

import pytest
import torch

# Where the tiny models run: TANDEM_TEST_DEVICE=cuda runs the unit tests' engine on a GPU (bench/gpu_check.sh)
TEST_DEVICE = os.environ.get("TANDEM_TEST_DEVICE", "cpu")

CORPUS = [
    "Step 1: add the numbers.\n\nStep 2: multiply by 3.\n\nSo the answer is \\boxed{42}.",
    "First, 12 + 30 = 42.\n\nThen 42 * 2 = 84.\n\nWait, let me verify.\n\nThe total is 84 dollars.",
    "Alternatively, compute (a+b)^2 = a^2 + 2ab + b^2.\n\nHence x = 7.\n\n",
    "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?",
    "We know x\n\nThen y\n\nso z",
] * 20

QWEN_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's split pattern: punctuation keeps its trailing newlines, so ".\n\n" can become one token
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def tiny_qwen(tokenizer, seed: int, layers: int = 4, hidden: int = 64):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(cfg).eval().to(TEST_DEVICE)


@pytest.fixture(scope="session")
def tiny_pair(tiny_tokenizer):
    """Two different random Qwen2 models sharing one tokenizer, wrapped as HFModels."""
    from tandem.backends.hf import HFModel

    srm = HFModel(tiny_qwen(tiny_tokenizer, seed=1, layers=4, hidden=64), tiny_tokenizer, "tiny-srm")
    lrm = HFModel(tiny_qwen(tiny_tokenizer, seed=2, layers=6, hidden=96), tiny_tokenizer, "tiny-lrm")
    return srm, lrm


@pytest.fixture(scope="session")
def tiny_srm_bf16(tiny_tokenizer):
    """tiny_pair's SRM (same name and weights) in bfloat16: a run that must not resume a float32 one."""
    import torch

    from tandem.backends.hf import HFModel

    return HFModel(tiny_qwen(tiny_tokenizer, seed=1, layers=4, hidden=64).to(torch.bfloat16), tiny_tokenizer, "tiny-srm")


@pytest.fixture(scope="session")
def embedded_pair():
    from tandem.backends.embedded import EMBEDDED, is_converted
    from tandem.backends.loading import load_pair

    if not all(is_converted(m) for m in EMBEDDED.values()):
        pytest.skip("embedded pair not prepared: run `tandem setup` (the README set-up line does)")
    srm, lrm, _ = load_pair("embedded", "embedded", device="cpu")
    return srm, lrm


@pytest.fixture(scope="session")
def tiny_pair_dirs(tiny_tokenizer, tmp_path_factory):
    """The tiny pair saved as model folders, for CLI runs in a subprocess (``--srm DIR --lrm DIR``)."""
    root = tmp_path_factory.mktemp("tiny-models")
    dirs = []
    for name, seed, layers, hidden in (("srm", 1, 4, 64), ("lrm", 2, 6, 96)):
        d = root / name
        tiny_qwen(tiny_tokenizer, seed=seed, layers=layers, hidden=hidden).save_pretrained(d)
        tiny_tokenizer.save_pretrained(d)
        dirs.append(d)
    return tuple(dirs)
