"""Steering: injection semantics, clean removal, accounting, vector files and calibration (tiny models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_in_process import tandem

from tandem.backends.base import Context
from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.eval.datasets import load
from tandem.steering import Steering, SteeringError, SteerVectors
from tandem.steering.calibrate import Sample, build_vectors, calibrate
from tests_helpers import vector_file

QUESTION = "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?"


def solve(pair, steer=None, method="test-alternate", **settings):
    from tests_helpers import ensure_alternate  # noqa: F401 - registers the alternate policy

    engine = Engine(*pair)
    # delimiter " ": the random tiny models rarely write a blank line, but often a space
    cfg = RunConfig(method=method, max_tokens=40, steer=steer,
                    settings=Settings(window=2, delimiter=" ", max_step_tokens=8, **settings))
    return engine.solve(QUESTION, cfg)


def test_hook_adds_alpha_v_exactly_at_boundary_positions(tiny_pair, tiny_tokenizer):
    srm = tiny_pair[0]
    bounds = Engine(*tiny_pair).boundaries("\n\n")
    ids = tiny_tokenizer.encode("Step 1: add.\n\nStep 2: multiply.\n\nSo")
    mask = torch.tensor([p >= 2 and t in bounds.ids for p, t in enumerate(ids)])
    assert mask.sum() >= 2
    v = torch.randn(srm.hidden_size)
    seen = {}

    def reader(_m, args, kwargs):  # registered after the steering hook: sees what layer 1 receives
        seen["hs"] = (args[0] if args else kwargs["hidden_states"]).clone()

    x = torch.tensor([ids], device=srm.device)
    ref = srm.model(x, output_hidden_states=True).hidden_states[1][0]
    counter = [0]
    with torch.inference_mode(), srm.steering(Steering(v, 0.5, 1, "seal"), mask, counter):
        handle = srm.layers[1].register_forward_pre_hook(reader, with_kwargs=True)
        srm.model(x)
        handle.remove()
    expected = ref.clone()
    expected[mask.to(srm.device)] += 0.5 * v.to(srm.device)
    torch.testing.assert_close(seen["hs"][0], expected)
    assert counter == [int(mask.sum())]
    assert not srm.layers[1]._forward_pre_hooks  # removed on exit

    # a session counts the reasoning's boundaries it feeds, and steers exactly those
    ctx = Context.from_prompt(ids[:2])
    for t in ids[2:]:
        ctx.append(t, "srm")
    sess = srm.session("srm", 1, bounds.ids, Steering(v, 0.5, 1, "seal"))
    sess.sync(ctx)
    assert sess.usage.steered_positions == sess.usage.boundary_positions == int(mask.sum())


def test_steering_counts_and_clean_removal(tiny_pair, tmp_path):
    srm = tiny_pair[0]
    f = vector_file(tmp_path / "v.pt", srm)
    base = solve(tiny_pair)
    steered = solve(tiny_pair, steer=str(f), steer_kind="seal", alpha=8.0)
    u = steered.usage["srm"]
    assert u.boundary_positions > 0 and u.steered_positions == u.boundary_positions
    assert base.usage["srm"].steered_positions == 0 and base.usage["srm"].boundary_positions > 0
    assert steered.meta["steer"]["kind"] == "seal" and steered.meta["steer"]["alpha"] == 8.0
    assert steered.to_dict()["usage"]["srm"]["steered_positions"] == u.steered_positions
    # it does something: the next-token distributions after steered boundaries move
    assert [s.signals["entropy"] for s in steered.steps] != [s.signals["entropy"] for s in base.steps]
    again = solve(tiny_pair)  # hooks gone: exactly the unsteered run
    assert [s.ids for s in again.steps] == [s.ids for s in base.steps]
    assert [s.signals for s in again.steps] == [s.signals for s in base.steps]
    assert not srm.layers[1]._forward_pre_hooks


def test_lrm_is_never_steered(tiny_pair, tmp_path):
    f = vector_file(tmp_path / "v.pt", tiny_pair[0])
    steered = solve(tiny_pair, steer=str(f), steer_kind="seal", method="lrm")
    base = solve(tiny_pair, method="lrm")
    assert [s.ids for s in steered.steps] == [s.ids for s in base.steps]
    assert steered.usage["lrm"].steered_positions == 0


def test_vector_file_checks(tiny_pair, tmp_path):
    srm, lrm = tiny_pair
    f = vector_file(tmp_path / "v.pt", srm)
    vecs = SteerVectors.load(f)
    with pytest.raises(SteeringError, match="hidden size 64"):
        vecs.for_model(lrm, "seal", 1.0, str(f))
    with pytest.raises(SteeringError, match="no rankguide vector.*0 reflection/transition"):
        vecs.for_model(srm, "rankguide", 1.0, str(f))
    (tmp_path / "junk.pt").write_bytes(b"not a file")
    with pytest.raises(SteeringError, match="not a tandem steering file"):
        SteerVectors.load(tmp_path / "junk.pt")
    with pytest.raises(SteeringError, match="not found"):
        SteerVectors.load(tmp_path / "missing.pt")


def test_build_vectors_seal_vs_rank_filtered():
    d = 4
    e, r = np.ones(d), np.zeros(d)
    kept = Sample("a", True, np.stack([e * 2, r]), ["execution", "reflection"], [[5, 70]])
    collapsed = Sample("b", False, np.stack([e * 10, r - 4]), ["execution", "transition"], [[2, 70]])  # r1 < tr1
    vectors, counts = build_vectors([kept, collapsed], tr1=3, tr2=60)
    np.testing.assert_allclose(vectors["seal"], (e * 2 + e * 10) / 2 - (r + r - 4) / 2)
    np.testing.assert_allclose(vectors["rankguide"], e * 2 - r)
    assert counts["seal"]["samples"] == 2 and counts["rankguide"]["samples"] == 1
    vectors, counts = build_vectors([Sample("c", True, np.stack([e]), ["execution"], [])], 3, 60)
    assert vectors == {} and counts["seal"]["validation_steps"] == 0


def test_calibrate_saves_resumes_and_records_metadata(tiny_pair, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": "4"}) + "\n"
                         for i, q in enumerate(["What is 2 + 2?", "Wait, what is 8 / 2?", "Alternatively 1 + 3?"])))
    problems = load(str(f))
    engine = Engine(tiny_pair[0], tiny_pair[0])
    cfg = RunConfig(method="srm", max_tokens=40, settings=Settings(window=2, tr1=2, tr2=3, delimiter=" ", max_step_tokens=8))
    out = tmp_path / "vec.pt"
    data = {"name": str(f), "split": "test"}
    calibrate(engine, problems[:2], out, cfg, layer=2, dataset=data | {"limit": 2})
    with pytest.raises(SteeringError, match="--resume"):
        calibrate(engine, problems, out, cfg, layer=2, dataset=data | {"limit": 3})
    with pytest.raises(SteeringError, match=r"other settings \(layer\)"):
        calibrate(engine, problems, out, cfg, layer=3, resume=True, dataset=data | {"limit": 3})
    with pytest.raises(SteeringError, match=r"other settings \(dataset\)"):
        calibrate(engine, problems, out, cfg, layer=2, resume=True, dataset={"name": "other", "split": "test", "limit": 3})
    # a manifest written when tandem recorded --limit in it resumes with a larger limit too
    mf = tmp_path / "vec.pt.parts" / "manifest.json"
    mf.write_text(json.dumps(json.loads(mf.read_text()) | {"dataset": data | {"limit": 2}}))
    seen, resumed = [], []
    result = calibrate(engine, problems, out, cfg, layer=2, resume=True, dataset=data | {"limit": 3},
                       on_sample=lambda s: seen.append(s.id), on_resumed=lambda xs: resumed.append([s.id for s in xs]))
    assert resumed == [["q0", "q1"]] and seen == ["q2"]  # the folder's samples once, together; then the new one
    parts = sorted(p.name for p in (tmp_path / "vec.pt.parts").glob("*.npz"))
    assert parts == ["q0.npz", "q1.npz", "q2.npz"]
    m = SteerVectors.load(out).meta
    assert m == result.meta and m["layer"] == 2 and m["hidden_size"] == 64 and m["samples_total"] == 3
    assert m["thresholds"]["tr1"] == 2 and {"seal", "rankguide"} <= set(m["counts"]) and "created" in m
    sample = Sample.load(tmp_path / "vec.pt.parts" / "q0.npz")
    assert sample.states.shape == (len(sample.labels), 64)
    assert m["runtime"] == {"device": str(tiny_pair[0].device), "dtype": "float32"} and m["dataset"]["limit"] == 3


def test_calibration_in_another_dtype_is_not_resumed(tiny_pair, tiny_srm_bf16, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": "4"}) + "\n" for i, q in enumerate(["2 + 2?", "8 / 2?"])))
    problems = load(str(f))
    cfg = RunConfig(method="srm", max_tokens=16, settings=Settings(window=2, delimiter=" ", max_step_tokens=8))
    out = tmp_path / "vec.pt"
    calibrate(Engine(tiny_pair[0], tiny_pair[0]), problems[:1], out, cfg, layer=2)
    bf16 = tiny_srm_bf16
    with pytest.raises(SteeringError, match="other settings.*runtime"):
        calibrate(Engine(bf16, bf16), problems, out, cfg, layer=2, resume=True)
    # a parts folder written before tandem recorded the runtime resumes in any dtype
    mf = tmp_path / "vec.pt.parts" / "manifest.json"
    old = json.loads(mf.read_text())
    del old["runtime"]
    mf.write_text(json.dumps(old))
    result = calibrate(Engine(bf16, bf16), problems, out, cfg, layer=2, resume=True)
    assert result.meta["samples_total"] == 2 and result.meta["runtime"]["dtype"] == "bfloat16"


def test_cli_calibrate_then_solve_with_vector(tiny_pair_dirs, tmp_path):
    srm, lrm = tiny_pair_dirs
    f = tmp_path / "cal.jsonl"
    f.write_text('{"pid": "a", "problem": "What is 2+2?", "sol": "4"}\n{"pid": "b", "problem": "Wait, 3+3?", "sol": "6"}\n')
    fields = ["--question-field", "problem", "--answer-field", "sol", "--id-field", "pid"]
    common = ["--set", "delimiter= ", "--set", "max_step_tokens=8", "--max-tokens", "30"]

    cli = tandem

    out = tmp_path / "v.pt"
    res = cli("calibrate", "-d", f, *fields, "--srm", srm, *common, "-o", out)
    # random models write no reflection steps: no vector, a clear report and exit 1, but the work is kept
    assert res.returncode == 1 and "missing (one side has no steps)" in res.stdout + res.stderr, res.stderr
    assert sorted(p.name for p in (tmp_path / "v.pt.parts").glob("*.npz")) == ["a.npz", "b.npz"]
    res = cli("calibrate", "-d", f, *fields, "--srm", srm, *common, "-o", out)
    assert res.returncode == 2 and "--resume" in res.stderr
    res = cli("calibrate", "-d", f, *fields, "--srm", srm, *common, "-o", out, "--resume")
    assert res.returncode == 1 and "2 samples" in res.stderr
    assert "2 from the folder" in res.stderr and " 1/2 · " not in res.stderr  # the folder's samples in one line
    # a folder started before calibrate took field options (``fields: null``: the default names) resumes
    # with those names, and not with others
    mf = tmp_path / "v.pt.parts" / "manifest.json"
    manifest = json.loads(mf.read_text())
    f.write_text(f.read_text().replace('"pid"', '"id"').replace('"problem"', '"question"').replace('"sol"', '"answer"'))
    mf.write_text(json.dumps(dict(manifest, dataset=dict(manifest["dataset"], fields=None))))
    res = cli("calibrate", "-d", f, "--srm", srm, *common, "-o", out, "--resume")
    assert res.returncode == 1 and "2 samples" in res.stderr, res.stderr
    res = cli("calibrate", "-d", f, "--id-field", "answer", "--srm", srm, *common, "-o", out, "--resume")
    assert res.returncode == 2 and "other settings (dataset)" in res.stderr, res.stderr

    # a vector made for this SRM steers `solve`; usage reports equal boundary and steered counts
    vec = vector_file(tmp_path / "good.pt", _load(srm))
    res = cli("solve", "What is 2+2?", "-m", "srm", "--srm", srm, "--lrm", lrm, "--steer", vec,
              "--set", "steer_kind=seal", *common, "--json")
    assert res.returncode == 0, res.stderr
    usage = json.loads(res.stdout)["usage"]["srm"]
    assert usage["boundary_positions"] > 0 and usage["steered_positions"] == usage["boundary_positions"]
    # ...and is refused for a model with another hidden size
    res = cli("solve", "What is 2+2?", "-m", "srm", "--srm", lrm, "--lrm", lrm, "--steer", vec, "--set", "steer_kind=seal", *common)
    assert res.returncode == 2 and "hidden size" in res.stderr


def _load(path):
    from tandem.backends.loading import load_model

    return load_model(str(path), "srm", "cpu")
