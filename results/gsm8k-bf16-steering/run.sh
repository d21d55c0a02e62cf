#!/usr/bin/env bash
# The run behind RESULTS.md "Table 3 analogue, bfloat16": calibrate both steering vectors on 100
# GSM8K train problems, then SRM only, + SEAL steering and + RankGuide steering on the first 200
# GSM8K test problems (round-robin in chunks of 20, then 25, each `tandem eval` resuming its file, so
# the three rows always cover the same problems), then an alpha sweep on the first 20 (KINDS: which
# vectors; rankguide by default). Problems 100-199 of the SRM row were measured by the 200-problem
# sweep (results/gsm8k-bf16-cpu/srm.jsonl: the same command, the same text on 0-99).
#   results/gsm8k-bf16-steering/run.sh [OUT]      # OUT defaults to runs/steer
set -u
cd "$(dirname "$0")/../.."
O=${1:-runs/steer}
V=runs/vectors/qwen05-bf16-gsm8k100.pt
S="--dtype bfloat16 --set window=4 --set tr1=3 --set tr2=41 --max-tokens 512"
[ -f $V ] || .venv/bin/tandem calibrate -d gsm8k --split train --limit 100 $S -o $V --resume
# seed_scope=run: these files predate per-problem seeds (README, settings), so they resume only with it
T=".venv/bin/tandem eval -d gsm8k -m srm $S --set seed_scope=run"
# SRM only: the same command as results/gsm8k-bf16-embedded/run.sh (tr1/tr2 only mark ranks, the
# tokens are the same), so its first 50 problems resume from that run's file when it is there.
[ -f $O/srm.jsonl ] || { mkdir -p $O; cp runs/gsm8k-bf16/srm.jsonl $O/srm.jsonl 2>/dev/null; }
R=".venv/bin/tandem eval -d gsm8k -m srm --dtype bfloat16 --set window=4 --max-tokens 512 --set seed_scope=run"
for n in 20 40 60 80 100 125 150 175 200; do
  for row in srm seal rankguide; do
    echo "=== $(date +%T) n=$n $row"
    case $row in
      srm) $R --limit $n -o $O/srm.jsonl 2>&1 | tail -1;;
      *) $T --limit $n --steer $V --set steer_kind=$row --set alpha=1.0 -o $O/srm_steer-$row.jsonl 2>&1 | tail -1;;
    esac
  done
done
for a in 2.0 4.0; do
  for row in ${KINDS:-rankguide}; do
    echo "=== $(date +%T) alpha=$a $row"
    $T --limit 20 --steer $V --set steer_kind=$row --set alpha=$a -o $O/alpha/srm_steer-$row-a$a.jsonl 2>&1 | tail -1
  done
done
echo "=== $(date +%T) done"
