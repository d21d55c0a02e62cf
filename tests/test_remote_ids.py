"""The ``ids`` dialect of the remote backend against a small server that answers as vLLM or SGLang
does (tests/ids_server.py) around a tiny LRM: runs in CI, where neither is installed.

The remote LRM must write exactly what the same model writes in-process, every request must say
what it recomputed and their sum must be the server's own count, and all of this must hold when
the server streams a step's stop token, when it leaves it out and only names it in
``stop_reason`` (vLLM, for special tokens), a case no real server in tests/test_remote.py shows,
and when it reports the generated ids only in ``token_ids`` and names tokens in its log-probs by
their text (SGLang). A request the server aborts is made again, never taken as a step's end."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch

from tandem.backends.hf import HFModel
from tandem.backends.loading import load_remote
from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.signals.boundary import BoundaryTokens
from ids_server import IdsServer
from tests_helpers import ensure_alternate  # noqa: F401 - registers "test-alternate" (both writers in one run)

QUESTION = "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?"
SETTINGS = Settings(window=2, te=0.5, probe_rate=1.0, max_step_tokens=8)


@pytest.fixture(scope="module")
def stepping_lrm(tiny_pair):
    """The tiny LRM with two rows of its output layer swapped, so that it writes the step
    boundary "\\n\\n" where it wrote its second most frequent token: a random model seldom ends a
    step by itself, and this one ends some steps on a boundary and others at the step cap."""
    srm, lrm = tiny_pair
    trace = Engine(srm, lrm).solve(QUESTION, RunConfig(method="lrm", max_tokens=48))
    often = [t for t, _ in Counter(t for s in trace.steps for t in s.ids).most_common(2)][-1]
    boundary = lrm.tokenizer.convert_tokens_to_ids("ĊĊ")  # byte-level "\n\n"
    assert boundary in BoundaryTokens(lrm.tokenizer).ids
    model = copy.deepcopy(lrm.model)
    with torch.no_grad():
        w = model.lm_head.weight
        w[[often, boundary]] = w[[boundary, often]]
    return HFModel(model, lrm.tokenizer, "tiny-lrm-stepping")


@pytest.fixture(scope="module", params=[("vllm", False), ("vllm", True), ("sglang", False)],
                ids=["stop-streamed", "stop-omitted", "sglang"])
def server(request, stepping_lrm):
    flavour, omit_stop = request.param
    s = IdsServer(stepping_lrm.model, stepping_lrm.tokenizer, omit_stop=omit_stop, flavour=flavour)
    yield s
    s.stop()


@pytest.mark.parametrize("method", ["lrm", "test-alternate", "rankguide", "mentorcollab"])
def test_remote_lrm_writes_what_the_in_process_lrm_writes(tiny_pair, stepping_lrm, server, method):
    srm, _ = tiny_pair
    remote = load_remote(server.url, srm.tokenizer)
    assert remote.dialect == "ids"
    cfg = RunConfig(method=method, max_tokens=48, settings=SETTINGS)
    before = dict(server.totals)
    got = Engine(srm, remote).solve(QUESTION, cfg)
    want = Engine(srm, stepping_lrm).solve(QUESTION, cfg)
    assert [(s.writer, s.end, s.ids) for s in got.steps] == [(s.writer, s.end, s.ids) for s in want.steps]
    assert got.finish_reason == want.finish_reason
    # the server ended some of the LRM's steps itself, at the boundary
    assert server.totals["stopped"] > before["stopped"]
    assert "boundary" in {s.end for s in got.steps if s.writer == "lrm"}
    use = got.usage["lrm"].remote
    assert use["requests"] > 0 and use["retried_requests"] == 0
    assert use["reported_requests"] == use["requests"]  # the usage after each finish was read
    sent = server.totals["prompt_tokens"] - before["prompt_tokens"]
    assert use["sent_tokens"] == sent
    assert use["recomputed_tokens"] == sent - (server.totals["cached_tokens"] - before["cached_tokens"])


def test_a_request_the_server_aborts_is_made_again(tiny_pair, stepping_lrm):
    srm, _ = tiny_pair
    server = IdsServer(stepping_lrm.model, stepping_lrm.tokenizer, flavour="sglang", abort_once=True)
    try:
        remote = load_remote(server.url, srm.tokenizer)
        cfg = RunConfig(method="lrm", max_tokens=48, settings=SETTINGS)
        got = Engine(srm, remote).solve(QUESTION, cfg)
    finally:
        server.stop()
    want = Engine(srm, stepping_lrm).solve(QUESTION, cfg)
    assert not server.abort_once  # it did abort one step, after its first token
    assert [s.ids for s in got.steps] == [s.ids for s in want.steps]
    assert got.usage["lrm"].remote["retried_requests"] == 1
