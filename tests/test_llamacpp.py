"""The LRM under in-process llama.cpp (the embedded LRM's own GGUF), with the SRM in transformers."""

from __future__ import annotations

import pytest
import torch

from tandem.config import RunConfig, Settings
from tandem.engine import Engine, _Run
from tandem.prompt import prompt_ids

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (setup.sh installs it)")
pytestmark = pytest.mark.embedded

WORD_PROBLEM = "What is 17 * 3 + 4?"


@pytest.fixture(scope="module")
def engine(embedded_pair):
    from tandem.backends.loading import load_llamacpp

    return Engine(embedded_pair[0], load_llamacpp("embedded", embedded_pair[0].tokenizer))


@pytest.mark.parametrize("method", ["lrm", "rankguide", "specreason"])
def test_methods_with_a_llamacpp_lrm(engine, method):
    trace = engine.solve(WORD_PROBLEM, RunConfig(method=method, max_tokens=120, settings=Settings(te=0.5)))
    assert trace.answer == "55", trace.text
    assert trace.usage["lrm"].completion_tokens + trace.usage["lrm"].scoring_tokens > 0


def test_shared_prefix_cache_gives_fresh_logits_after_handoffs(engine):
    cfg = RunConfig(method="rankguide", max_tokens=60, settings=Settings(te=0.3, max_step_tokens=12))
    r = _Run(engine, prompt_ids(engine.tokenizer, WORD_PROBLEM), cfg, WORD_PROBLEM, None)
    trace = r.execute()
    assert {s.writer for s in trace.steps} == {"srm", "lrm"}
    r.lrm.sync(r.ctx)
    cached = r.lrm.next_logits.clone()
    engine.lrm.llm.reset()  # forget everything: a fresh prefill of the same ids
    fresh = engine.lrm.logits_after(r.ctx.ids)
    # llama.cpp's kernels differ between a one-token decode and a batched prefill (quantised
    # activations): even a plain incremental decode differs from a one-shot prefill by ~0.5 in the
    # logits here. So: same next token, and the same distribution up to that noise.
    assert int(cached.argmax()) == int(fresh.argmax())
    tv = 0.5 * (torch.softmax(cached, -1) - torch.softmax(fresh, -1)).abs().sum()
    assert tv < 0.05, f"total variation {tv:.3f}"
    with pytest.raises(ValueError, match="no hidden states"):
        r.lrm.sync(r.ctx, capture=[len(r.ctx) - 1])
