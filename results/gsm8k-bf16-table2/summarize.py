"""The numbers RESULTS.md quotes beside `tandem report --baseline` for the Table 2 analogue.

    python3 results/gsm8k-bf16-table2/summarize.py results/gsm8k-bf16-table2 [results/gsm8k-bf16-cpu/glimprouter_te-1.1.jsonl [30,57]]

Per row, on the problems every row finished: who wrote the steps (the LRM's count, and how many it
took because RankGuide saw a low-rank window), the full rank windows, collapses, the validation
step ratio; between rows, how many final texts differ; and, with a second argument, how the
GlimpRouter row compares with another run of the same command (another host) in text and grade; with a
third (problem numbers where blocks start, e.g. the problems each session added), each row's correct
answers per block.
"""

import json
import sys
from pathlib import Path

ROWS = {
    "glimprouter": "GlimpRouter",
    "glimprouter_steer": "+ rank-guided steering",
    "rankguide_steer": "+ rank-guided routing",
}


def read(path: Path) -> dict[str, dict]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return {r["id"]: r for r in map(json.loads, lines)}


def row_of(path: Path) -> str:
    stem = path.stem
    return "glimprouter" if stem == "glimprouter" else "_".join(stem.split("_")[:2]).split("-")[0]


def main(folder: str, other: str | None = None, cuts: str | None = None) -> None:
    runs = {row_of(p): read(p) for p in sorted(Path(folder).glob("*.jsonl"))}
    ids = sorted(set.intersection(*(set(r) for r in runs.values())), key=lambda i: int(i.rsplit("-", 1)[-1]))
    print(f"{len(ids)} problems every row finished\n")
    print("| row | correct | steps | LRM steps | of them low rank | full windows | collapses | valid. ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for key, name in ROWS.items():
        recs = [runs[key][i] for i in ids]
        steps = [s for r in recs for s in r["steps"]]
        lrm = [s for s in steps if s["writer"] == "lrm"]
        low = sum(s["reason"].startswith("low rank") for s in lrm)
        windows = sum(r["meta"].get("windows", 0) for r in recs)
        collapses = sum(any(s["reason"].startswith("collapse") for s in r["steps"]) for r in recs)
        ratio = sum(r["validation_ratio"] for r in recs) / len(recs)
        print(f"| {name} | {sum(r['correct'] for r in recs)}/{len(recs)} | {len(steps)} | {len(lrm)} | {low} | "
              f"{windows} | {collapses} | {ratio:.3f} |")
    print()
    keys = list(ROWS)
    for a, b in zip(keys, keys[1:]):
        changed = sum(runs[a][i]["text"] != runs[b][i]["text"] for i in ids)
        print(f"texts that differ, {ROWS[a]} -> {ROWS[b]}: {changed} of {len(ids)}")
    if other:
        ref = read(Path(other))
        both = [i for i in ids if i in ref]
        mine = runs["glimprouter"]
        same_text = sum(mine[i]["text"] == ref[i]["text"] for i in both)
        same_grade = sum(mine[i]["correct"] == ref[i]["correct"] for i in both)
        solved_both = sum(mine[i]["correct"] and ref[i]["correct"] for i in both)
        here, there = sum(mine[i]["correct"] for i in both), sum(ref[i]["correct"] for i in both)
        print(f"GlimpRouter row against {other}: same text {same_text} of {len(both)}, "
              f"same grade {same_grade} (solved here {here}, there {there}, in both {solved_both})")
    if cuts:
        starts = [0] + [int(c) for c in cuts.split(",")]
        for lo, hi in zip(starts, starts[1:] + [len(ids)]):
            block = ids[lo:hi]
            counts = " / ".join(str(sum(runs[k][i]["correct"] for i in block)) for k in ROWS)
            print(f"problems {lo}-{hi - 1}: correct {counts} ({' / '.join(ROWS.values())})")


if __name__ == "__main__":
    main(*sys.argv[1:4])
