"""SpecReason and MentorCollab on tiny random models: forks, rollbacks, accounting, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from accounting import assert_handoff_accounting
from cli_in_process import tandem

from tandem.backends.base import Context
from tandem.config import RunConfig, Settings
from tandem.engine import Engine, _Run, mean_preference
from tandem.prompt import prompt_ids, scoring_ids

QUESTION = "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?"


def run(pair, method, max_tokens=40, seed=0, **settings):
    engine = Engine(*pair)
    cfg = RunConfig(method=method, max_tokens=max_tokens, seed=seed, settings=Settings(max_step_tokens=6, **settings))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    return r, r.execute()


def assert_caches_fresh(r, pair):
    """Each cache gives the logits of a fresh prefill of the context as it finally is."""
    for sess, hf in ((r.srm, pair[0]), (r.lrm, pair[1])):
        if sess.seen == 0:
            continue
        sess.sync(r.ctx)
        with torch.inference_mode():
            fresh = hf.model(torch.tensor([r.ctx.ids], device=hf.device)).logits[0, -1]
        assert sess.seen == len(r.ctx) == sess.cache.get_seq_length()
        torch.testing.assert_close(sess.next_logits, fresh.float(), atol=1e-4, rtol=1e-4)


def test_rollback_and_peek_leave_the_cache_as_a_fresh_prefill(tiny_pair, tiny_tokenizer):
    hf = tiny_pair[1]
    ids = prompt_ids(tiny_tokenizer, QUESTION)
    ctx = Context.from_prompt(ids)
    sess = hf.session("lrm")
    for t in tiny_tokenizer.encode(" Step 1: add the numbers."):
        ctx.append(t, "srm")
    sess.sync(ctx)
    before = sess.next_logits.clone()
    side = sess.peek(ctx, scoring_ids(tiny_tokenizer))
    assert sess.cache.get_seq_length() == len(ctx) and not torch.equal(side, before)
    torch.testing.assert_close(sess.next_logits, before)
    assert sess.usage.scoring_tokens == len(scoring_ids(tiny_tokenizer)) and sess.usage.prompt_tokens >= sess.usage.scoring_tokens
    keep = len(ctx) - 4
    sess.rollback(keep)
    ctx.truncate(keep)
    for t in tiny_tokenizer.encode(" multiply by 3."):
        ctx.append(t, "lrm")
    sess.sync(ctx)
    with torch.inference_mode():
        fresh = hf.model(torch.tensor([ctx.ids], device=hf.device)).logits[0, -1]
    torch.testing.assert_close(sess.next_logits, fresh.float(), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="into the prompt"):
        ctx.truncate(len(ids) - 1)


def test_specreason_accepting_everything_is_srm_only(tiny_pair):
    _, srm = run(tiny_pair, "srm")
    r, spec = run(tiny_pair, "specreason", accept=0)
    assert spec.text == srm.text and all(s.writer == "srm" for s in spec.steps)
    assert r.stats["reviewed"] == len(spec.steps) and "rejected" not in r.stats
    u = spec.usage["lrm"]
    assert u.completion_tokens == 0 and u.scoring_tokens == len(spec.steps) * len(scoring_ids(r.engine.tokenizer))
    assert_caches_fresh(r, tiny_pair)


def test_specreason_rejecting_everything_is_lrm_only_text(tiny_pair):
    _, lrm = run(tiny_pair, "lrm")
    r, spec = run(tiny_pair, "specreason", accept=9, score_mode="expectation")
    assert spec.text == lrm.text  # every step rolled back and rewritten by the LRM from the same context
    assert all(s.writer == "lrm" and s.rejected is not None for s in spec.steps)
    assert r.stats["rejected"] == r.stats["reviewed"] == len(spec.steps)
    # drafts were generated and thrown away: SRM generated more than it kept (it kept nothing)
    assert spec.usage["srm"].completion_tokens > 0 and spec.lrm_token_share == 1.0
    d = spec.to_dict()
    assert d["usage"]["lrm"]["scoring_tokens"] > 0 and "rejected" in d["steps"][0]
    assert_caches_fresh(r, tiny_pair)


def test_mentorcollab_without_probes_is_srm_only(tiny_pair):
    _, srm = run(tiny_pair, "srm")
    r, mc = run(tiny_pair, "mentorcollab", probe_rate=0.0)
    assert mc.text == srm.text and mc.usage["lrm"].completion_tokens == 0 and "probes" not in r.stats


def test_mentorcollab_probes_diverge_pick_and_reproduce(tiny_pair):
    r, mc = run(tiny_pair, "mentorcollab", max_tokens=60, seed=5, probe_rate=1.0, lookahead=3)
    s = r.stats
    assert s["probes"] >= s["divergences"] > 0
    assert s.get("picked_srm", 0) + s.get("picked_lrm", 0) == s["divergences"]
    assert sum(sum(st.tokens_by.values()) for st in mc.steps) == len(r.ctx) - r.ctx.prompt_len
    if s.get("picked_lrm"):
        assert mc.lrm_token_share > 0
    for st in mc.steps:
        assert st.writer == ("mixed" if len(st.tokens_by) > 1 else next(iter(st.tokens_by)))
    # the LRM generated every option it proposed, kept or not
    assert mc.usage["lrm"].completion_tokens >= sum(st.tokens_by.get("lrm", 0) for st in mc.steps)
    assert mc.usage["srm"].scoring_tokens > 0  # self-verifier consultations, never in the context
    assert_caches_fresh(r, tiny_pair)
    _, again = run(tiny_pair, "mentorcollab", max_tokens=60, seed=5, probe_rate=1.0, lookahead=3)
    assert again.text == mc.text and [x.tokens_by for x in again.steps] == [x.tokens_by for x in mc.steps]
    _, word = run(tiny_pair, "mentorcollab", max_tokens=30, seed=5, probe_rate=1.0, probe_unit="word", lookahead=3)
    assert word.meta["stats"]["probes"] <= s["probes"]


def test_mentorcollab_following_the_mentor_always(tiny_pair):
    """verifier = follow: no judge is asked; at every divergence the LRM's lookahead is kept and the
    SRM writes no option of its own, so each model generated exactly its tokens of the text. Each token
    draws one probe number and each divergence one coin in both runs, so the probes fall where a judged
    run's fall while the kept options are as long (always here), which makes the two runs paired."""
    r, f = run(tiny_pair, "mentorcollab", max_tokens=60, seed=5, probe_rate=0.5, lookahead=3, verifier="follow")
    _, judged = run(tiny_pair, "mentorcollab", max_tokens=60, seed=5, probe_rate=0.5, lookahead=3)
    log = f.meta["mentor"]
    assert r.stats == {"probes": len(log), "divergences": len(log), "picked_lrm": len(log)} and len(log) > 1
    assert all(d == {"at": d["at"], "picked": "lrm"} for d in log)  # no probability: nothing was asked
    assert "picked_srm" in judged.meta["stats"]  # the judged run kept the SRM's option somewhere, and yet
    assert [d["at"] for d in log] == [d["at"] for d in judged.meta["mentor"]]  # its probes fell at the same offsets
    ids = r.ctx.ids
    for context, srm_opt, lrm_opt in f.divergences:
        assert srm_opt == [] and ids[len(context) : len(context) + len(lrm_opt)] == lrm_opt
    assert f.usage["srm"].scoring_tokens == f.usage["lrm"].scoring_tokens == 0
    assert_handoff_accounting(f)  # the SRM generated only what it kept, as the LRM did
    assert_caches_fresh(r, tiny_pair)
    assert Engine(*tiny_pair).solve(QUESTION, r.config).text == f.text


