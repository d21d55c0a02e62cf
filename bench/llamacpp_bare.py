"""llama.cpp alone, without tandem or torch: decode and prefill speed of the embedded LRM's GGUF in a few set-ups.

    .venv/bin/python bench/llamacpp_bare.py

Each set-up runs in a fresh process (thread pools and AMX state are per process): the model
built and decoded on the main thread; built on the main thread and decoded on another (what
an eval's worker thread did before tandem gave llama.cpp a thread of its own); and with
llama.cpp's extra buffer types off (no AMX or repacked weights, ``use_extra_bufts``). 128-token
prefill, then 40 one-token decodes. BENCHMARKS.md, "llama.cpp threads".
"""

from __future__ import annotations

import subprocess
import sys

SETUPS = ["same-thread", "other-thread", "no-extra-bufts"]


def measure(setup: str) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    import llama_cpp
    from llama_cpp import Llama

    from tandem.backends.embedded import EMBEDDED, assemble

    if setup == "no-extra-bufts":
        default = llama_cpp.llama_model_default_params

        def params():
            p = default()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama_model_default_params = llama_cpp.llama.llama_cpp.llama_model_default_params = params
    llm = Llama(model_path=str(assemble(EMBEDDED["lrm"])), n_ctx=512, n_threads=2, n_threads_batch=2, verbose=False)

    def run() -> str:
        t = time.perf_counter()
        llm.eval(list(range(1000, 1128)))
        prefill = 128 / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(40):
            llm.eval([2000 + i])
        return f"decode {40 / (time.perf_counter() - t):.1f} tok/s, prefill {prefill:.1f} tok/s"

    result = ThreadPoolExecutor(1).submit(run).result() if setup == "other-thread" else run()
    build = "OpenMP" if "OPENMP = 1" in llama_cpp.llama_print_system_info().decode() else "no OpenMP"
    print(f"{setup} ({build}): {result}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        measure(sys.argv[1])
    else:
        for s in SETUPS:
            subprocess.run([sys.executable, __file__, s], check=True, stderr=subprocess.DEVNULL)
