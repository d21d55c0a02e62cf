#!/usr/bin/env bash
# The GPU check behind BENCHMARKS.md "One H200, single stream": tandem's engine and unit tests on CUDA,
# and single-stream decode and orchestration times at the embedded pair's shapes and at the paper's
# (R1-Distill-Qwen 1.5B / 32B), on a lent GPU machine with PyTorch and transformers but none of
# tandem's other packages, no network, and at most 64 MiB carried in. No weights travel: the timed
# models have random weights (bench/orchestration.py --random-weights says why that times them right).
#
# It needs .whl/ and .gpu/ carried in the call: bench/gpu_prepare.sh makes them here (its header says what they hold).
#
#   bench/gpu_check.sh OUTDIR [LIMIT]      # OUTDIR gets env.txt, pytest.log, orch-*.log and orch-*.jsonl
set -u
cd "$(dirname "$0")/.."
out=${1:?usage: bench/gpu_check.sh OUTDIR [LIMIT]}
limit=${2:-5}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TANDEM_HOME=/tmp/th

{
  python3 -c 'import torch, transformers, sys; print("python", sys.version.split()[0], "torch", torch.__version__,
    "transformers", transformers.__version__, "gpu", torch.cuda.get_device_name(0))'
  nproc; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  git log -1 --format='tandem %H' 2>/dev/null || echo "tandem: no git here"
} 2>&1 | tee "$out/env.txt"

# the unit tests whose tiny models run in-process, on the GPU (conftest.py: TANDEM_TEST_DEVICE)
TANDEM_TEST_DEVICE=cuda timeout 240 python3 -m pytest -q -p no:cacheprovider \
  tests/test_engine.py tests/test_steering.py tests/test_collaboration.py tests/test_tt_rank.py 2>&1 | tee "$out/pytest.log"

orch() {  # NAME SRM_CONFIG LRM_CONFIG: rankguide on LIMIT questions, both models random, bf16 on cuda
  timeout 300 python3 bench/orchestration.py --device cuda --dtype bfloat16 --random-weights "$2" "$3" \
    --tokenizer .gpu/tokenizer --dataset .gpu/gsm8k-test-10.jsonl --limit "$limit" --warmup 2 --max-tokens 400 \
    --set max_step_tokens=40 --set window=4 --set delimiter=. --out "$out/orch-$1.jsonl" 2>&1 | tee "$out/orch-$1.log"
}
orch embedded .gpu/embedded-srm .gpu/embedded-lrm
orch r1-1.5b-32b bench/shapes/r1-distill-qwen-1.5b.json bench/shapes/r1-distill-qwen-32b.json
nvidia-smi --query-gpu=memory.used,temperature.gpu,clocks.sm --format=csv | tee -a "$out/env.txt"
