#!/usr/bin/env bash
# The run behind RESULTS.md "50 GSM8K problems, bfloat16": srm, lrm, rankguide, specreason and
# mentorcollab on the first 50 GSM8K test problems, both models in bfloat16. Round-robin in chunks
# of 10 (each `tandem eval` resumes its file), so every method always covers the same problems.
#   results/gsm8k-bf16-embedded/run.sh [OUT]      # OUT defaults to runs/gsm8k-bf16
set -u
cd "$(dirname "$0")/../.."
# seed_scope=run: these files predate per-problem seeds (README, settings), so they resume only with it
T=".venv/bin/tandem eval -d gsm8k --dtype bfloat16 --set window=4 --max-tokens 512 --set seed_scope=run"
O=${1:-runs/gsm8k-bf16}
for n in 10 20 30 40 50; do
  for m in srm lrm rankguide specreason mentorcollab; do
    case $m in
      srm) args="-m srm -o $O/srm.jsonl";;
      lrm) args="-m lrm -o $O/lrm.jsonl";;
      rankguide) args="-m rankguide --set tr1=3 --set tr2=41 --set te=0.9 -o $O/rankguide_te0.9_tr2-41.jsonl";;
      specreason) args="-m specreason --set accept=7 -o $O/specreason_accept7.jsonl";;
      mentorcollab) args="-m mentorcollab --set probe_rate=0.05 --set lookahead=16 --seed 1 -o $O/mentorcollab_p0.05.jsonl";;
    esac
    echo "=== $(date +%T) n=$n $m"
    $T --limit $n $args 2>&1 | tail -2
  done
done
echo "=== $(date +%T) done"
