#!/usr/bin/env bash
# Builds llama.cpp's own OpenAI-compatible server (`llama-server`) from the llama.cpp sources
# vendored in the pinned llama-cpp-python sdist (from PyPI: no other network), statically
# linked, and puts it at .venv/bin/llama-server. Built once per version into
# ~/.cache/tandem/llama-server/ (about 6 minutes on 2 cores); later calls only copy it.
# It takes token-id prompts and reports generated ids and recomputed prompt tokens, so
# tests and benchmarks exercise tandem's `ids` dialect (the one vLLM uses) on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="$(sed -n 's/^llama-cpp-python\[server\]==//p' requirements/llamacpp.txt)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tandem/llama-server/$VERSION"
if [ ! -x "$CACHE/llama-server" ]; then
  command -v cmake >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq cmake >/dev/null 2>&1; } \
    || { echo "cmake is needed to build llama-server" >&2; exit 1; }
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  .venv/bin/python -m pip --disable-pip-version-check -q download --no-deps --no-binary :all: \
    "llama-cpp-python==$VERSION" -d "$WORK"
  tar xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
  SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S "$SRC" -B "$WORK/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
  cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >/dev/null
  mkdir -p "$CACHE"
  cp "$WORK/build/bin/llama-server" "$CACHE/llama-server.tmp" && mv "$CACHE/llama-server.tmp" "$CACHE/llama-server"
fi
cp "$CACHE/llama-server" .venv/bin/llama-server
