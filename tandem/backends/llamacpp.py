"""In-process llama.cpp backend (llama-cpp-python) for the LRM.

The LRM needs no hidden states and no steering, only next-token logits on a
token-id context, so the same GGUF the embedded LRM comes from can run under
llama.cpp (about 3x faster than transformers float32 on a CPU). One
``llama_cpp.Llama`` holds one KV cache; sessions share it by longest common
prefix: before a forward the cache is cut back to the longest prefix it shares
with the session's context and only the rest is evaluated. One session at a
time (sequential runs, or the eval's problems one after another) therefore
costs exactly what a private cache would; concurrent sessions stay correct
(the model lock serialises them) but re-prefill when they alternate.

Every call into llama.cpp runs on one thread of its own (``on_ggml_thread``), never
on a thread that also runs torch. On an Intel CPU with AMX, llama.cpp's AMX
matmuls load the tile configuration once per thread and trust it ever after,
while oneDNN (torch's bfloat16 matmuls) releases the tiles at the end of each of
its kernels. When both ran on the caller's thread and its OpenMP workers (the
same libgomp pool: llama.cpp binds to the one torch loaded), a llama.cpp decode
after a bfloat16 SRM step executed an AMX instruction with no tile
configuration: SIGILL, the process gone. On a thread of its own (and that
thread's workers) llama.cpp's tile state is never touched by torch. The kernels
and their numbers are unchanged.

That thread should not be an OpenMP one: with llama-cpp-python built with OpenMP
(pip's default) the process holds two OpenMP teams, torch's and llama.cpp's,
libgomp then sleeps instead of spinning at barriers, and llama.cpp's decode ran
at half speed whenever the SRM computed in between. tools/install-llama-cpp-python.sh
(setup.sh) builds it without OpenMP; with an OpenMP build tandem warns
(``OpenMPBuildWarning``).
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from tandem.backends.base import Context, SessionBase


class OpenMPBuildWarning(RuntimeWarning):
    """llama-cpp-python built with OpenMP: correct, but its decode slows down beside torch."""


def warn_if_openmp_build(system_info: str) -> None:
    if "OPENMP = 1" in system_info:
        warnings.warn(
            "llama-cpp-python was built with OpenMP: beside the SRM its decode runs at about half speed "
            "(BENCHMARKS.md, \"llama.cpp threads\"); tools/install-llama-cpp-python.sh rebuilds it without",
            OpenMPBuildWarning, stacklevel=3)


_ggml_pool: ThreadPoolExecutor | None = None
_ggml_pool_lock = threading.Lock()


def on_ggml_thread(fn, *args, **kwargs):
    """Run ``fn`` on the process's one llama.cpp thread and return its result (why: module docstring)."""
    global _ggml_pool
    if threading.current_thread().name.startswith("llama.cpp"):  # already there: waiting on itself would hang
        return fn(*args, **kwargs)
    with _ggml_pool_lock:
        if _ggml_pool is None:
            _ggml_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
    return _ggml_pool.submit(fn, *args, **kwargs).result()


class LlamaCppModel:
    def __init__(self, gguf: str | Path, tokenizer, name: str, n_ctx: int = 4096, n_threads: int | None = None):
        try:
            from llama_cpp import Llama, llama_print_system_info
        except ImportError:
            raise ImportError(
                "llama-cpp-python is not installed: tools/install-llama-cpp-python.sh installs it "
                "(the README set-up runs it)"
            ) from None
        warn_if_openmp_build(llama_print_system_info().decode())
        # llama.cpp's default is half the cores (it assumes hyper-threads); use what torch uses
        threads = n_threads or torch.get_num_threads()
        self.llm = on_ggml_thread(Llama, model_path=str(gguf), n_ctx=n_ctx, n_threads=threads,
                                  n_threads_batch=threads, logits_all=False, verbose=False)
        self.tokenizer = tokenizer
        self.name = name
        self.source = str(gguf)
        self.fingerprint = {"kind": "none", "value": None}
        self.runtime = {"device": "cpu", "dtype": "gguf"}  # the GGUF's own quantisation (its hash is the fingerprint)
        self.config = SimpleNamespace(max_position_embeddings=n_ctx)
        self.lock = threading.RLock()
        self.n_ctx = n_ctx
        self._check_tokenizer()

    def _check_tokenizer(self) -> None:
        """The GGUF's own vocabulary must give the same ids as the shared (HF) tokenizer."""
        probe = "Step 1: 12 + 30 = 42.\n\nSo the answer is \\boxed{42}."
        ours = self.tokenizer.encode(probe, add_special_tokens=False)
        theirs = self.llm.tokenize(probe.encode(), add_bos=False, special=True)
        if list(theirs) != list(ours):
            raise ValueError(f"{self.name}: the GGUF's tokenizer gives other ids than the SRM's; it cannot share token ids")

    def logits_after(self, ids: list[int]) -> torch.Tensor:
        """Logits for the token after ``ids``, evaluating only what the cache does not already hold."""
        if len(ids) >= self.n_ctx:
            raise ValueError(f"context of {len(ids)} tokens exceeds the llama.cpp n_ctx {self.n_ctx}")
        llm = self.llm
        held = llm.input_ids[: llm.n_tokens]
        k = 0
        limit = min(len(held), len(ids))
        while k < limit and held[k] == ids[k]:
            k += 1
        k = min(k, len(ids) - 1)  # at least one token is evaluated: that forward gives the logits
        llm.n_tokens = k
        on_ggml_thread(llm.eval, ids[k:])  # llama.cpp keeps logits for the last token only (logits_all=False)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        return torch.from_numpy(np.array(logits, dtype=np.float32))

    def session(self, role: str, layer=None, boundary_ids=frozenset(), steer=None) -> "LlamaCppSession":
        if steer is not None:
            raise ValueError("the llama.cpp backend cannot be steered; steering applies to the SRM (transformers)")
        return LlamaCppSession(self, role)


class LlamaCppSession(SessionBase):
    """One sequence on a LlamaCppModel, with the same contract as ``HFSession`` (no hidden states)."""

    def __init__(self, model: LlamaCppModel, role: str):
        super().__init__(role)
        self.m = model
        self.layer = None

    def sync(self, ctx: Context, capture=()) -> list[np.ndarray]:
        if capture:
            raise ValueError("the llama.cpp backend gives no hidden states; use it for the LRM only")
        if self.seen >= len(ctx):
            return []
        t0 = time.perf_counter()
        with self.m.lock:
            self._logits = self.m.logits_after(ctx.ids)
        self.usage.record_feed(time.perf_counter() - t0, sum(1 for w in ctx.writers[self.seen :] if w != self.role))
        self.seen = len(ctx)
        return []

    def peek(self, ctx: Context, extra: list[int]) -> torch.Tensor:
        self.sync(ctx)
        t0 = time.perf_counter()
        with self.m.lock:
            logits = self.m.logits_after(ctx.ids + list(extra))
        self.usage.record_side(time.perf_counter() - t0, len(extra))
        return logits

    def rollback(self, length: int) -> None:
        if length < self.seen:
            self.seen = max(length - 1, 0)
            self._logits = None
