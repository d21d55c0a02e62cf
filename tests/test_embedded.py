"""End-to-end on the embedded pair (Qwen2.5-Coder 0.5B / 1.5B), prepared by `tandem setup`."""

from __future__ import annotations

import json

import pytest
import torch
from accounting import assert_handoff_accounting
from cli_in_process import tandem

from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.prompt import prompt_ids

pytestmark = pytest.mark.embedded

WORD_PROBLEM = "What is 17 * 3 + 4?"


@pytest.fixture(scope="module")
def engine(embedded_pair):
    return Engine(*embedded_pair)


def test_merged_blank_line_tokens_are_boundaries(engine):
    tok = engine.tokenizer
    bounds = engine.boundaries("\n\n")
    for text in (".\n\n", ":\n\n", "\n\n"):
        ids = tok.encode(text, add_special_tokens=False)
        assert len(ids) == 1 and bounds.is_boundary(ids[0]), text
    assert not bounds.is_boundary(tok.encode(".\n", add_special_tokens=False)[0])
    assert bounds.is_eos(151645) and bounds.is_eos(151643)


def test_srm_engine_equals_generate(engine, embedded_pair):
    prompt, n = prompt_ids(engine.tokenizer, WORD_PROBLEM), 28  # past the first step's end (token 22)
    trace = engine.run(prompt, RunConfig(method="srm", max_tokens=n))
    with torch.inference_mode():
        ref = embedded_pair[0].model.generate(
            torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=[151645, 151643]
        )[0, len(prompt):].tolist()
    assert [t for s in trace.steps for t in s.ids] == ref


# Each run of the real pair costs 10-40 s on 2 cores, so no solve here repeats another: GlimpRouter
# runs through the CLI below, and RankGuide with a window short enough (W=2) for this 3-step solution to fill it.
@pytest.mark.parametrize("method", ["srm", "lrm", "rankguide"])
def test_each_method_solves_a_word_problem(engine, method):
    settings = Settings(window=2) if method == "rankguide" else Settings()
    trace = engine.solve(WORD_PROBLEM, RunConfig(method=method, max_tokens=120, settings=settings))
    assert trace.answer == "55", trace.text
    writers = {s.writer for s in trace.steps}
    if method in ("srm", "lrm"):
        assert writers == {method}
    assert_handoff_accounting(trace)
    if method != "lrm":
        assert all(s.signals["entropy"] is not None for s in trace.steps)
    if method == "rankguide":  # the window fills and ranks are reported per step, within the largest possible
        ranked = [s for s in trace.steps if s.signals["r1"] is not None]  # for W=2 and dims 16x14x4: 2 and 32
        assert ranked, "expected at least one full window"
        assert all(1 <= s.signals["r1"] <= 2 and 1 <= s.signals["r2"] <= 32 for s in ranked)


def test_cli_solve_json_and_models():
    res = tandem("solve", WORD_PROBLEM, "--method", "glimprouter", "--json", "--max-tokens", "120", "--set", "te=1.0")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["answer"] == "55" and doc["method"] == "glimprouter" and doc["config"]["settings"]["te"] == 1.0
    assert {s["writer"] for s in doc["steps"]} <= {"srm", "lrm"}
    assert all(s["signals"]["entropy"] is not None for s in doc["steps"])
    assert_handoff_accounting(doc)
    res = tandem("models", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["srm"]["gguf"].endswith(".gguf") and info["lrm"]["cache_ready"]


def test_specreason_scores_every_draft_on_a_fork(engine):
    trace = engine.solve(WORD_PROBLEM, RunConfig(method="specreason", max_tokens=120))
    assert trace.answer == "55", trace.text
    stats = trace.meta["stats"]
    assert stats["reviewed"] >= len([s for s in trace.steps if s.writer == "srm"])
    lrm = trace.usage["lrm"]
    assert lrm.scoring_tokens == stats["reviewed"] * len(engine.scoring_ids)
    assert lrm.prompt_tokens >= lrm.scoring_tokens


def test_mentorcollab_is_reproducible_with_a_seed(engine):
    cfg = RunConfig(method="mentorcollab", max_tokens=20, seed=2, settings=Settings(probe_rate=0.3, lookahead=6))
    a, b = engine.solve(WORD_PROBLEM, cfg), engine.solve(WORD_PROBLEM, cfg)
    assert a.text == b.text and a.meta["stats"] == b.meta["stats"]
    assert a.meta["stats"]["probes"] > 0
    assert sum(sum(s.tokens_by.values()) for s in a.steps) == sum(len(s.ids) for s in a.steps)


def test_steering_the_real_srm_counts_every_boundary(engine, embedded_pair, tmp_path):
    import numpy as np

    from tandem.steering import SteerVectors

    srm = embedded_pair[0]
    v = np.random.default_rng(0).standard_normal(srm.hidden_size).astype(np.float32)
    meta = {"model": srm.name, "fingerprint": srm.fingerprint, "hidden_size": srm.hidden_size, "layer": 12, "counts": {}}
    SteerVectors({"seal": v}, meta).save(tmp_path / "v.pt")
    cfg = RunConfig(method="srm", max_tokens=30, steer=str(tmp_path / "v.pt"), settings=Settings(steer_kind="seal", alpha=0.5))
    trace = engine.solve(WORD_PROBLEM, cfg)
    u = trace.usage["srm"]
    assert u.boundary_positions > 0 and u.steered_positions == u.boundary_positions
    plain = engine.solve(WORD_PROBLEM, RunConfig(method="srm", max_tokens=30))
    assert plain.usage["srm"].steered_positions == 0
