"""Grading: math answers with math-verify, code answers by running them in a sandboxed subprocess.

Math: the model's answer is the content of its last ``\\boxed{}`` (nested
braces handled by ``tandem.answer``); gold and answer are parsed and compared
by math-verify (symbolic and numeric equality: ``1/2`` == ``0.5``,
``(x+1)^2`` == ``x^2+2x+1``). GSM8K golds are plain numbers while small
models often box units (``\\boxed{18 \\text{ dollars}}``, ``\\$18``); when the
gold is a number and math-verify says no, the last number in the boxed answer
is compared numerically. No box means no answer: it is graded wrong.

Code (LiveCodeBench-style stdin/stdout tests): the last fenced code block is
written to a temporary file and run with a fresh ``python -I`` per test, with
CPU-time, address-space and wall-clock limits, never inside the tandem process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from tandem.answer import last_boxed

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _as_number(text: str) -> float | None:
    t = text.strip().replace(",", "").lstrip("$")
    try:
        return float(t)
    except ValueError:
        return None


def grade_math(answer: str | None, gold: str) -> bool:
    """Is the extracted answer (``\\boxed`` content) equal to the gold answer?"""
    if answer is None or not answer.strip():
        return False
    from math_verify import parse, verify

    try:
        if verify(parse(f"${gold}$"), parse(f"$\\boxed{{{answer}}}$")):
            return True
    except Exception:  # math-verify raises on exotic LaTeX; fall through to the numeric check
        pass
    g = _as_number(gold)
    if g is None:
        return False
    numbers = _NUMBER.findall(answer.replace(",", ""))
    return bool(numbers) and abs(float(numbers[-1]) - g) <= 1e-6 * max(1.0, abs(g))


@dataclass
class CodeResult:
    passed: int
    total: int
    error: str | None = None  # first failure: "wrong answer on test 3", "timeout on test 1", ...

    @property
    def correct(self) -> bool:
        return self.total > 0 and self.passed == self.total


_FENCE = re.compile(r"```(?:python|py|python3)?[^\n]*\n(.*?)```", re.S)


def extract_program(text: str) -> str | None:
    """The last fenced code block of a solution."""
    blocks = _FENCE.findall(text)
    return blocks[-1] if blocks else None


def _limits(cpu_s: int, memory_mb: int):
    def apply():  # runs in the child before exec
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        mem = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        os.setsid()

    return apply


def grade_code(program: str | None, tests: list[dict], time_limit_s: float = 6.0, memory_mb: int = 512) -> CodeResult:
    """Run ``program`` on each ``{"input", "output"}`` test; outputs compared line by line, whitespace-trimmed."""
    if not tests:
        return CodeResult(0, 0, "no tests")
    if not program:
        return CodeResult(0, len(tests), "no code block in the answer")
    with tempfile.TemporaryDirectory(prefix="tandem-code-") as d:
        path = os.path.join(d, "solution.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        passed = 0
        for i, test in enumerate(tests, 1):
            try:
                run = subprocess.run(
                    [sys.executable, "-I", path], input=str(test.get("input", "")), capture_output=True, text=True,
                    timeout=time_limit_s, cwd=d, preexec_fn=_limits(int(time_limit_s) + 1, memory_mb),
                    env={"PATH": "/usr/bin:/bin"},
                )
            except subprocess.TimeoutExpired:
                return CodeResult(passed, len(tests), f"timeout on test {i}")
            if run.returncode != 0:
                tail = run.stderr.strip().splitlines()[-1:] or [f"exit {run.returncode}"]
                return CodeResult(passed, len(tests), f"runtime error on test {i}: {tail[0][:200]}")
            if _lines(run.stdout) != _lines(str(test.get("output", ""))):
                return CodeResult(passed, len(tests), f"wrong answer on test {i}")
            passed += 1
    return CodeResult(passed, len(tests))


def _lines(s: str) -> list[str]:
    return [line.rstrip() for line in s.strip().splitlines()]


def grade(problem, text: str) -> tuple[str | None, bool, str | None]:
    """(answer, correct, note) for a problem's generated text."""
    if problem.kind == "code":
        program = extract_program(text)
        res = grade_code(program, list(problem.tests))
        return program, res.correct, res.error or f"{res.passed}/{res.total} tests"
    answer = last_boxed(text)
    return answer, grade_math(answer, problem.gold), None if answer is not None else "no \\boxed answer"
