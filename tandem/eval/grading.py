"""Grading: math answers with math-verify, code answers by running them in a sandboxed subprocess.

Math: the model's answer is the content of its last ``\\boxed{}`` (nested
braces handled by ``tandem.answer``); gold and answer are parsed and compared
by math-verify (symbolic and numeric equality: ``1/2`` == ``0.5``,
``(x+1)^2`` == ``x^2+2x+1``). GSM8K golds are plain numbers while small
models often box units (``\\boxed{18 \\text{ dollars}}``, ``\\$18``); when the
gold is a number and math-verify says no, a boxed answer that is one number with
words or a unit around it is compared numerically (``_lone_number``; never a
number taken out of an expression). No box means no answer: it is graded wrong.
math-verify bounds its parsing and comparing with ``signal.alarm``, which only
a main thread may set; called from another thread (eval's workers) it raises,
so there it runs in a grader process of its own (``_verify``), with its own
timeouts intact and a wall-clock bound around them.

Code (LiveCodeBench-style stdin/stdout tests): the last fenced code block is
written to a temporary file and run with a fresh ``python -I`` per test, with
CPU-time, address-space and wall-clock limits, never inside the tandem process.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from tandem.answer import last_boxed

NO_BOX = "no \\boxed answer"  # the grade note of a math answer without a box
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _as_number(text: str) -> float | None:
    t = text.strip().replace(",", "").lstrip("$")
    try:
        return float(t)
    except ValueError:
        return None


GRADER_TIMEOUT_S = 60.0  # wall clock for one comparison in the grader process (math-verify's own bounds: 5 s + 5 s)
_grader = None  # the grader process, started on first use off the main thread
_grader_lock = threading.Lock()


def _math_verify(gold: str, answer: str) -> bool:
    """math-verify's verdict, with its own timeouts: call it on a main thread."""
    from math_verify import parse, verify

    return verify(parse(f"${gold}$"), parse(f"$\\boxed{{{answer}}}$"))


def _verify(gold: str, answer: str) -> bool:
    """``_math_verify`` from any thread. Until 2026-12-05 eval's worker threads called math-verify
    directly, it raised there, and every answer fell to the numeric check (a fraction, an expression or
    a word was graded wrong; GSM8K's number golds were not affected, RESULTS.md)."""
    if threading.current_thread() is threading.main_thread():
        return _math_verify(gold, answer)
    global _grader
    with _grader_lock:
        if _grader is None:
            _grader = multiprocessing.get_context("spawn").Pool(1)
            atexit.register(_grader.terminate)
        pool = _grader
    try:
        return pool.apply_async(_math_verify, (gold, answer)).get(GRADER_TIMEOUT_S)
    except multiprocessing.TimeoutError:  # stuck past math-verify's own bounds: a fresh process for the next
        with _grader_lock:
            if _grader is pool:
                pool.terminate()
                _grader = None
        raise


def grade_math(answer: str | None, gold: str) -> bool:
    """Is the extracted answer (``\\boxed`` content) equal to the gold answer?"""
    if answer is None or not answer.strip():
        return False
    try:
        if _verify(gold, answer):
            return True
    except Exception:  # math-verify raises on exotic LaTeX (or timed out); fall through to the numeric check
        pass
    g, a = _as_number(gold), _lone_number(answer)
    return g is not None and a is not None and abs(a - g) <= 1e-6 * max(1.0, abs(g))


# a number inside an expression rather than beside words: a fraction, root, product, power, ratio,
# or one letter right after the number ("3x", "2 n"); "18 dollars", "18 cm", "x = 18" stay numbers
_NOT_LONE = re.compile(r"\\(?:frac|dfrac|tfrac|sqrt|pi|times|cdot|div)|[/^*:]|\d\s*[a-zA-Z]\s*$")


def _lone_number(answer: str) -> float | None:
    """The number of an answer that is one number with words or a unit around it ("18 dollars",
    "\\$18.00"), which math-verify may not read; None for anything else. Until 2026-12-06 the fallback
    took the *last* number of any answer, so \\frac{1}{3} passed for a gold 3 (RESULTS.md)."""
    text = answer.replace(",", "")
    numbers = _NUMBER.findall(text)
    if len(numbers) != 1 or _NOT_LONE.search(text):
        return None
    return float(numbers[0])


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
    return answer, grade_math(answer, problem.gold), None if answer is not None else NO_BOX