def test_accounting_holds_for_mentorcollab_without_divergence(tiny_pair):
    _, mc = run(tiny_pair, "mentorcollab", probe_rate=0.0)
    assert_handoff_accounting(mc)


def _trained_verifier(hf, tmp_path, layer=1):
    import numpy as np

    from tandem.verifier import fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2 * hf.hidden_size)).astype(np.float32)
    y = (x[:, 0] > x[:, hf.hidden_size]).astype(int)  # "the LRM option is better when its first feature is larger"
    meta = {"model": hf.name, "fingerprint": hf.fingerprint, "hidden_size": hf.hidden_size, "layer": layer}
    v = fit(x, y, meta, epochs=400)
    path = tmp_path / "verifier.pt"
    v.save(path)
    return v, path, x, y


def test_mlp_verifier_fits_saves_and_checks(tiny_pair, tmp_path):
    import numpy as np

    from tandem.verifier import Verifier, VerifierError, fit

    v, path, x, y = _trained_verifier(tiny_pair[0], tmp_path)
    assert v.meta["train_accuracy"] > 0.95 and v.meta["examples"] == 64
    loaded = Verifier.load(path)
    assert loaded.p_lrm(x[0]) == pytest.approx(v.p_lrm(x[0]))
    assert (loaded.p_lrm(x[y == 1][0]) > 0.5) and (loaded.p_lrm(x[y == 0][0]) < 0.5)
    with pytest.raises(VerifierError, match="hidden size"):
        loaded.check(tiny_pair[1])
    with pytest.raises(VerifierError, match="labelled both ways"):
        fit(x[:3], np.zeros(3, int), {})


