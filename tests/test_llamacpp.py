"""The LRM under in-process llama.cpp (the embedded LRM's own GGUF), with the SRM in transformers."""

from __future__ import annotations

import pytest
import torch

from tandem.config import RunConfig, Settings
from tandem.engine import Engine, _Run
from tandem.hardware import cpu_info
from tandem.prompt import prompt_ids

pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed (setup.sh installs it)")
pytestmark = pytest.mark.embedded

WORD_PROBLEM = "What is 17 * 3 + 4?"


@pytest.fixture(scope="module")
def engine(embedded_pair):
    from tandem.backends.loading import load_llamacpp

    return Engine(embedded_pair[0], load_llamacpp("embedded", embedded_pair[0].tokenizer))


# LRM-only under in-process llama.cpp is test_remote's test_server_writes_what_in_process_lrm_writes
@pytest.mark.parametrize("method", ["rankguide", "specreason"])
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


AMX_INTERLEAVE = """
import torch
from transformers import AutoTokenizer
from tandem.backends.embedded import EMBEDDED, assemble, cache_path
from tandem.backends.llamacpp import LlamaCppModel

srm = EMBEDDED["srm"]
model = LlamaCppModel(assemble(srm), AutoTokenizer.from_pretrained(cache_path(srm)), "srm", n_ctx=256)
x, w = torch.randn(64, 512, dtype=torch.bfloat16), torch.nn.Linear(512, 512).to(torch.bfloat16)
ids = list(range(1000, 1064))
for _ in range(3):
    with torch.no_grad():
        w(x)  # oneDNN's AMX kernel, which releases the tiles when it ends
    model.llm.n_tokens = 0
    print(int(model.logits_after(ids).argmax()), flush=True)  # a 64-token prefill: llama.cpp's AMX matmul
"""


@pytest.mark.skipif("amx_tile" not in (cpu_info()[1] or ()), reason="no AMX on this CPU: the crash this guards against cannot happen here")
def test_llamacpp_after_bfloat16_torch_on_an_amx_cpu(tmp_path):
    """bfloat16 torch matmuls between llama.cpp decodes once killed the process with SIGILL on AMX CPUs."""
    import subprocess
    import sys

    script = tmp_path / "interleave.py"
    script.write_text(AMX_INTERLEAVE)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert len(set(proc.stdout.split())) == 1, proc.stdout  # the same prefill gives the same next token


def test_setup_builds_llamacpp_without_openmp():
    """tools/install-llama-cpp-python.sh (setup.sh) builds llama.cpp without OpenMP: with OpenMP its decode
    ran at half speed beside the SRM (BENCHMARKS.md, "llama.cpp threads"); tandem warns about such a build."""
    import warnings

    import llama_cpp

    from tandem.backends.llamacpp import OpenMPBuildWarning, warn_if_openmp_build

    info = llama_cpp.llama_print_system_info().decode()
    assert "OPENMP = 1" not in info, f"llama-cpp-python built with OpenMP: {info}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_openmp_build(info)
        warn_if_openmp_build(info.replace("REPACK = 1", "OPENMP = 1 | REPACK = 1"))
    assert [w.category for w in caught] == [OpenMPBuildWarning]
    from tandem.eval.runner import versions

    assert versions()["llama_cpp"] == f"{llama_cpp.__version__} ({info.strip()})"  # eval headers record the build
