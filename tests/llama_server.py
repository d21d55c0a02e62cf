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
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PREFIX = re.compile(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_servers_on_sigterm() -> None:
    """Make a plain ``kill`` of a benchmark leave through its ``finally`` blocks, which stop its
    servers: they run in their own process groups and would otherwise outlive it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def llama_server_binary() -> str | None:
    """``llama-server`` next to this interpreter (where tools/build-llama-server.sh puts it), or on PATH."""
    here = Path(sys.executable).parent / "llama-server"
    return str(here) if here.is_file() else shutil.which("llama-server")


class LlamaCppServer:
    def __init__(self, gguf: str | Path, log: Path, kind: str = "python", n_ctx: int = 4096, threads: int | None = None):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = Path(log)
        if kind == "python":
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(n_ctx), "--logits_all", "true"]
            if threads:
                cmd += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
        else:
            binary = llama_server_binary()
            if binary is None:
                raise FileNotFoundError("llama-server not built: run tools/build-llama-server.sh (setup.sh does)")
            cmd = [binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port), "-c", str(n_ctx),
                   "--parallel", "1"] + (["-t", str(threads)] if threads else [])
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait()
        except BaseException:  # not up, or the caller is leaving (Ctrl-C, SIGTERM): no orphan server
            self.stop()
            raise

    def _wait(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                probe = f"{self.url}/models" if self.kind == "python" else f"{self.url[:-3]}/health"
                if httpx.get(probe, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"llama_cpp.server did not come up in {timeout} s")

    def prefix_matches(self) -> list[tuple[int, int]]:
        """(cached, recomputed) prompt tokens of every request so far, from the server's log."""
        self._log.flush()
        return [(int(a), int(b)) for a, b in PREFIX.findall(self.log.read_text())]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
