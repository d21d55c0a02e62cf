"""Per-verifier summary of the verifier sweep (RESULTS.md, "MentorCollab's three verifiers"); lrm-both is
the LRM judge asked in both option orders, compared with the one-order LRM judge, the others with self.

    python3 results/mentorcollab-verifiers/summarize.py results/mentorcollab-verifiers
"""
import json, sys, glob, statistics as st
rows = {}
for f in sorted(glob.glob(sys.argv[1] + "/*.jsonl")):
    v = f.split("verifier-")[1].split("_")[0].split(".")[0] + ("-both" if "option_orders-both" in f else "")
    recs = {}
    for l in open(f):
        r = json.loads(l)
        if r.get("type") != "header":
            recs[r["id"]] = r
    rows[v] = recs
ids = sorted(set.intersection(*(set(r) for r in rows.values())), key=lambda s: int(s.rsplit("-", 1)[1]))
print(len(ids), "common problems")
for v, recs in rows.items():
    R = [recs[i] for i in ids]
    stats = lambda k: sum(r["meta"]["stats"].get(k, 0) for r in R)
    lat = [r["latency_s"] for r in R]
    print(f"{v:5s} acc {sum(r['correct'] for r in R)}/{len(R)}  latency mean {st.mean(lat):.1f} s  median {st.median(lat):.1f}"
          f"  probes {stats('probes')} div {stats('divergences')} picked_srm {stats('picked_srm')} picked_lrm {stats('picked_lrm')}"
          f"  lrm gen {sum(r['usage']['lrm']['completion_tokens'] for r in R)} srm gen {sum(r['usage']['srm']['completion_tokens'] for r in R)}"
          f"  srm scoring {sum(r['usage']['srm']['scoring_tokens'] for r in R)} lrm scoring {sum(r['usage']['lrm']['scoring_tokens'] for r in R)}"
          f"  lrm share {st.mean(r['lrm_token_share'] for r in R):.3f}  lrm s {st.mean(r['usage']['lrm']['seconds'] for r in R):.1f}"
          f"  load {st.mean(r['load'] for r in R):.2f}")
for v, recs in rows.items():
    if v == "self": continue
    b = "lrm" if v == "lrm-both" else "self"  # the judge in both orders against the same judge in one
    base = rows[b]
    gained = [i for i in ids if recs[i]["correct"] and not base[i]["correct"]]
    lost = [i for i in ids if base[i]["correct"] and not recs[i]["correct"]]
    same = sum(recs[i]["text"] == base[i]["text"] for i in ids)
    print(f"{v} vs {b}: gained {gained} lost {lost} identical text {same}/{len(ids)}")