def test_mentorcollab_with_the_mlp_verifier(tiny_pair, tmp_path):
    from tandem.verifier import VerifierError

    _, path = _trained_verifier(tiny_pair[0], tmp_path)[:2]
    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=40, seed=5, verifier_file=str(path),
                    settings=Settings(max_step_tokens=6, probe_rate=1.0, lookahead=3, verifier="mlp"))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    trace = r.execute()
    assert r.stats["divergences"] > 0 and len(trace.divergences) == r.stats["divergences"]
    assert trace.usage["srm"].scoring_tokens > 0  # option features are read on forks
    # the record: the MLP's probability and the pick; no judge question was asked, so no order
    assert [sorted(d) for d in trace.meta["mentor"]] == [["at", "p_lrm", "picked"]] * len(trace.divergences)
    assert all(d["picked"] == ("lrm" if d["p_lrm"] > 0.5 else "srm") for d in trace.meta["mentor"])
    assert json.loads(json.dumps(trace.to_dict()))["meta"]["mentor"] == trace.meta["mentor"]  # as eval writes it
    assert_caches_fresh(r, tiny_pair)
    assert engine.solve(QUESTION, cfg).text == trace.text
    with pytest.raises(VerifierError, match="needs a verifier file"):
        engine.solve(QUESTION, cfg.model_copy(update={"verifier_file": None}))


def test_collect_labels_divergences_by_rollouts(tiny_pair):
    from tandem.eval.datasets import Problem
    from tandem.verifier import collect

    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=20, seed=5, settings=Settings(max_step_tokens=6, probe_rate=1.0, lookahead=2))
    xs, ys, seen = collect(engine, Problem("p", QUESTION, "96"), cfg, layer=1)
    assert seen > 0 and len(xs) == len(ys) <= seen  # ties (both rollouts right or both wrong) are dropped
    assert all(x.shape == (2 * tiny_pair[0].hidden_size,) for x in xs)


def test_mentorcollab_with_the_lrm_as_judge(tiny_pair):
    """verifier = lrm: the LRM answers the mentor question on a fork after the shared context; each
    pick is the LRM's own preference, and both caches end as fresh prefills of the final context."""
    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=60, seed=5,
                    settings=Settings(max_step_tokens=6, probe_rate=1.0, lookahead=3, verifier="lrm"))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    mc = r.execute()
    # the trace records, at each divergence, the order the run showed the options in and the answer it got
    log = mc.meta["mentor"]
    assert r.stats["divergences"] == len(log) > 0 and all(len(d) == 4 for d in log)  # at, p_lrm, one order, picked
    lrm, srm = mc.usage["lrm"], mc.usage["srm"]
    assert lrm.scoring_tokens > 0 and srm.scoring_tokens == 0  # the questions went to the LRM only
    assert_caches_fresh(r, tiny_pair)
    assert engine.solve(QUESTION, cfg).text == mc.text
    # each probability is the LRM's answer after exactly the shared context (a fresh session asked the
    # same question agrees), and the option kept is the one it preferred
    ids, kept = r.ctx.ids, []
    for (context, srm_opt, lrm_opt), d in zip(mc.divergences, log):
        lrm_first = "lrm_first" in d
        p = engine.option_preference(tiny_pair[1].session("lrm"), Context.from_prompt(context),
                                     {"srm": srm_opt, "lrm": lrm_opt}, lrm_first)
        assert d["lrm_first" if lrm_first else "srm_first"] == d["p_lrm"] == pytest.approx(p, abs=1e-5)
        assert d["at"] == len(context) - mc.prompt_tokens
        kept.append("lrm" if ids[len(context) : len(context) + len(lrm_opt)] == lrm_opt else "srm")
        assert kept[-1] == d["picked"] == ("lrm" if p > 0.5 else "srm")
    assert set(kept) == {"srm", "lrm"}  # both outcomes occurred, so the check above could fail either way
    assert {"lrm_first" in d for d in log} == {True, False}  # and both orders were drawn


