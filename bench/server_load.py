"""Server throughput, latency percentiles and memory under load (embedded pair, loopback only).

    .venv/bin/python bench/server_load.py --max-tokens 16 --requests 12 --concurrency 1 4 16 --soak 200

Starts `tandem serve`'s app in this process (uvicorn on 127.0.0.1), drives it
with the official openai client from N threads, and reports per concurrency
level: requests/s, generated tokens/s, and p50/p90/p99 of the client-side
latency. Then a soak of `--soak` sequential short requests, sampling the
process RSS every 20 requests: memory should stay flat (caches are per
request and dropped with it). Writes bench/results/server-load.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import uvicorn

from tandem.backends.loading import load_pair
from tandem.config import RunConfig
from tandem.engine import Engine
from tandem.eval.datasets import load
from tandem.server.app import TandemServer, create_app


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="rankguide")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--requests", type=int, default=12, help="requests per concurrency level")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--soak", type=int, default=200)
    ap.add_argument("--soak-tokens", type=int, default=4)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--out", default="bench/results/server-load.json")
    args = ap.parse_args()

    srm, lrm, _ = load_pair()
    ts = TandemServer(Engine(srm, lrm), RunConfig(method=args.method, max_tokens=args.max_tokens), workers=1, queue_size=64)
    server = uvicorn.Server(uvicorn.Config(create_app(ts), host="127.0.0.1", port=args.port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key="unused", max_retries=0, timeout=600)
    questions = [p.question for p in load("gsm8k", "test", 64)]

    def ask(i: int, max_tokens: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        r = client.chat.completions.create(model="tandem", max_tokens=max_tokens,
                                           messages=[{"role": "user", "content": questions[i % len(questions)]}])
        return time.perf_counter() - t0, r.usage.completion_tokens

    ask(0, 2)  # warm-up
    levels = []
    for c in args.concurrency:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(c) as pool:
            results = list(pool.map(lambda i: ask(i, args.max_tokens), range(args.requests)))
        wall = time.perf_counter() - t0
        lat = [r[0] for r in results]
        levels.append({"concurrency": c, "requests": len(results), "wall_s": round(wall, 2),
                       "requests_per_s": round(len(results) / wall, 3),
                       "tokens_per_s": round(sum(r[1] for r in results) / wall, 2),
                       "p50_s": round(pct(lat, 0.5), 2), "p90_s": round(pct(lat, 0.9), 2), "p99_s": round(pct(lat, 0.99), 2)})
        print(json.dumps(levels[-1]), flush=True)
    memory = []
    for i in range(args.soak):
        if i % 20 == 0:
            memory.append({"after_requests": i, "rss_mib": round(rss_mib(), 1)})
        ask(i, args.soak_tokens)
    memory.append({"after_requests": args.soak, "rss_mib": round(rss_mib(), 1)})
    print(json.dumps(memory), flush=True)
    out = {"method": args.method, "max_tokens": args.max_tokens, "levels": levels, "soak_tokens": args.soak_tokens,
           "memory": memory, "rss_growth_mib": round(memory[-1]["rss_mib"] - memory[1]["rss_mib"], 1) if len(memory) > 1 else None}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    server.should_exit = True
    print(statistics.fmean(lv["requests_per_s"] for lv in levels))


if __name__ == "__main__":
    main()
