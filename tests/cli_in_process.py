"""The tandem CLI run in this process, answering like ``subprocess.run``.

Importing torch and transformers costs a new Python process 5 to 8 seconds on a
2-core machine; the end-to-end CLI tests make about twenty such calls, so they call
the same typer app in process (click's runner: real argument parsing, exit codes
and separate stdout / stderr). Tests whose point is several processes at once (the
sharded sweep) still start real ones.
"""

from __future__ import annotations

import contextlib
import subprocess
import traceback

from typer.testing import CliRunner


def tandem(*args, cwd=None) -> subprocess.CompletedProcess:
    """``tandem ARGS`` in this process, in ``cwd``; an uncaught exception's traceback ends stderr, as a
    crashed process would print it."""
    from tandem.cli import app

    argv = [str(a) for a in args]
    with contextlib.chdir(cwd) if cwd else contextlib.nullcontext():
        res = CliRunner().invoke(app, argv)
    stderr = res.stderr
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        stderr += "".join(traceback.format_exception(res.exception))
    return subprocess.CompletedProcess(["tandem", *argv], res.exit_code, res.stdout, stderr)