@pytest.mark.parametrize("verifier", ["self", "lrm"])
def test_mentorcollab_judge_asked_in_both_orders(tiny_pair, verifier):
    """option_orders = both: each pick is the judge's mean preference over the two option orders (as
    train-verifier's LRM labels are made), and the judge answers two questions per divergence."""
    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=60, seed=5, settings=Settings(
        max_step_tokens=6, probe_rate=1.0, lookahead=3, verifier=verifier, option_orders="both"))
    r = _Run(engine, prompt_ids(engine.tokenizer, QUESTION), cfg, QUESTION, None)
    mc = r.execute()
    log = mc.meta["mentor"]
    assert r.stats["divergences"] == len(log) > 0
    assert_caches_fresh(r, tiny_pair)
    judge_role = "lrm" if verifier == "lrm" else "srm"
    ids, kept, asked = r.ctx.ids, [], 0
    for context, srm_opt, lrm_opt in mc.divergences:
        options = {"srm": srm_opt, "lrm": lrm_opt}
        fresh = tiny_pair[judge_role == "lrm"]  # a new session per question
        p = [engine.option_preference(fresh.session(judge_role), Context.from_prompt(context), options, first)
             for first in (True, False)]
        d = log[len(kept)]  # the record keeps both answers and their mean
        assert [d["lrm_first"], d["srm_first"]] == pytest.approx(p, abs=1e-5)
        assert d["p_lrm"] == pytest.approx(sum(p) / 2, abs=1e-5)
        kept.append("lrm" if ids[len(context) : len(context) + len(lrm_opt)] == lrm_opt else "srm")
        assert kept[-1] == d["picked"] == ("lrm" if mean_preference(p) > 0.5 else "srm")
        asked += len(engine.mentor_ids(srm_opt, lrm_opt)) + len(engine.mentor_ids(lrm_opt, srm_opt))
    assert mc.usage[judge_role].scoring_tokens == asked
    assert mc.usage["srm" if judge_role == "lrm" else "lrm"].scoring_tokens == 0


@pytest.mark.parametrize("gap", [0.0, 0.125, 0.375, 1.0])
def test_a_judge_that_sees_only_the_position_keeps_the_srm_option(gap):
    """In bfloat16 the option labels' logits are rounded (a spacing of 0.125 near 20), so a judge often
    sees the same logit gap in both orders: its answers for the LRM's option are p and 1 - p, exactly
    complementary, yet float32 softmax makes their mean 0.5 + 1e-8 to 5e-8 (as the committed
    both-orders records show), which used to keep the LRM's option. No preference keeps the SRM's."""
    from tandem.policies import get_policy

    logits = torch.tensor([20.0 + gap, 20.0]).bfloat16().float()  # "A" (shown first) and "B", as a bf16 judge gives them
    pa, pb = torch.softmax(logits, -1).tolist()  # the LRM's option shown first: pa; shown second: pb
    assert gap == 0 or (pa + pb) / 2 > 0.5  # the rounding the rule is for
    assert mean_preference([pa, pb]) == 0.5
    policy = get_policy("mentorcollab")(Settings(option_orders="both"))
    assert policy.pick(mean_preference([pa, pb])) == "srm"
    assert policy.pick(mean_preference([0.6, 0.45])) == "lrm" and mean_preference([0.6, 0.45]) == pytest.approx(0.525)
    assert policy.pick(mean_preference([0.55, 0.4])) == "srm"


