"""Engine tests on tiny random Qwen2 models (real transformers forwards, real KV caches)."""

from __future__ import annotations

import warnings

import pytest
import torch
from accounting import assert_handoff_accounting
from tests_helpers import ensure_alternate  # noqa: F401 - registers the "test-alternate" policy

from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.prompt import prompt_ids
from tandem.signals import BoundaryTokens

QUESTION = "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?"


def run(pair, method, max_tokens=60, **settings):
    engine = Engine(*pair)
    cfg = RunConfig(method=method, max_tokens=max_tokens, settings=Settings(**settings))
    return engine, engine.solve(QUESTION, cfg)


def ctx_ids(engine, trace):
    return prompt_ids(engine.tokenizer, QUESTION) + [t for s in trace.steps for t in s.ids]


@pytest.mark.parametrize("method,which", [("srm", 0), ("lrm", 1)])
def test_single_model_equals_generate(tiny_pair, method, which):
    engine, trace = run(tiny_pair, method, max_tokens=50, max_step_tokens=7)
    model = tiny_pair[which]
    prompt = prompt_ids(engine.tokenizer, QUESTION)
    bounds = engine.boundaries("\n\n")
    with torch.inference_mode():
        ref = model.model.generate(
            torch.tensor([prompt], device=model.device), max_new_tokens=50, do_sample=False,
            eos_token_id=sorted(bounds.eos_ids), pad_token_id=engine.tokenizer.pad_token_id,
        )[0, len(prompt):].tolist()
    assert ctx_ids(engine, trace)[len(prompt):] == ref
    other = trace.usage["lrm" if method == "srm" else "srm"]
    assert other.prompt_tokens == other.completion_tokens == 0


@pytest.mark.parametrize("method,settings", [("test-alternate", {}), ("specreason", {"accept": 9})])
def test_forwards_use_no_deprecated_transformers_argument(tiny_pair, method, settings):
    """transformers 5.24 renamed forward's past_key_values to cache and drops the old name in 5.40,
    which pyproject allows: a FutureWarning from a forward (hand-offs, scoring forks) is a break to come."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        run(tiny_pair, method, max_tokens=30, max_step_tokens=5, **settings)


def test_boundary_tokens_by_id_include_merged_tokens(tiny_tokenizer):
    bounds = BoundaryTokens(tiny_tokenizer)
    texts = {i: tiny_tokenizer.decode([i]) for i in bounds.ids}
    assert any(t == "\n\n" for t in texts.values())
    assert any(t != "\n\n" and "\n\n" in t for t in texts.values()), "a merged token such as '.\\n\\n' must count"
    single = tiny_tokenizer.convert_tokens_to_ids("Ċ")
    assert not bounds.is_boundary(single)
    assert bounds.is_eos(tiny_tokenizer.eos_token_id)


@pytest.mark.parametrize("method", ["test-alternate", "glimprouter", "rankguide"])
def test_handoff_accounting(tiny_pair, method):
    """A model prefills at most: the prompt + the other model's tokens + engine tokens + one per step."""
    engine, trace = run(tiny_pair, method, max_tokens=80, max_step_tokens=6, te=5.9, window=3, delimiter=" ")
    writers = [s.writer for s in trace.steps]
    assert "srm" in writers or "lrm" in writers
    assert_handoff_accounting(trace)


