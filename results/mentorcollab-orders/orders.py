"""How often the option order alone decides a MentorCollab judge (RESULTS.md, "How often the option order
decides"): from the records' meta.mentor of runs with option_orders=both, where every divergence holds the
judge's probability for the LRM's option with the LRM's option shown first (lrm_first) and second
(srm_first).

    python3 results/mentorcollab-orders/orders.py results/mentorcollab-orders

Its last line per judge counts the ties (RESULTS.md, "Ties, decided by float rounding").
"""
import glob
import json
import statistics as st
import sys

TIE = 1e-6  # tandem.engine.TIE (this script runs without tandem installed)


def rounded_up(d):
    """A tie that float rounding kept for the LRM (these runs predate tandem.engine.mean_preference)."""
    return 0.5 < d["p_lrm"] <= 0.5 + TIE


for f in sorted(glob.glob(sys.argv[1] + "/*.jsonl")):
    judge = f.split("verifier-")[1].split("_")[0].split(".")[0]
    recs = [r for r in map(json.loads, open(f)) if r.get("type") != "header"]
    ds = [d for r in recs for d in r["meta"].get("mentor", []) if "lrm_first" in d and "srm_first" in d]
    if not ds:
        continue
    n = len(ds)
    first = [d["lrm_first"] for d in ds] + [1 - d["srm_first"] for d in ds]  # P(the option shown first)
    split = [d for d in ds if (d["lrm_first"] > 0.5) != (d["srm_first"] > 0.5)]  # the order alone decides
    first_wins = sum(d["lrm_first"] > 0.5 and d["srm_first"] <= 0.5 for d in split)
    lrm_both = sum(d["lrm_first"] > 0.5 and d["srm_first"] > 0.5 for d in ds)
    srm_both = sum(d["lrm_first"] <= 0.5 and d["srm_first"] <= 0.5 for d in ds)
    picked = sum(d["picked"] == "lrm" for d in ds)
    r = st.correlation([d["lrm_first"] for d in ds], [d["srm_first"] for d in ds]) if n > 2 else float("nan")
    print(f"{judge}: {len(recs)} problems, {n} divergences judged in both orders")
    print(f"  both orders prefer the LRM's option {lrm_both} ({lrm_both / n:.0%}), both the SRM's {srm_both} ({srm_both / n:.0%}),"
          f" the orders disagree {len(split)} ({len(split) / n:.0%}): the first shown wins {first_wins}, the second {len(split) - first_wins}")
    print(f"  mean P(option shown first) {st.fmean(first):.3f}; P(LRM's option) shown first {st.fmean(d['lrm_first'] for d in ds):.3f},"
          f" second {st.fmean(d['srm_first'] for d in ds):.3f}; correlation of the two answers {r:.2f}")
    # each answer = 0.5 + content (the same in both orders) + position (for the first-shown option):
    # content = p_lrm - 0.5, position = (lrm_first - srm_first) / 2
    content = [abs(d["p_lrm"] - 0.5) for d in ds]
    position = [(d["lrm_first"] - d["srm_first"]) / 2 for d in ds]
    print(f"  position effect (lrm_first - srm_first) / 2: mean {st.fmean(position):+.3f}, median {st.median(position):+.3f};"
          f" content margin |p_lrm - 0.5|: mean {st.fmean(content):.3f}, median {st.median(content):.3f}")
    print(f"  kept the LRM's option (mean of the orders > 0.5) {picked} ({picked / n:.0%});"
          f" one random order would have picked otherwise at about {len(split) / 2 / n:.0%} of divergences")
    # ties: answers p and 1 - p (the position alone), whose float mean is 0.5 + a few 1e-8 or exactly 0.5;
    # these runs predate engine.mean_preference (e01149b), so rounding kept the LRM's option at the first kind
    ties = [d for d in ds if abs(d["p_lrm"] - 0.5) <= TIE]
    rounded = [d for d in ties if rounded_up(d)]
    own = [abs(d["p_lrm"] - 0.5) for d in ds if abs(d["p_lrm"] - 0.5) > TIE]
    held = [r for r in recs if any(rounded_up(d) for d in r["meta"].get("mentor", []))]
    print(f"  ties (the orders cancel) {len(ties)} ({len(ties) / n:.0%}): kept for the LRM by float rounding {len(rounded)},"
          f" exactly 0.5 {len(ties) - len(rounded)}; the judge's own choice of the LRM's option {picked - len(rounded)}"
          f" ({(picked - len(rounded)) / n:.0%}); content margin of the rest: median {st.median(own):.3f};"
          f" problems with a rounded pick {len(held)} ({sum(r['correct'] for r in held)} of them solved)")
