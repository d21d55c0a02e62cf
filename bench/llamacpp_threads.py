"""llama.cpp's decode speed in tandem, alone and beside the SRM, for the installed llama-cpp-python build.

    .venv/bin/python bench/llamacpp_threads.py --limit 3 --out bench/results/llamacpp-threads/NAME.json

tandem runs every llama.cpp call on a thread of its own (tandem/backends/llamacpp.py says why).
With llama-cpp-python built with OpenMP, that thread's OpenMP team and torch's share libgomp,
which stops spinning at barriers once the two teams outnumber the cores; llama.cpp passes a
barrier per operation. This measures what that costs: the embedded LRM's decode speed under
llama.cpp (tokens per second of decoding, prefill excluded) alone (LRM-only, 48 tokens of the
first question) and inside RankGuide runs, where the SRM (transformers, on the calling thread)
computes between the LRM's steps (first --limit GSM8K test problems, the operating point of
bench/lrm_backends.py). Prints and records the build (``OPENMP = 1`` or not) beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from orchestration import decode_seconds_per_token  # noqa: E402

from tandem.backends.loading import load_llamacpp, load_model  # noqa: E402
from tandem.config import RunConfig, Settings  # noqa: E402
from tandem.engine import Engine  # noqa: E402
from tandem.eval.datasets import load  # noqa: E402
from tandem.eval.runner import versions  # noqa: E402
from tandem.hardware import host  # noqa: E402

RANKGUIDE = RunConfig(method="rankguide", max_tokens=512, settings=Settings(window=4, tr1=3, tr2=41, te=0.9))


def decode_speed(usages) -> float | None:
    toks = sum(u.completion_tokens for u in usages)
    secs = sum(u.seconds - u.prefill_seconds for u in usages)
    return toks / secs if toks and secs > 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--srm-dtype", default="float32")
    ap.add_argument("--out", default=None, help="write the numbers as JSON")
    args = ap.parse_args()
    srm = load_model("embedded", "srm", device="cpu", dtype=args.srm_dtype)
    engine = Engine(srm, load_llamacpp("embedded", srm.tokenizer))
    import llama_cpp

    build = llama_cpp.llama_print_system_info().decode().strip()
    print(f"llama-cpp-python {llama_cpp.__version__}, OpenMP {'yes' if 'OPENMP = 1' in build else 'no'}: {build}")
    problems = load("gsm8k", "test", args.limit)
    alone = 1 / decode_seconds_per_token(engine, "lrm", problems[0].question)
    print(f"LRM alone: {alone:.1f} tok/s", flush=True)
    traces = []
    for p in problems:
        tr = engine.solve(p.question, RANKGUIDE)
        traces.append(tr)
        print(f"  rankguide {p.id}: {tr.latency_s:.1f} s, LRM {decode_speed([tr.usage['lrm']]) or 0:.1f} tok/s "
              f"({tr.usage['lrm'].completion_tokens} tokens)", flush=True)
    beside = {role: decode_speed([t.usage[role] for t in traces]) for role in ("srm", "lrm")}
    latency = sum(t.latency_s for t in traces) / len(traces)
    print(f"LRM beside the SRM: {beside['lrm']:.1f} tok/s (SRM {beside['srm']:.1f} tok/s); RankGuide {latency:.1f} s/problem")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({
            "build": build, "openmp": "OPENMP = 1" in build, "srm_dtype": args.srm_dtype, "problems": [p.id for p in problems],
            "lrm_tok_per_s_alone": alone, "lrm_tok_per_s_beside_srm": beside["lrm"], "srm_tok_per_s": beside["srm"],
            "rankguide_latency_s": latency, "rankguide_texts": [t.text for t in traces],
            "host": host(), "versions": versions(), "command": " ".join(sys.argv)}, indent=1) + "\n")


if __name__ == "__main__":
    main()