def test_alternating_caches_match_fresh_prefill(tiny_pair):
    """After many handoffs each model's KV cache gives the logits of a fresh prefill of the same ids."""
    from tandem.engine import _Run

    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="test-alternate", max_tokens=40, settings=Settings(max_step_tokens=5))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    trace = r.execute()
    assert {s.writer for s in trace.steps} == {"srm", "lrm"}
    for sess, hf in ((r.srm, tiny_pair[0]), (r.lrm, tiny_pair[1])):
        sess.sync(r.ctx)  # feed what it has not seen yet
        with torch.inference_mode():
            fresh = hf.model(torch.tensor([r.ctx.ids], device=hf.device)).logits[0, -1]
        assert sess.seen == len(r.ctx) == sess.cache.get_seq_length()
        torch.testing.assert_close(sess.next_logits, fresh.float(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cap_states", [False, True])
def test_captured_states_are_the_layer_input_at_boundaries(tiny_pair, cap_states):
    """The rank window receives hidden_states[layer] at each boundary token, as a full forward reports it;
    with ``cap_states`` also at the last token of each step the cap cut (and nowhere else)."""
    from tandem.engine import _Run

    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="srm", max_tokens=40, settings=Settings(window=2, delimiter=" ", layer=1, max_step_tokens=1,
                                                                    cap_states=cap_states))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    pushed = []
    orig = r.window.push
    r.window.push = lambda h: pushed.append(h) or orig(h)
    r.execute()
    bounds = engine.boundaries(" ")
    positions = [p for p in range(r.ctx.prompt_len, r.srm.seen) if bounds.is_boundary(r.ctx.ids[p])]
    ends, capped = r.ctx.prompt_len, []
    for step in r.steps:
        ends += len(step.ids)
        if step.end == "cap" and ends <= r.srm.seen:
            capped.append(ends - 1)
    assert positions and capped, "the run must hold both kinds of step end to test them"
    positions = sorted(positions + capped) if cap_states else positions
    assert len(pushed) == len(positions)
    with torch.inference_mode():
        ids = torch.tensor([r.ctx.ids[: r.srm.seen]], device=tiny_pair[0].device)
        hs = tiny_pair[0].model(ids, output_hidden_states=True).hidden_states[1][0].cpu()
    for p, h in zip(positions, pushed):
        torch.testing.assert_close(torch.from_numpy(h), hs[p].float(), atol=1e-4, rtol=1e-4)


def test_rankguide_collapse_stops_with_final_answer(tiny_pair):
    engine, trace = run(tiny_pair, "rankguide", max_tokens=200, max_step_tokens=6, window=2, delimiter=" ", tr1=99, te=99.0)
    assert trace.finish_reason == "collapse"
    last = trace.steps[-1]
    assert last.reason.startswith("collapse") and last.text.startswith("Final answer: \\boxed{")
    # the windows before collapse: all low rank, so the LRM wrote every routed step
    assert all(s.writer == "lrm" for s in trace.steps[:-1] if s.signals["r1"] is not None)


def test_rankguide_loop_tokens_stops_a_loop_its_rank_windows_cannot_see(tiny_pair):
    """The tiny SRM, greedy, falls into a loop inside steps the 6-token cap cuts: no delimiter, so no
    boundary state and no window; the collapse test cannot fire and the trace runs to the budget.
    With loop_tokens the engine's loop signal sees the repeated tokens and RankGuide answers there."""
    from tandem.signals.repetition import trailing_repeat

    engine, srm = run(tiny_pair, "srm", max_tokens=100, max_step_tokens=6)
    generated = ctx_ids(engine, srm)[len(prompt_ids(engine.tokenizer, QUESTION)):]
    assert srm.finish_reason == "budget" and trailing_repeat(generated, 16, 6) is not None
    never_routes = dict(max_tokens=100, max_step_tokens=6, window=2, te=99.0, tr1=0, tr2=0)
    _, blind = run(tiny_pair, "rankguide", **never_routes)
    assert blind.finish_reason == "budget" and blind.text == srm.text
    assert all(s.end == "cap" or s.end == "budget" for s in blind.steps) and all(s.signals["r1"] is None for s in blind.steps)
    assert all("loop" not in s.signals for s in blind.steps)  # records keep their shape where the setting is off
    _, stopped = run(tiny_pair, "rankguide", loop_tokens=16, **never_routes)
    assert stopped.finish_reason == "collapse" and srm.text.startswith("".join(s.text for s in stopped.steps[:-1]))
    last = stopped.steps[-1]
    assert last.reason.startswith("collapse: the trace repeats a") and last.text.startswith("Final answer: \\boxed{")
    assert last.signals["loop"] >= 1 and all("loop" not in s.signals for s in stopped.steps[:-1])
    assert sum(len(s.ids) for s in stopped.steps[:-1]) < 60  # stopped within a few cut steps of the loop's start


def test_rankguide_routes_on_entropy_before_window_is_full(tiny_pair):
    _, hi = run(tiny_pair, "rankguide", max_tokens=30, max_step_tokens=5, te=0.0)
    assert {s.writer for s in hi.steps} == {"lrm"} and all(s.signals["r1"] is None for s in hi.steps)
    _, lo = run(tiny_pair, "rankguide", max_tokens=30, max_step_tokens=5, te=99.0)
    assert {s.writer for s in lo.steps} == {"srm"}


def test_glimpse_discard_equals_reuse_under_greedy(tiny_pair):
    _, a = run(tiny_pair, "glimprouter", te=99.0, glimpse="reuse", max_step_tokens=5)
    _, b = run(tiny_pair, "glimprouter", te=99.0, glimpse="discard", max_step_tokens=5)
    assert a.text == b.text


def test_entropy_topk_mode_matches_renormalised_definition(tiny_pair):
    from tandem.signals import entropy

    logits = torch.randn(400)
    top = torch.softmax(torch.topk(logits, 20).values, -1)
    assert entropy(logits, top_k=20) == pytest.approx(float(-(top * top.log()).sum()), rel=1e-5)
    full = torch.softmax(logits, -1)
    assert entropy(logits) == pytest.approx(float(-(full * full.log()).sum()), rel=1e-5)


def test_budget_and_json_schema(tiny_pair):
    _, trace = run(tiny_pair, "glimprouter", max_tokens=17, max_step_tokens=5)
    d = trace.to_dict()
    assert sum(s["tokens"] for s in d["steps"]) <= 17 and d["finish_reason"] in ("budget", "eos")
    assert set(d) >= {"question", "method", "answer", "text", "prompt_tokens", "latency_s", "config", "steps", "usage"}
    assert set(d["usage"]["srm"]) == {"prompt_tokens", "completion_tokens", "seconds", "prefill_seconds", "boundary_positions", "steered_positions", "scoring_tokens"}
    assert "validation_ratio" in d and "label" in d["steps"][0]
    assert set(d["steps"][0]) >= {"writer", "text", "tokens", "signals", "reason"}
    assert set(d["steps"][0]["signals"]) == {"entropy", "r1", "r2"}


def test_seeded_sampling_reproduces(tiny_pair):
    _, a = run(tiny_pair, "glimprouter", temperature=1.0, max_step_tokens=5)
    _, b = run(tiny_pair, "glimprouter", temperature=1.0, max_step_tokens=5)
    assert a.text == b.text


def test_rankguide_warns_when_a_threshold_is_unreachable(tiny_pair):
    # hidden 64 -> dims 16x4x1: r2 <= min(2*16, 4) = 4 with window 2
    _, trace = run(tiny_pair, "rankguide", max_tokens=10, window=2, tr2=60)
    assert any("tr2=60 exceeds" in w for w in trace.meta["warnings"])
    _, ok = run(tiny_pair, "rankguide", max_tokens=10, window=2, tr1=2, tr2=3)
    assert "warnings" not in ok.meta
