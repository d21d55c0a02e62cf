"""Real llama.cpp servers on 127.0.0.1 for tests and benchmarks, of two kinds:

* ``python``: llama-cpp-python's ``python -m llama_cpp.server`` (text prompts: tandem's
  ``text`` dialect). It reports no cache use over the API but logs
  ``N prefix-match hit, remaining M prompt tokens to eval`` per request, which is how
  tests and ``bench/`` measure how many prompt tokens it really recomputed.
* ``cpp``: llama.cpp's own ``llama-server`` (token-id prompts: the ``ids`` dialect,
  as vLLM), built by ``tools/build-llama-server.sh`` into ``.venv/bin``. It reports
  the prompt tokens it evaluated (``timings.prompt_n``) itself.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from servers import ServerProcess, free_port

PREFIX = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")


def llama_server_binary() -> str | None:
    """``llama-server`` next to this interpreter (where tools/build-llama-server.sh puts it), or on PATH."""
    here = Path(sys.executable).parent / "llama-server"
    return str(here) if here.is_file() else shutil.which("llama-server")


class LlamaCppServer(ServerProcess):
    grace_s = 10.0  # one process, no engine or workers to wind down

    def __init__(self, gguf: str | Path, log: Path, kind: str = "python", n_ctx: int = 4096, threads: int | None = None):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        if kind == "python":
            self.name = "llama_cpp.server"
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(n_ctx), "--logits_all", "true"]
            if threads:
                cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
            health = f"{self.url}/models"
        else:
            self.name = "llama-server"
            binary = llama_server_binary()
            if binary is None:
                raise FileNotFoundError("llama-server not built: run tools/build-llama-server.sh (setup.sh does)")
            cmd = [binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port), "-c", str(n_ctx),
                   "--parallel", "1"] + (["-t", str(threads)] if threads else [])
            health = f"{self.url[:-3]}/health"
        self._start(cmd, log, health, timeout=120)

    def prefix_matches(self) -> list[tuple[int, int]]:
        """(cached, recomputed) prompt tokens of every request so far, from the server's log."""
        self._log.flush()
        return [(int(a), int(b)) for a, b in PREFIX.findall(self.log.read_text())]