def test_peek_ids_reads_a_bfloat16_head_in_float32(tiny_srm_bf16, tiny_pair, tiny_tokenizer):
    """peek_ids(float32=True) on a bfloat16 model: the option logits computed in float32 from the LM
    head's input, within the head's rounding of the model's own logits but off the bfloat16 grid, on a
    fork that leaves the cache as it was. A float32 model gives its logits as they are; a model whose
    logits are not its head's output is refused, and so is a float32 readout from a server."""
    import copy

    from pydantic import ValidationError

    from tandem.backends.hf import HFModel

    ctx = Context.from_prompt(prompt_ids(tiny_tokenizer, QUESTION))
    extra, ids = tiny_tokenizer.encode(" Option"), Engine(*tiny_pair).option_ids
    sess = tiny_srm_bf16.session("srm")
    sess.sync(ctx)
    before, cached = sess.next_logits.clone(), sess.cache.get_seq_length()
    coarse, fine = sess.peek_ids(ctx, extra, ids), sess.peek_ids(ctx, extra, ids, float32=True)
    assert torch.equal(coarse, sess.peek(ctx, extra)[ids]) and torch.equal(coarse, coarse.bfloat16().float())
    assert not torch.equal(fine, fine.bfloat16().float())  # not rounded to bfloat16
    torch.testing.assert_close(fine, coarse, rtol=2**-7, atol=1e-6)  # only rounded apart
    assert sess.cache.get_seq_length() == cached and torch.equal(sess.next_logits, before)
    f32 = tiny_pair[0].session("srm")
    assert torch.equal(f32.peek_ids(ctx, extra, ids, float32=True), f32.peek_ids(ctx, extra, ids))
    capped = HFModel(tiny_srm_bf16.model, tiny_tokenizer, "capped")
    capped.config = copy.copy(capped.config)
    capped.config.final_logit_softcapping = 30.0  # Gemma 2's tanh cap: the logits are not the head's
    with pytest.raises(ValueError, match="caps or scales its logits"):
        capped.session("srm").peek_ids(ctx, extra, ids, float32=True)
    with pytest.raises(ValidationError, match="needs an in-process judge"):
        RunConfig(method="mentorcollab", lrm="http://127.0.0.1:9/v1",
                  settings=Settings(verifier="lrm", judge_readout="float32"))
    RunConfig(method="mentorcollab", lrm="http://127.0.0.1:9/v1", settings=Settings(judge_readout="float32"))  # self judge


def test_a_float32_readout_leaves_no_rounding_ties(tiny_srm_bf16, tiny_pair):
    """judge_readout = float32 with a bfloat16 self judge asked in both orders: its logits rounded to
    bfloat16 cancel exactly at some divergences (ties, kept for the SRM); read in float32, at none, and
    each recorded answer is the judge's float32 answer after the shared context."""
    engine = Engine(tiny_srm_bf16, tiny_pair[1])
    traces = {}
    for readout in ("logits", "float32"):
        cfg = RunConfig(method="mentorcollab", max_tokens=60, seed=5, settings=Settings(
            max_step_tokens=6, probe_rate=1.0, lookahead=3, option_orders="both", judge_readout=readout))
        traces[readout] = engine.solve(QUESTION, cfg)
    logs = {readout: t.meta["mentor"] for readout, t in traces.items()}
    assert sum(d["p_lrm"] == 0.5 for d in logs["logits"]) > 0
    assert len(logs["float32"]) > 0 and all(d["p_lrm"] != 0.5 for d in logs["float32"])
    for (context, srm_opt, lrm_opt), d in zip(traces["float32"].divergences, logs["float32"]):
        options = {"srm": srm_opt, "lrm": lrm_opt}
        p = [engine.option_preference(tiny_srm_bf16.session("srm"), Context.from_prompt(context), options, first, True)
             for first in (True, False)]
        # a fresh session prefills the context at once, the run's fed it a token at a time: in bfloat16
        # the two caches differ by their own rounding
        assert [d["lrm_first"], d["srm_first"]] == pytest.approx(p, abs=5e-3)
        assert d["picked"] == ("lrm" if d["p_lrm"] > 0.5 else "srm")


