"""Orchestration overhead of the engine on real problems (GSM8K test, embedded pair).

    .venv/bin/python bench/orchestration.py --method rankguide --limit 10 --max-tokens 400

For each problem: wall time of the collaborative run, against what the same
generated tokens cost in plain single-model decoding, using each model's
per-token decode time measured in this same run (a 48-token greedy decode of
each model alone, before and after the problems, averaged: this machine's
speed drifts). Also reported: time in catch-up prefill (the other model's
tokens and the prompt) and time outside model forwards (Python, signals,
bookkeeping). Target: ratio <= 1.10.

On a GPU, or at the shapes of another pair (the paper's R1-Distill 1.5B /
32B) whose weights this machine does not hold:

    python bench/orchestration.py --device cuda --dtype bfloat16 \
        --random-weights bench/shapes/r1-distill-qwen-1.5b.json bench/shapes/r1-distill-qwen-32b.json \
        --dataset problems.jsonl --warmup 2 --set max_step_tokens=40 --set window=4 --set delimiter=.

(bench/gpu_check.sh runs exactly that on a lent GPU machine) builds both
models from those config files with random weights (the embedded
tokenizer). What a forward costs does not depend on the weights' values, so
the per-token times are those of the real models; the answers are noise, and
which model writes which step follows from random logits (see
``random_model``), so the LRM share is reported next to the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from tandem.backends.embedded import EMBEDDED, cache_path
from tandem.backends.hf import HFModel
from tandem.backends.loading import load_pair, resolve_device, resolve_dtype
from tandem.config import RunConfig, Settings, build_config
from tandem.engine import Engine
from tandem.eval.datasets import load


def decode_seconds_per_token(engine: Engine, role: str, question: str, n: int = 48) -> float:
    """Per-token decode time of one model alone (its prompt prefill excluded)."""
    one = RunConfig(method=role, max_tokens=1, settings=Settings(max_step_tokens=1))
    cfg = RunConfig(method=role, max_tokens=n, settings=Settings(max_step_tokens=n, delimiter="\x00never"))
    engine.solve(question, cfg)  # warm-up: the first prefill and decode forwards of a model pay one-time costs
    prefill_only = engine.solve(question, one).usage[role].seconds  # prompt prefill + 1 sample
    full = engine.solve(question, cfg).usage[role]
    return (full.seconds - prefill_only) / (full.completion_tokens - 1)


def random_model(config: str, tokenizer, device: str, dtype: str, seed: int, logit_scale: float) -> HFModel:
    """A model of ``config``'s shape (a config.json or a folder holding one) with random weights.

    The output layer is multiplied by ``logit_scale``: at the default initialisation every next-token
    distribution is near-uniform (entropy ~11.75 nats on Qwen's vocabulary, the same at every position),
    so an entropy router would send every step to the LRM; scaled by 16, the logits' spread is ~10 and
    entropies vary from position to position, as a trained model's do."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(config)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=resolve_dtype(dtype, device))
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(logit_scale)
    name = f"random:{config}"
    return HFModel(model, tokenizer, name=name, source=name)


def load_models(args) -> tuple:
    """The embedded pair, or random-weight models of the two given shapes; (srm, lrm, load seconds)."""
    device = resolve_device(args.device)
    if not args.random_weights:
        return load_pair(device=device, dtype=args.dtype)
    from transformers import AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or cache_path(EMBEDDED["srm"]))
    srm, lrm = (random_model(c, tokenizer, device, args.dtype, seed, args.logit_scale)
                for seed, c in enumerate(args.random_weights))
    return srm, lrm, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="rankguide")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--out", default=None, help="write per-problem rows as JSON lines")
    ap.add_argument("--dataset", default="gsm8k", help="gsm8k, or a JSONL of problems (only the questions matter here)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--random-weights", nargs=2, metavar=("SRM_CONFIG", "LRM_CONFIG"),
                    help="time models of these shapes with random weights instead of the embedded pair")
    ap.add_argument("--tokenizer", help="with --random-weights: a tokenizer folder (default: the embedded SRM's)")
    ap.add_argument("--logit-scale", type=float, default=16.0, help="with --random-weights: see random_model")
    ap.add_argument("--warmup", type=int, default=0, help="solve the first N problems once, uncounted, before timing")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the timed method")
    args = ap.parse_args()
    srm, lrm, load_s = load_models(args)
    engine = Engine(srm, lrm)
    problems = load(args.dataset, "test", args.limit)
    config = build_config(None, args.set, method=args.method, max_tokens=args.max_tokens)
    print(f"{srm.name} / {lrm.name} on {srm.runtime} ({torch.cuda.get_device_name() if srm.device.type == 'cuda' else 'CPU'})")
    for p in problems[: args.warmup]:  # not counted: a machine that has just started runs slow for a while
        engine.solve(p.question, config)
    before = {m: decode_seconds_per_token(engine, m, problems[0].question) for m in ("srm", "lrm")}
    print(f"decode before: SRM {1 / before['srm']:.2f} tok/s, LRM {1 / before['lrm']:.2f} tok/s (load {load_s:.1f} s)")
    rows = []
    traces = [(p, engine.solve(p.question, config)) for p in problems]
    after = {m: decode_seconds_per_token(engine, m, problems[0].question) for m in ("srm", "lrm")}
    print(f"decode after:  SRM {1 / after['srm']:.2f} tok/s, LRM {1 / after['lrm']:.2f} tok/s")
    t_srm, t_lrm = ((before[m] + after[m]) / 2 for m in ("srm", "lrm"))
    drift = max(max(before[m], after[m]) / min(before[m], after[m]) for m in ("srm", "lrm"))
    if drift > 1.2:
        print(f"WARNING: a model's decode speed changed {drift:.2f}x between before and after: the ratios below "
              "rest on their mean and are unreliable (try --warmup)")
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
    lrm_gen, gen = sum(r["lrm_gen"] for r in rows), sum(r["srm_gen"] + r["lrm_gen"] for r in rows)
    steps = sum(r["steps"] for r in rows)
    print(
        f"\n{args.method} {' '.join(args.set)} on {len(rows)} {args.dataset} problems ({correct} answers equal to gold): wall {total:.1f} s, "
        f"decode-equivalent {ideal:.1f} s, ratio {total / ideal:.3f} "
        f"(median per problem {statistics.median(r['ratio'] for r in rows):.3f}); "
        f"prefill {prefill:.1f} s = {prefill / total:.1%} of wall; "
        f"outside model forwards {outside:.2f} s = {outside / total:.2%} of wall; "
        f"LRM share of generated tokens {lrm_gen / max(gen, 1):.1%}, {steps} steps"
    )
    if args.out:
        with open(args.out, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
