"""What every server process the tests and benchmarks start has in common: a free port on
127.0.0.1, a log file, waiting until the server answers its health probe (and stopping it when it
never does, or when the caller leaves while waiting: no orphan server), and stopping it again.
``LlamaCppServer`` (tests/llama_server.py) and ``VllmServer`` (tests/vllm_server.py) add the
command line and what each server reports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_servers_on_sigterm() -> None:
    """Make a plain ``kill`` of a benchmark leave through its ``finally`` blocks, which stop its
    servers: vLLM runs in its own process group and would otherwise outlive it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class ServerProcess:
    """A server subprocess writing to ``log``. ``own_group``: start it in its own process group and
    signal the whole group (for servers with child processes, such as vLLM's engine and worker);
    otherwise it stays in the caller's group, so that killing the caller's group takes it too."""

    name = "server"  # in error messages
    grace_s = 30.0  # how long stop() waits after SIGTERM before it kills

    def _start(self, cmd: list[str], log: Path, health: str, timeout: float, poll_s: float = 0.3,
               env: dict | None = None, own_group: bool = False) -> None:
        self.log, self.own_group = Path(log), own_group
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=own_group)
        try:
            self._wait(health, timeout, poll_s)
        except BaseException:  # not up, or the caller is leaving (Ctrl-C, SIGTERM): no orphan server
            self.stop()
            raise

    def _wait(self, health: str, timeout: float, poll_s: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(poll_s)
        raise RuntimeError(f"{self.name} did not come up in {timeout} s; log: {self.log}")

    def _signal(self, sig: int) -> None:
        if self.own_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