def test_collect_labels_every_divergence_by_the_lrm(tiny_pair):
    """labels = lrm: one label per divergence where the LRM prefers an option, its mean preference over
    both option orders (none where the orders cancel);
    the judge's one incremental session gives what a fresh session per divergence gives."""
    from tandem.eval.datasets import Problem
    from tandem.verifier import VerifierError, _LrmJudge, collect

    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=30, seed=5, settings=Settings(max_step_tokens=6, probe_rate=1.0, lookahead=2))
    problem = Problem("p", QUESTION, "96")
    xs, ys, seen = collect(engine, problem, cfg, layer=1, labels="lrm")
    assert seen > 1 and len(xs) == len(ys) and set(ys) <= {0, 1}
    prompt = prompt_ids(engine.tokenizer, QUESTION)
    trace = engine.run(prompt, cfg, QUESTION)  # the same run: the same divergences
    assert len(trace.divergences) == seen
    judge = _LrmJudge(engine)

    def fresh(context, options):  # a new LRM session per question, options shown in both orders
        return [engine.option_preference(tiny_pair[1].session("lrm"), Context.from_prompt(context), options, first)
                for first in (True, False)]

    expected = []
    for context, srm_opt, lrm_opt in trace.divergences:
        options = {"srm": srm_opt, "lrm": lrm_opt}
        p = fresh(context, options)
        assert judge.preferences(context, options) == pytest.approx(p, abs=1e-5)
        mean = mean_preference(p)
        if mean != 0.5:  # the orders cancel: no label
            expected.append(int(mean > 0.5))
    assert ys == expected
    # a context that parts from what the judge has fed (never within one trace) is fed from the fork
    context, srm_opt, lrm_opt = trace.divergences[-1]
    other = context[: len(prompt) + 1] + context[len(prompt) + 1 :][::-1]
    options = {"srm": srm_opt, "lrm": lrm_opt}
    assert judge.preferences(other, options) == pytest.approx(fresh(other, options), abs=1e-5)
    with pytest.raises(VerifierError, match="labels must be one of"):
        collect(engine, problem, cfg, layer=1, labels="vote")


def test_labelling_saves_each_problem_and_resumes(tiny_pair, tmp_path):
    """label_problems keeps each problem's labels in OUT.parts/ as soon as they are made: a resumed run
    labels only the problems it lacks and gives the arrays a run in one go gives."""
    from tandem.eval.datasets import Problem
    from tandem.verifier import VerifierError, label_problems

    engine = Engine(*tiny_pair)
    cfg = RunConfig(method="mentorcollab", max_tokens=16, seed=5, settings=Settings(max_step_tokens=6, probe_rate=1.0, lookahead=2))
    problems = [Problem(f"q{i}", q, "1") for i, q in enumerate([QUESTION, "What is 2 + 3?", "Wait, 3 + 3?"])]
    whole = label_problems(engine, problems, tmp_path / "a.pt", cfg, 1, "lrm")
    x, y, groups, seen = whole
    assert seen > 0 and len(x) == len(y) == len(groups) == seen and x.shape[1] == 2 * tiny_pair[0].hidden_size
    assert sorted(p.name for p in (tmp_path / "a.pt.parts").glob("*.npz")) == ["q0.npz", "q1.npz", "q2.npz"]

    out = tmp_path / "b.pt"
    label_problems(engine, problems[:2], out, cfg, 1, "lrm")
    with pytest.raises(VerifierError, match="--resume"):
        label_problems(engine, problems, out, cfg, 1, "lrm")
    with pytest.raises(VerifierError, match=r"other settings \(labels\)"):
        label_problems(engine, problems, out, cfg, 1, "rollout", resume=True)
    calls = []
    original = engine.run
    engine.run = lambda *a, **k: calls.append(1) or original(*a, **k)  # count the MentorCollab runs made
    heard, told = [], []
    resumed = label_problems(engine, problems, out, cfg, 1, "lrm", resume=True, on_problem=lambda n, y: heard.append(n),
                             on_resumed=lambda k, n, y: told.append((k, n, len(y))))
    assert len(calls) == 1  # only q2 was solved again
    assert len(heard) == 1 and told == [(2, resumed[3] - heard[0], int((resumed[2] < 2).sum()))]  # q0, q1 at once; then q2
    for a, b in zip(whole[:3], resumed[:3]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert whole[3] == resumed[3]


def test_cli_train_verifier_with_lrm_labels_resumes(tiny_pair_dirs, tmp_path):
    srm, lrm = tiny_pair_dirs
    f = tmp_path / "train.jsonl"
    qs = [QUESTION, "What is 2 + 3?", "Wait, 3 + 3?", "What is 7 * 6?", "How many legs do 3 cats have?", "What is 10 - 4?"]
    f.write_text("".join(json.dumps({"id": f"t{i}", "problem": q, "answer": "1"}) + "\n" for i, q in enumerate(qs)))
    out = tmp_path / "v.pt"
    common = ["-d", f, "--question-field", "problem", "--srm", srm, "--lrm", lrm, "--labels", "lrm", "--seed", "5", "--max-tokens", "16",
              "--set", "probe_rate=1.0", "--set", "lookahead=2", "--set", "max_step_tokens=6", "-o", out]

    def cli(*args):
        return tandem("train-verifier", *args)

    res = cli(*common, "--limit", "4")
    parts = tmp_path / "v.pt.parts"
    assert sorted(p.name for p in parts.glob("*.npz")) == [f"t{i}.npz" for i in range(4)], res.stderr
    kept = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.npz")}
    # labels of random models may all fall one way (exit 2, a clear message); either way the parts stay
    assert res.returncode == 0 or (res.returncode == 2 and "labelled both ways" in res.stderr), res.stderr
    res = cli(*common, "--limit", "6")
    assert res.returncode == 2 and "--resume" in res.stderr
    res = cli(*common, "--limit", "6", "--set", "lookahead=3", "--resume")
    assert res.returncode == 2 and "other settings (config)" in res.stderr
    res = cli(*common, "--limit", "6", "--resume")
    # the folder's four problems count in one line, then one line per problem labelled now
    assert all(f"labelling divergences {i}/6" in res.stderr for i in (4, 5, 6)), res.stderr
    assert "4 from the folder" in res.stderr and "labelling divergences 1/6" not in res.stderr, res.stderr
    assert {p.name: p.stat().st_mtime_ns for p in parts.glob("*.npz") if p.name in kept} == kept  # not redone
    assert len(list(parts.glob("*.npz"))) == 6
    if res.returncode == 0:
        assert out.is_file() and ("held-out problems (5-fold)" in res.stderr or "no cross-validation" in res.stderr)
    else:
        assert res.returncode == 2 and "labelled both ways" in res.stderr, res.stderr


def test_cross_validation_scores_held_out_problems():
    from tandem.verifier import cross_validate, fit

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 8)).astype(np.float32)
    groups = np.repeat(np.arange(30), 4)
    learnable = (x[:, 0] > 0.3).astype(int)  # unbalanced: about 38% positive
    cv = cross_validate(x, learnable, groups)
    assert cv["balanced_accuracy"] > 0.85 and cv["accuracy"] > cv["majority_accuracy"]
    noise = rng.integers(0, 2, 120)
    assert abs(cross_validate(x, noise, groups)["balanced_accuracy"] - 0.5) < 0.15  # nothing to learn: chance
    assert cross_validate(x[:12], learnable[:12], groups[:12]) is None  # 3 problems cannot make 5 folds
    assert fit(x, learnable, {}, groups=groups).meta["cross_validation"] == cv
    assert fit(x, learnable, {}).meta["cross_validation"] is None


