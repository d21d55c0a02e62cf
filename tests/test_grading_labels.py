"""Grading (math-verify, code in a subprocess) and SEAL step labels."""

import pytest

from tandem.eval.grading import extract_program, grade_code, grade_math
from tandem.step_labels import StepLabeler, validation_ratio


@pytest.mark.parametrize(
    "answer, gold, ok",
    [
        ("72", "72", True),
        ("72.0", "72", True),
        ("\\frac{1}{2}", "0.5", True),
        ("(x+1)^2", "x^2+2x+1", True),
        ("18 \\text{ dollars}", "18", True),  # units in the box: numeric fallback for numeric golds
        ("\\$1,000", "1000", True),
        ("71", "72", False),
        (None, "72", False),
        ("", "72", False),
        ("x+1", "x+2", False),
        # the fallback reads an answer that is one number, not the last number of any answer (before
        # 2026-12-06 these three passed: MATH-500's SRM answered \frac{1}{3} for a gold 3)
        ("\\frac{1}{3}", "3", False),
        ("1/3", "3", False),
        ("3\\sqrt{2}", "2", False),
    ],
)
def test_grade_math(answer, gold, ok):
    assert grade_math(answer, gold) is ok


MATH500_LIKE = [  # golds only math-verify can match (no number for the numeric fallback to compare)
    ("\\frac{14}{3}", "\\frac{14}{3}", True),
    ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\text{Evelyn}", "\\text{Evelyn}", True),
    ("p-q", "p - q", True),
    ("\\frac{14}{5}", "\\frac{14}{3}", False),
]


def test_grade_math_on_worker_threads_as_on_the_main_thread():
    """eval grades on its worker threads, where math-verify's signal.alarm timeouts raise: the verdicts
    must be the main thread's (before the grader process, every one of these was False there)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda case: grade_math(case[0], case[1]), MATH500_LIKE))
    assert verdicts == [ok for _, _, ok in MATH500_LIKE]
    assert [grade_math(a, g) for a, g, _ in MATH500_LIKE] == verdicts


def test_a_grader_process_past_its_time_is_replaced(monkeypatch):
    """A comparison stuck past the wall-clock bound falls to the numeric check, and the next one gets a
    fresh grader process."""
    from concurrent.futures import ThreadPoolExecutor

    from tandem.eval import grading

    with ThreadPoolExecutor(1) as pool:
        pool.submit(grade_math, "1", "1").result()  # the grader process is up
        stuck = grading._grader
        monkeypatch.setattr(grading, "GRADER_TIMEOUT_S", 0.0)
        assert pool.submit(grade_math, "\\frac{14}{3}", "\\frac{14}{3}").result() is False
        assert pool.submit(grade_math, "18 \\text{ dollars}", "18").result() is True  # numeric fallback
        monkeypatch.setattr(grading, "GRADER_TIMEOUT_S", 60.0)
        assert pool.submit(grade_math, "\\frac{14}{3}", "\\frac{14}{3}").result() is True
    assert grading._grader is not None and grading._grader is not stuck


def test_grade_code_passes_fails_and_limits():
    tests = [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -4", "output": "6"}]
    good = "a, b = map(int, input().split())\nprint(a + b)\n"
    assert grade_code(good, tests).correct
    wrong = grade_code("a, b = map(int, input().split())\nprint(a - b)\n", tests)
    assert not wrong.correct and wrong.error == "wrong answer on test 1"
    slow = grade_code("while True:\n    pass\n", tests, time_limit_s=1)
    assert not slow.correct and "timeout" in slow.error
    hog = grade_code("x = bytearray(2_000_000_000)\nprint(5)\n", tests, memory_mb=256)
    assert not hog.correct and "runtime error" in hog.error and "MemoryError" in hog.error
    assert grade_code(None, tests).error == "no code block in the answer"


def test_extract_program_takes_last_block():
    text = "first\n```python\nprint(1)\n```\nthen\n```python\nprint(2)\n```\n"
    assert extract_program(text) == "print(2)\n"
    assert extract_program("no code") is None


@pytest.mark.parametrize(
    "text, label",
    [
        ("So 12 + 30 = 42.\n\n", "execution"),
        ("Wait, that is not right.\n\n", "reflection"),
        ("  **Wait** a second\n\n", "reflection"),
        ("Let me check the sum again.\n\n", "reflection"),
        ("We should verify: 6 * 7 = 42.\n\n", "reflection"),
        ("That's correct.\n\n", "reflection"),
        ("That\u2019s incorrect.\n\n", "reflection"),
        ("Alternatively, count the pairs.\n\n", "transition"),
        ("Let's try another approach.\n\n", "transition"),
        ("Waiter brings 3 plates.\n\n", "execution"),  # starts-with rules are whole words
        # reflection is checked first: a step with both is reflection
        ("Alternatively, let me check with another method.\n\n", "reflection"),
    ],
)
def test_step_labels(text, label):
    assert StepLabeler().label(text) == label


def test_labeler_rules_from_file_and_ratio(tmp_path):
    f = tmp_path / "rules.toml"
    f.write_text('reflection = ["double-check"]\nreflection_start = []\n')
    lab = StepLabeler.from_file(f)
    assert lab.label("Let me double-check.") == "reflection"
    assert lab.label("Wait.") == "execution"
    assert lab.label("Alternatively, x.") == "transition"  # untouched keys keep defaults
    assert validation_ratio(["execution", "reflection", "transition", "execution"]) == 0.5
    assert validation_ratio([]) is None
    (tmp_path / "bad.toml").write_text("colour = ['x']\n")
    with pytest.raises(ValueError, match="bad label rules"):
        StepLabeler.from_file(tmp_path / "bad.toml")
