"""float32 vs bfloat16 for the in-process models on this CPU: decode speed and what changes.

    .venv/bin/python bench/dtype_speed.py --limit 5 --max-tokens 512

On a CPU the SRM in transformers is the bottleneck of every collaborative run (it needs
hidden states, so it cannot move to llama.cpp). ``--dtype auto`` keeps float32 on CPU;
this measures what ``--dtype bfloat16`` would buy: each model's per-token decode time
(a 48-token greedy decode of the first question, prompt prefill excluded), then the SRM
alone on the first ``--limit`` GSM8K test problems in each dtype: latency, accuracy and
how many traces are token-for-token identical to float32 (greedy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orchestration import decode_seconds_per_token  # noqa: E402

from tandem.backends.loading import ensure_loaded, load_pair  # noqa: E402
from tandem.config import RunConfig, Settings  # noqa: E402
from tandem.engine import Engine  # noqa: E402
from tandem.eval.datasets import load  # noqa: E402
from tandem.eval.grading import grade  # noqa: E402


def run(dtype: str, problems, max_tokens: int) -> dict:
    srm, lrm, load_s = load_pair(device="cpu", dtype=dtype)
    load_s += ensure_loaded(lrm)
    engine = Engine(srm, lrm)
    speed = {m: 1 / decode_seconds_per_token(engine, m, problems[0].question) for m in ("srm", "lrm")}
    cfg = RunConfig(method="srm", max_tokens=max_tokens, settings=Settings(window=4))
    traces = []
    for p in problems:
        tr = engine.solve(p.question, cfg)
        _, correct, _ = grade(p, tr.text)
        ids = [t for s in tr.steps for t in s.ids]
        u = tr.usage["srm"]
        traces.append({"id": p.id, "latency_s": tr.latency_s, "correct": correct, "ids": ids,
                       "decode_s": u.seconds - u.prefill_seconds, "completion_tokens": u.completion_tokens})
        print(f"  {dtype} {p.id} {correct} {tr.latency_s:.1f}s {len(ids)} tokens", flush=True)
    return {"dtype": dtype, "load_s": load_s, "tok_per_s": speed, "traces": traces}


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first differing token, or None when identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("bench/results/dtype-speed.json"))
    args = ap.parse_args()
    problems = load("gsm8k", "test", args.limit)
    runs = {d: run(d, problems, args.max_tokens) for d in ("float32", "bfloat16")}
    base, bf = runs["float32"]["traces"], runs["bfloat16"]["traces"]
    diffs = [first_difference(a["ids"], b["ids"]) for a, b in zip(base, bf)]
    lines = ["| dtype | SRM decode tok/s (48 tokens) | LRM decode tok/s (48 tokens) | SRM tok/s over the problems | SRM-only s/problem | SRM-only acc | traces identical to float32 |",
             "|---|---|---|---|---|---|---|"]
    for d, r in runs.items():
        t = r["traces"]
        same = sum(x is None for x in diffs) if d == "bfloat16" else len(t)
        over = sum(x["completion_tokens"] for x in t) / sum(x["decode_s"] for x in t)
        lines.append(f"| {d} | {r['tok_per_s']['srm']:.2f} | {r['tok_per_s']['lrm']:.2f} | {over:.2f} | "
                     f"{statistics.mean(x['latency_s'] for x in t):.1f} | {sum(x['correct'] for x in t)}/{len(t)} | {same}/{len(t)} |")
    lines.append(f"\nGSM8K test, first {args.limit}, SRM alone, greedy, max {args.max_tokens} tokens, "
                 f"{torch.get_num_threads()} torch threads. bfloat16 first differs from float32 at token "
                 f"{diffs} (None = identical).")
    print("\n".join(lines))
    for r in runs.values():
        for t in r["traces"]:
            t["tokens"] = len(t.pop("ids"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "first_difference": diffs, "table": lines,
                                    "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    main()