def test_each_problem_draws_its_own_probe_schedule(tiny_pair):
    """seed_scope = problem: the policy's and the sampler's generators start from a seed of the run's
    seed and the prompt, so two problems differ and the pooled probe rate is the one set; "run" gives
    every problem the run's seed itself (and so one schedule for all)."""
    import random

    from tandem.sampling import problem_seed

    engine = Engine(*tiny_pair)
    prompts = [prompt_ids(engine.tokenizer, q) for q in (QUESTION, "What is 2 + 3?")]
    for scope in ("problem", "run"):
        cfg = RunConfig(method="mentorcollab", seed=5, settings=Settings(seed_scope=scope, temperature=0.7))
        runs = [_Run(engine, p, cfg, "", None) for p in prompts]
        want = [problem_seed(5, p) if scope == "problem" else 5 for p in prompts]
        for r, seed in zip(runs, want):
            assert r.policy.rng.getstate() == random.Random(seed).getstate()
            assert r.sampler.seed == seed
        assert (want[0] != want[1]) == (scope == "problem")
    # 200 problems of 300 draws each probe at the rate set (within 4 sigma); one shared sequence,
    # Random(1), probes 8% of its first 300 tokens at probe_rate 0.05 (RESULTS.md)
    pooled = sum(sum(r.random() < 0.05 for _ in range(300)) for r in (random.Random(problem_seed(1, [7, i])) for i in range(200)))
    assert abs(pooled / 60_000 - 0.05) < 4 * (0.05 * 0.95 / 60_000) ** 0.5
