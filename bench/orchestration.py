"""Orchestration overhead of the engine on real problems (GSM8K test, embedded pair).

    .venv/bin/python bench/orchestration.py --method rankguide --limit 10 --max-tokens 400

For each problem: wall time of the collaborative run, against what the same
generated tokens cost in plain single-model decoding, using each model's
per-token decode time measured in this same run (a 48-token greedy decode of
each model alone, before and after the problems, averaged: this machine's
speed drifts). Also reported: time in catch-up prefill (the other model's
tokens and the prompt) and time outside model forwards (Python, signals,
bookkeeping). Target: ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from tandem.backends.loading import load_pair
from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.eval.datasets import load


def decode_seconds_per_token(engine: Engine, role: str, question: str, n: int = 48) -> float:
    """Per-token decode time of one model alone (its prompt prefill excluded)."""
    cfg = RunConfig(method=role, max_tokens=1, settings=Settings(max_step_tokens=1))
    engine.solve(question, cfg)  # warm-up: the first forward of a fresh model pays one-time costs
    prefill_only = engine.solve(question, cfg).usage[role].seconds  # prompt prefill + 1 sample
    cfg = RunConfig(method=role, max_tokens=n, settings=Settings(max_step_tokens=n, delimiter="\x00never"))
    full = engine.solve(question, cfg).usage[role]
    return (full.seconds - prefill_only) / (full.completion_tokens - 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="rankguide")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--out", default=None, help="write per-problem rows as JSON lines")
    args = ap.parse_args()
    srm, lrm, load_s = load_pair(device="cpu")
    engine = Engine(srm, lrm)
    problems = load("gsm8k", "test", args.limit)
    before = {m: decode_seconds_per_token(engine, m, problems[0].question) for m in ("srm", "lrm")}
    print(f"decode before: SRM {1 / before['srm']:.2f} tok/s, LRM {1 / before['lrm']:.2f} tok/s (load {load_s:.1f} s)")
    rows = []
    traces = [(p, engine.solve(p.question, RunConfig(method=args.method, max_tokens=args.max_tokens))) for p in problems]
    after = {m: decode_seconds_per_token(engine, m, problems[0].question) for m in ("srm", "lrm")}
    print(f"decode after:  SRM {1 / after['srm']:.2f} tok/s, LRM {1 / after['lrm']:.2f} tok/s")
    t_srm, t_lrm = ((before[m] + after[m]) / 2 for m in ("srm", "lrm"))
    for p, tr in traces:
        u = tr.usage
        ideal = u["srm"].completion_tokens * t_srm + u["lrm"].completion_tokens * t_lrm
        outside = tr.latency_s - u["srm"].seconds - u["lrm"].seconds
        prefill = u["srm"].prefill_seconds + u["lrm"].prefill_seconds
        row = {
            "id": p.id, "latency_s": round(tr.latency_s, 2), "decode_equiv_s": round(ideal, 2),
            "ratio": round(tr.latency_s / ideal, 3), "prefill_s": round(prefill, 2),
            "outside_models_s": round(outside, 3),
            "srm_gen": u["srm"].completion_tokens, "lrm_gen": u["lrm"].completion_tokens,
            "srm_prefill": u["srm"].prompt_tokens, "lrm_prefill": u["lrm"].prompt_tokens,
            "steps": len(tr.steps), "windows": tr.meta["windows"], "answer": tr.answer, "gold": p.gold,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    total = sum(r["latency_s"] for r in rows)
    ideal = sum(r["decode_equiv_s"] for r in rows)
    outside = sum(r["outside_models_s"] for r in rows)
    prefill = sum(r["prefill_s"] for r in rows)
    correct = sum(r["answer"] == r["gold"] for r in rows)
    print(
        f"\n{args.method} on {len(rows)} GSM8K problems ({correct} answers equal to gold): wall {total:.1f} s, "
        f"decode-equivalent {ideal:.1f} s, ratio {total / ideal:.3f} "
        f"(median per problem {statistics.median(r['ratio'] for r in rows):.3f}); "
        f"prefill {prefill:.1f} s = {prefill / total:.1%} of wall; "
        f"outside model forwards {outside:.2f} s = {outside / total:.2%} of wall"
    )
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
