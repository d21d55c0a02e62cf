"""Time to load the embedded pair from the safetensors cache (after `tandem setup`).

    .venv/bin/python bench/load_time.py [--repeats 3]

Each repeat runs in a fresh Python process, so import and allocation are counted;
the OS page cache is warm after the first repeat, as on a machine in use.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = (
    "import time; t=time.perf_counter(); from tandem.backends.loading import ensure_loaded, load_pair; "
    "s,l,sec=load_pair(device='cpu'); sec+=ensure_loaded(l); print(f'{sec:.2f} {time.perf_counter()-t:.2f}')"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for i in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
        print(f"repeat {i + 1}: load_pair {out[0]} s (with imports {out[1]} s)")


if __name__ == "__main__":
    main()
