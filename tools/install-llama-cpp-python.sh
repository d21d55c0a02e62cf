#!/usr/bin/env bash
# Installs llama-cpp-python (in-process llama.cpp for the LRM, and `python -m llama_cpp.server`)
# into .venv, built from the pinned sdist WITHOUT OpenMP, so that llama.cpp threads with its
# own thread pool and not with libgomp, which torch uses too.
#
# Why: tandem runs llama.cpp on a thread of its own (tandem/backends/llamacpp.py; on CPUs with
# AMX it must not share threads with torch). With an OpenMP build that makes two OpenMP teams
# in one process, torch's and llama.cpp's; once they outnumber the cores, libgomp stops
# spinning at barriers and sleeps, and llama.cpp passes one barrier per operation: its decode
# ran at half speed whenever the SRM computed in between (BENCHMARKS.md, "llama.cpp threads").
#
# The wheel is built once per version (2 to 6 minutes on 2 cores) into
# ~/.cache/tandem/llama-cpp-python/ and reused; pip's own wheel cache is not used, because it
# would hand back a wheel built with other CMake options. Set CMAKE_ARGS to add options
# (e.g. -DGGML_CUDA=on); they are part of the cache key.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="$(sed -n 's/^llama-cpp-python\[server\]==//p' requirements/llamacpp.txt)"
ARGS="-DGGML_OPENMP=OFF${CMAKE_ARGS:+ $CMAKE_ARGS}"
KEY="$(printf '%s' "$ARGS" | sha256sum | cut -c1-12)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tandem/llama-cpp-python/$VERSION-$KEY"
PY=.venv/bin/python
pip() { "$PY" -m pip --disable-pip-version-check -q "$@"; }

installed() {  # the pinned version, built without OpenMP
  "$PY" - "$VERSION" <<'EOF' 2>/dev/null
import sys
import llama_cpp
info = llama_cpp.llama_print_system_info().decode()
sys.exit(0 if llama_cpp.__version__ == sys.argv[1] and "OPENMP = 1" not in info else 1)
EOF
}

if [ -n "${CMAKE_ARGS:-}" ] || ! installed; then   # other CMake options: install their wheel
  if ! ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    rm -rf "$CACHE.tmp" && mkdir -p "$CACHE.tmp"
    CMAKE_ARGS="$ARGS" pip wheel --no-deps --no-cache-dir "llama-cpp-python==$VERSION" -w "$CACHE.tmp"
    rm -rf "$CACHE" && mv "$CACHE.tmp" "$CACHE"
  fi
  pip install --force-reinstall --no-deps "$CACHE"/llama_cpp_python-"$VERSION"-*.whl
fi
pip install -r requirements/llamacpp.txt   # the [server] extras; the package itself is already there
installed || { echo "llama-cpp-python $VERSION without OpenMP did not install" >&2; exit 1; }
