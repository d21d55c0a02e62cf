"""The eval runner, resume, sweeps, reports and analysis, on tiny random models and real files."""

import contextlib
import json
import os
import subprocess
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest
from cli_in_process import tandem

from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.eval.datasets import DatasetError, Fields, load
from tandem.eval.runner import EvalError, ResultsFile, make_header, run_eval, solve_problem

QUESTIONS = ["What is 2 + 3?", "A cat has 4 legs. How many legs do 3 cats have?", "What is 10 - 7?"]


@pytest.fixture()
def problems_file(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"id": f"q{i}", "question": q, "answer": str(i)}) + "\n" for i, q in enumerate(QUESTIONS)))
    return f


def _cfg(**kw):
    return RunConfig(method=kw.pop("method", "rankguide"), max_tokens=kw.pop("max_tokens", 24), settings=Settings(window=2, **kw))


def _eval(engine, problems, cfg, path, **kw):
    header = make_header(engine, cfg, {"name": "p", "split": "test"})
    return run_eval(engine, problems, cfg, ResultsFile(path), header, **kw)


@contextlib.contextmanager
def _must_not_warn(category):
    """A warning of ``category`` inside the block fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", category)
        yield


def test_eval_writes_header_and_records_and_resumes(tiny_pair, problems_file, tmp_path):
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    out = tmp_path / "run.jsonl"
    calls = []

    def counted(*a):
        calls.append(a[1].id)
        return solve_problem(*a)

    records, errors = _eval(engine, problems[:2], _cfg(), out, solve=counted)
    assert not errors and [r["id"] for r in records] == ["q0", "q1"]
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["config"]["method"] == "rankguide"
    assert {"tandem", "torch", "transformers", "python"} <= set(header["versions"])
    rec = json.loads(lines[1])
    for key in ("id", "question", "gold", "answer", "correct", "latency_s", "steps", "usage", "validation_ratio"):
        assert key in rec
    assert all({"writer", "signals", "label"} <= set(s) for s in rec["steps"])

    # a crash mid-write leaves a torn last line: it is cut, nothing is duplicated, only q2 is solved
    with open(out, "a") as f:
        f.write('{"type": "result", "id": "q2", "quest')
    calls.clear()
    heard, resumed = [], []
    records, errors = _eval(engine, problems, _cfg(), out, solve=counted, on_result=lambda r: heard.append(r["id"]),
                            on_resumed=lambda recs: resumed.append([r["id"] for r in recs]))
    assert calls == ["q2"] and not errors
    assert heard == ["q2"] and resumed == [["q0", "q1"]]  # the file's records once, together; then each new one
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()[1:]]
    assert ids == ["q0", "q1", "q2"]
    # a third run does no work
    calls.clear()
    _eval(engine, problems, _cfg(), out, solve=counted)
    assert calls == []


def test_resume_with_other_settings_is_refused(tiny_pair, problems_file, tmp_path):
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))[:1]
    out = tmp_path / "run.jsonl"
    _eval(engine, problems, _cfg(), out)
    before = out.read_bytes()
    with pytest.raises(EvalError, match="config differs"):
        _eval(engine, problems, _cfg(te=0.5), out)
    assert out.read_bytes() == before  # nothing lost


def test_header_records_dtype_and_a_run_in_another_dtype_is_not_resumed(tiny_pair, tiny_srm_bf16, problems_file, tmp_path):
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))[:1]
    out = tmp_path / "run.jsonl"
    _eval(engine, problems, _cfg(), out)
    header = json.loads(out.read_text().splitlines()[0])
    assert header["models"]["srm"]["runtime"] == {"device": str(tiny_pair[0].device), "dtype": "float32"}
    before = out.read_bytes()
    bf16 = tiny_srm_bf16
    assert bf16.runtime["dtype"] == "bfloat16"
    with pytest.raises(EvalError, match="models differs"):
        _eval(Engine(bf16, tiny_pair[1]), problems, _cfg(), out)
    assert out.read_bytes() == before
    # a file written before tandem recorded the runtime still resumes
    lines = out.read_text().splitlines()
    old = json.loads(lines[0])
    for m in old["models"].values():
        del m["runtime"]
    out.write_text("\n".join([json.dumps(old), *lines[1:]]) + "\n")
    records, errors = _eval(engine, problems, _cfg(), out)
    assert not errors and [r["id"] for r in records] == ["q0"]


def test_failed_problem_is_reported_not_written_and_retried(tiny_pair, problems_file, tmp_path):
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    out = tmp_path / "run.jsonl"

    def flaky(engine, problem, cfg):
        if problem.id == "q1":
            raise ConnectionError("server at http://127.0.0.1:9 went away")
        return solve_problem(engine, problem, cfg)

    records, errors = _eval(engine, problems, _cfg(), out, solve=flaky)
    assert list(errors) == ["q1"] and "127.0.0.1:9" in errors["q1"]
    assert [r["id"] for r in records] == ["q0", "q2"]
    records, errors = _eval(engine, problems, _cfg(), out)
    assert not errors and [r["id"] for r in records] == ["q0", "q1", "q2"]


def test_parallel_workers_give_the_same_records(tiny_pair, problems_file, tmp_path):
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    one, _ = _eval(engine, problems, _cfg(), tmp_path / "a.jsonl", workers=1)
    three, _ = _eval(engine, problems, _cfg(), tmp_path / "b.jsonl", workers=3)
    strip = lambda rs: [(r["id"], r["text"], [s["writer"] for s in r["steps"]]) for r in rs]  # noqa: E731
    assert strip(one) == strip(three)
    assert {r["workers"] for r in one} == {1} and {r["workers"] for r in three} == {3}

    # the report says which latencies were measured with problems in flight
    from tandem.analysis.report import report

    md = (report([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "rep") / "report.md").read_text()
    assert "several problems in flight (`--workers`), not one at a time: b (3)." in md and "a (1)" not in md


def test_records_say_where_and_under_what_load_they_were_measured(tiny_pair, problems_file, tmp_path):
    """Each record names its machine, time and load; a report over files that span machines, or whose
    problems ran beside other work, says so (here a resume on another machine is written by hand)."""
    import platform

    from tandem.analysis.report import _host_label, report

    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    records, _ = _eval(engine, problems, _cfg(), tmp_path / "a.jsonl")
    host = records[0]["host"]
    assert host["node"] == platform.node() and host["cpus"] >= 1 and host["torch_threads"] >= 1 and host["cpu"]
    assert all(r["finished"].endswith("+00:00") and isinstance(r["load"], float) for r in records)
    assert all(isinstance(r["steal"], float) and 0 <= r["steal"] <= 1 for r in records)  # Linux has /proc/stat

    # two copies of that run: a as measured on a quiet machine; b the same, but its last problem finished on
    # another machine while other work loaded it ("~" sorts that machine after any host name)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    quiet = [lines[0]] + [json.dumps(dict(json.loads(x), load=0.1, steal=0.0, latency_s=float(i))) for i, x in enumerate(lines[1:], 1)]
    (tmp_path / "a.jsonl").write_text("\n".join(quiet) + "\n")
    md = (report([tmp_path / "a.jsonl"], tmp_path / "rep") / "report.md").read_text()
    assert "more than one machine" not in md and "load average" not in md

    last = dict(json.loads(quiet[-1]), host=dict(host, node="~other-box", boot=None, cpus=2), load=4.2)
    (tmp_path / "b.jsonl").write_text("\n".join(quiet[:-1] + [json.dumps(last)]) + "\n")
    md = (report([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "rep") / "report.md").read_text()
    assert f"Latency measured on more than one machine: A = {_host_label(host)}; B = ~other-box:" in md
    assert "Problems per machine (mean latency there): a A 3 (2.0 s), b A 2 (1.5 s) / B 1 (3.0 s)." in md
    assert "stolen by the hypervisor for other VMs): b (1 of 3)." in md
    assert "more than one processor model" not in md  # another machine, the same processor model

    # another processor model: the texts may differ as well, and the report says which runs it computed
    other = dict(last, host=dict(last["host"], cpu="~Other CPU 9000", gpu=None))
    (tmp_path / "b.jsonl").write_text("\n".join(quiet[:-1] + [json.dumps(other)]) + "\n")
    md = (report([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "rep") / "report.md").read_text()
    assert f"Records computed on more than one processor model ({host['gpu'] or host['cpu']}: a, b; ~Other CPU 9000: b)." in md


def test_resuming_on_another_processor_warns_that_texts_may_mix(tiny_pair, problems_file, tmp_path):
    """Greedy texts repeat on one processor model, not across models: resuming records computed on another
    warns (here the other processor is written into the records by hand); resuming on this one does not."""
    from tandem.hardware import OtherProcessorWarning

    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    out = tmp_path / "run.jsonl"
    with _must_not_warn(OtherProcessorWarning):
        _eval(engine, problems[:2], _cfg(), out)
        _eval(engine, problems[:2], _cfg(), out)  # same processor: no warning
    header, *lines = out.read_text().splitlines()
    other = [json.dumps(dict(r, host=dict(r["host"], cpu="Other CPU 9000"))) for r in map(json.loads, lines[:1])]
    out.write_text("\n".join([header] + other + lines[1:]) + "\n")
    with _must_not_warn(OtherProcessorWarning):  # nothing left to solve: nothing to mix, no warning
        _eval(engine, problems[:2], _cfg(), out)
    with pytest.warns(OtherProcessorWarning, match=r"finished problems in it were computed on Other CPU 9000, this machine is"):
        records, errors = _eval(engine, problems, _cfg(), out)
    assert not errors and [r["id"] for r in records] == ["q0", "q1", "q2"]


def test_records_resumed_under_other_versions_name_them(tiny_pair, problems_file, tmp_path):
    """The header speaks for the run that began a file: records added by a resumed run under another git commit
    carry it (no warning), under another library version too (with a warning); report names such runs."""
    from tandem.analysis.report import report
    from tandem.eval.runner import OtherVersionsWarning, versions

    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    out = tmp_path / "run.jsonl"
    with _must_not_warn(OtherVersionsWarning):
        _eval(engine, problems[:1], _cfg(), out)
        _eval(engine, problems[:2], _cfg(), out)  # the same code: the records say nothing more
    header, *lines = out.read_text().splitlines()
    assert not any("versions" in json.loads(x) for x in lines)
    md = (report([out], tmp_path / "rep") / "report.md").read_text()
    assert "other versions" not in md

    def rewrite(**old):
        h = json.loads(header)
        h["versions"] |= old
        out.write_text("\n".join([json.dumps(h)] + lines) + "\n")

    now = versions()
    rewrite(git="0" * 40)  # a commit since: recorded, no warning
    with _must_not_warn(OtherVersionsWarning):
        _eval(engine, problems[:3], _cfg(), out)
    added = json.loads(out.read_text().splitlines()[-1])
    assert added["id"] == "q2" and added["versions"] == {"git": now["git"]}

    rewrite(torch="1.0.0", git="0" * 40)  # a torch upgrade since: recorded, and warned of
    with pytest.warns(OtherVersionsWarning, match=r"run\.jsonl was begun with other versions than this run's \(torch 1\.0\.0 -> "):
        _eval(engine, problems, _cfg(), out)
    added = json.loads(out.read_text().splitlines()[-1])
    assert added["id"] == "q2" and added["versions"] == {"torch": now["torch"], "git": now["git"]}
    md = (report([out], tmp_path / "rep") / "report.md").read_text()
    assert "Records computed under other versions than their file's header records" in md
    assert "run (1 of 3: git, torch)" in md
    with _must_not_warn(OtherVersionsWarning):  # nothing left to solve: nothing added, no warning
        _eval(engine, problems, _cfg(), out)


def _commit_all(root: Path) -> str:
    """Make ``root`` a git repository with everything in it committed; the commit's hash."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    return git("rev-parse", "HEAD").strip()


def test_code_state_is_dirty_only_for_tandems_own_code(tmp_path):
    """Records say whether the package differed from its commit; a note or a results script edited
    while a sweep runs must not make them another version (a real git repository in tmp_path)."""
    from tandem.eval.runner import code_state

    assert code_state(tmp_path) == {"git": None, "git_dirty": None}  # not a checkout (an installed wheel)
    (tmp_path / "tandem").mkdir()
    for name in ("tandem/engine.py", "pyproject.toml", "RESULTS.md"):
        (tmp_path / name).write_text("v1\n")
    commit = _commit_all(tmp_path)
    assert code_state(tmp_path) == {"git": commit, "git_dirty": False}
    (tmp_path / "RESULTS.md").write_text("v2\n")
    (tmp_path / "notes.md").write_text("new\n")
    assert code_state(tmp_path)["git_dirty"] is False
    (tmp_path / "tandem" / "new_policy.py").write_text("new\n")  # a new module is code too
    assert code_state(tmp_path)["git_dirty"] is True
    (tmp_path / "tandem" / "new_policy.py").unlink()
    (tmp_path / "pyproject.toml").write_text("v2\n")
    assert code_state(tmp_path) == {"git": commit, "git_dirty": True}


def test_records_name_the_code_the_process_imported_not_the_later_working_tree(tmp_path):
    """A sweep runs for hours beside a checkout being edited: its records must keep naming the commit it
    started from, clean, after a tandem module changes on disk (a copy of the package in a real repository,
    a real Python process that imports it, then edits it)."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "tandem", tmp_path / "tandem", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", tmp_path)
    commit = _commit_all(tmp_path)
    script = (
        "import json, pathlib, tandem.eval.runner as r\n"
        "before = r.versions()\n"
        "p = pathlib.Path(r.__file__).parents[1] / 'engine.py'\n"
        "assert p.is_relative_to(pathlib.Path.cwd()), p  # the copy, never the checkout under test\n"
        "p.write_text(p.read_text() + '# edited while a sweep runs\\n')\n"
        "print(json.dumps([before, r.versions(), r.code_state(p.parents[1])]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    before, after, tree = json.loads(res.stdout)
    assert (before["git"], before["git_dirty"]) == (commit, False)
    assert (after["git"], after["git_dirty"]) == (commit, False)  # the process still runs the committed code
    assert tree == {"git": commit, "git_dirty": True}  # while the tree itself has changed


def test_host_label_names_machine_boot_processor_and_bf16():
    from tandem.analysis.report import _host_label

    cpu = {"node": "box", "boot": "1a2b3c4d", "cpu": "Xeon", "cpu_bf16": False, "cpus": 2, "gpu": None}
    assert _host_label(cpu) == "box (boot 1a2b3c4d): Xeon, 2 CPUs, bf16 emulated"
    assert _host_label(dict(cpu, cpu_bf16=True, boot=None)) == "box: Xeon, 2 CPUs, bf16 in hardware"
    assert _host_label(dict(cpu, cpu_bf16=None)) == "box (boot 1a2b3c4d): Xeon, 2 CPUs"
    assert _host_label(dict(cpu, gpu="NVIDIA H100", cpus=16)) == "box (boot 1a2b3c4d): NVIDIA H100, 16 CPUs"
    assert _host_label(None) == "not recorded"


def test_bf16_warning_only_where_a_cpu_emulates_bf16():
    from tandem.hardware import bf16_in_hardware, bf16_warning, host

    assert "emulated" in bf16_warning("cpu", "bfloat16", cpu_bf16=False) and "--dtype float32" in bf16_warning("cpu", "bfloat16", False)
    assert bf16_warning("cpu", "bfloat16", True) is None and bf16_warning("cpu", "bfloat16", None) is None
    assert bf16_warning("cpu", "float32", False) is None and bf16_warning("cuda:0", "bfloat16", False) is None
    assert host()["cpu_bf16"] == bf16_in_hardware()


def test_steal_share_between_two_readings_of_the_cpu_times():
    """The hypervisor's share of the CPU time between two /proc/stat readings; None without two readings
    or without time passing."""
    from tandem.hardware import cpu_times, steal_share

    steal, total = cpu_times()
    assert 0 <= steal <= total
    assert steal_share((10, 1000), (40, 1100)) == 0.3 and steal_share((10, 1000), (10, 1100)) == 0.0
    assert steal_share(None, (40, 1100)) is None and steal_share((10, 1000), (10, 1000)) is None


def test_jsonl_errors_name_the_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "a", "question": "q", "answer": "1"}\n\n{"id": "b", "question": "q"\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:3: not valid JSON"):
        load(str(f))
    f.write_text('{"id": "a", "question": "q", "answer": "1"}\n{"id": "b", "question": "q"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: missing field 'answer'"):
        load(str(f))
    f.write_text('{"pid": "a", "problem": "q", "sol": "1"}\n{"pid": "b", "problem": "q", "tests": [{"input": "1", "output": "1"}]}\n')
    ps = load(str(f), fields=Fields(question="problem", answer="sol", id="pid"))
    assert [(p.id, p.kind) for p in ps] == [("a", "math"), ("b", "code")]


_cli = tandem  # in process; the sharded sweep below starts real processes


@pytest.mark.filterwarnings("error::UserWarning")  # in process, a warning fails the command: figures of empty traces must not warn
def test_cli_eval_sweep_report_analyze(tiny_pair_dirs, problems_file, tmp_path):
    srm, lrm = tiny_pair_dirs
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'max_tokens = 16\nsrm = "{srm}"\nlrm = "{lrm}"\n[settings]\nwindow = 2\n'
        '[[grid]]\nmethod = "srm"\n[[grid]]\nmethod = "lrm"\n[[grid]]\nmethod = "rankguide"\nte = [0.5, 3.0]\n'
    )
    out = tmp_path / "grid"
    res = _cli("sweep", "-d", problems_file, "--config", grid, "-o", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.glob("*.jsonl")) == ["lrm.jsonl", "rankguide_te-0.5.jsonl", "rankguide_te-3.0.jsonl", "srm.jsonl"]
    sizes = {p.name: p.stat().st_size for p in out.glob("*.jsonl")}
    res = _cli("sweep", "-d", problems_file, "--config", grid, "-o", out, cwd=tmp_path)  # resume: nothing to do
    assert res.returncode == 0 and sizes == {p.name: p.stat().st_size for p in out.glob("*.jsonl")}

    res = _cli("report", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    table = (out / "report.md").read_text()
    assert "| lrm | lrm | - | 0.0% |" in table and "| te=0.5 |" in table and "1.00x" in table and "rankguide_te-0.5" in table
    assert (out / "pareto.png").stat().st_size > 10_000
    pdf = (out / "pareto.pdf").read_bytes()  # the same figure for a paper: vector, TrueType fonts, no date
    assert pdf.startswith(b"%PDF") and b"/FontFile2" in pdf and b"/Type3" not in pdf and b"CreationDate" not in pdf
    title = table.splitlines()[2]
    assert "(float32)" in title and "cpu" not in title  # CPU runs: the dtype alone

    # a run on a GPU says so in the title: its latencies are another machine's
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    for name in ("srm.jsonl", "lrm.jsonl"):
        lines = (out / name).read_text().splitlines()
        header = json.loads(lines[0])
        for m in header["models"].values():
            m["runtime"]["device"] = "cuda:0"
        (gpu / name).write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    res = _cli("report", gpu, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "(float32, cuda:0)" in (gpu / "report.md").read_text().splitlines()[2]

    res = _cli("analyze", out / "srm.jsonl", out / "lrm.jsonl", "-o", tmp_path / "fig", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for png in ("min_ranks.png", "min_r2_vs_windows.png", "r2_by_position.png", "entropy_by_rank.png", "entropy_vs_r2.png",
                "validation_ratio.png"):
        assert (tmp_path / "fig" / png).stat().st_size > 5_000
        assert (tmp_path / "fig" / png).with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    summary = (tmp_path / "fig" / "summary.md").read_text()
    assert "Samples with at least one full window" in summary
    data = json.loads((tmp_path / "fig" / "summary.json").read_text())  # the values behind the figures
    assert [r["name"] for r in data["runs"]] == ["srm", "lrm"] and data["samples"] == len(QUESTIONS)
    n_min = sum(len(v) for v in data["min_ranks"]["r1"].values())
    assert n_min == data["samples_with_windows"] and f"Samples with at least one full window: {n_min} of {len(QUESTIONS)}" in summary
    assert len(data["rank_samples"]) == n_min and "windows per sample" in summary and "first window's r2" in summary
    assert sum(len(b["correct"]) + len(b["incorrect"]) for b in data["min_r2_by_windows"]) == sum(len(v) for v in data["min_ranks"]["r2"].values())
    assert sum(len(p["correct"]) + len(p["incorrect"]) for p in data["r2_by_position"]) == sum(len(r["r2s"]) for r in data["rank_samples"])
    assert len(data["validation"]["lrm"]["all"]) == len(QUESTIONS) and set(data["entropy_by_rank"]) == {"low rank", "high rank"}
    assert sum(len(b["entropy"]) for b in data["entropy_by_r2_band"]) == len(data["step_signals"])
    assert "The collapse test (Eq. 4" in summary and len(data["collapse"]) <= data["samples_with_windows"]
    assert "## 4. Loops" in summary and [t["run"] for t in data["loops_by_run"]] == ["srm", "lrm"]
    assert data["loops_by_run"][1]["collapse_before"] is None  # the LRM's traces have no rank signals
    # --limit: the first N problems both runs finished, and the study says so
    res = _cli("analyze", out / "srm.jsonl", out / "lrm.jsonl", "--limit", 2, "-o", tmp_path / "fig2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "fig2" / "summary.json").read_text())
    assert data["limit"] == 2 and data["samples"] == 2 and [r["problems"] for r in data["runs"]] == [2, 2]
    assert "Runs (the first 2 problems all the runs finished): srm (srm, 2 problems)" in (tmp_path / "fig2" / "summary.md").read_text()
    res = _cli("analyze", out / "srm.jsonl", "--limit", 0, "-o", tmp_path / "fig3", cwd=tmp_path)
    assert res.returncode == 2 and "--limit must be at least 1" in res.stderr

    # eval on its own, then a resume with other settings: exit 2, file untouched
    one = tmp_path / "one.jsonl"
    res = _cli("eval", "-d", problems_file, "-m", "glimprouter", "--srm", srm, "--lrm", lrm, "--max-tokens", 8, "-o", one, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # stderr is a pipe here, where rich draws no bar: one plain line per problem instead
    n = len(QUESTIONS)
    assert all(f"{i}/{n} · acc" in res.stderr for i in range(1, n + 1)), res.stderr
    before = one.read_bytes()
    # resumed with the last problem to do: the two in the file count in one line, the new one in its own
    one.write_text("".join(before.decode().splitlines(keepends=True)[:3]))
    res = _cli("eval", "-d", problems_file, "-m", "glimprouter", "--srm", srm, "--lrm", lrm, "--max-tokens", 8, "-o", one, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [x for x in res.stderr.splitlines() if " · acc " in x and "elapsed" in x]
    assert len(lines) == 2 and " 2/3 · acc " in lines[0] and " · 2 from the file · " in lines[0] and " 3/3 · acc " in lines[1], res.stderr
    assert [json.loads(x)["id"] for x in one.read_text().splitlines()[1:]] == ["q0", "q1", "q2"]
    before = one.read_bytes()
    res = _cli("eval", "-d", problems_file, "-m", "glimprouter", "--set", "te=0.1", "--srm", srm, "--lrm", lrm, "--max-tokens", 8, "-o", one, cwd=tmp_path)
    assert res.returncode == 2 and "differ" in res.stderr and one.read_bytes() == before


def test_compare_says_which_problems_kept_their_text_and_where_the_others_part(tiny_pair, problems_file, tmp_path):
    """``tandem compare``: a run and a copy in which one problem's last step (hence its text) and grade differ,
    as a run measured again on another processor would."""
    engine = Engine(*tiny_pair)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    records, _ = _eval(engine, load(str(problems_file)), _cfg(method="srm"), a)
    header, *lines = a.read_text().splitlines()
    changed = json.loads(lines[1])
    last = len(changed["steps"]) - 1
    changed["steps"][last]["text"] += " (otherwise)"
    changed.update(text=changed["text"] + " (otherwise)", correct=not changed["correct"])
    b.write_text("\n".join([header, lines[0], json.dumps(changed), lines[2]]) + "\n")

    res = _cli("compare", a, b, "-o", tmp_path / "cmp.md", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "cmp.md").read_text()
    assert md.strip() == res.stdout.strip()
    assert "**Same text: 2 of 3.** The other 1 part at step " + str(last) in md
    assert f"after {len(records[1]['text'])} characters" in md
    assert "Grades agree on 2 of 3" in md and ("+1 / -0" in md or "+0 / -1" in md)
    assert f"| q1 | no | {last} | {len(records[1]['text'])} |" in md and "| q0 | yes | - |" in md

    # a folder of several runs is not one side: a clear error, exit 2
    (tmp_path / "two").mkdir()
    for f in (a, b):
        (tmp_path / "two" / f.name).write_bytes(f.read_bytes())
    res = _cli("compare", tmp_path / "two", a, cwd=tmp_path)
    assert res.returncode == 2 and "holds 2 runs; compare takes one eval file" in " ".join(res.stderr.split())


def test_compare_two_folders_pairs_the_runs_that_compute_the_same_thing(tiny_pair, problems_file, tmp_path):
    """``tandem compare DIR DIR``: a sweep measured again elsewhere. Runs pair by what they compute, not by
    file name (a renamed copy pairs); MentorCollab's seed is part of that (its probes), so seed 2 finds no
    partner; each folder's runs without one are named; two folders with no such pair are exit 2."""
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _eval(engine, problems, _cfg(method="srm"), a / "srm.jsonl")
    _eval(engine, problems, _cfg(method="lrm"), a / "lrm.jsonl")
    mentor = dict(method="mentorcollab", probe_rate=0.3, lookahead=4)
    _eval(engine, problems, _cfg(**mentor), a / "mc.jsonl")
    _eval(engine, problems[:2], RunConfig(method="mentorcollab", seed=2, max_tokens=24,
                                          settings=Settings(window=2, probe_rate=0.3, lookahead=4)), b / "mc_seed2.jsonl")
    header, *lines = (a / "srm.jsonl").read_text().splitlines()
    changed = json.loads(lines[0])
    changed["steps"][0]["text"] += " (otherwise)"
    changed.update(text=changed["text"] + " (otherwise)", correct=not changed["correct"], latency_s=2 * changed["latency_s"])
    (b / "srm_again.jsonl").write_text("\n".join([header, json.dumps(changed), lines[1]]) + "\n")  # 2 of A's 3 problems
    (b / "mentorcollab_probe_rate-0.3.jsonl").write_bytes((a / "mc.jsonl").read_bytes())

    res = _cli("compare", a, b, "-o", tmp_path / "cmp.md", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "cmp.md").read_text()
    assert md.strip() == res.stdout.strip()
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in md.splitlines() if ln.startswith(("| srm ", "| mc "))}
    assert set(rows) == {"srm", "mc"}
    assert rows["srm"][1:6] == ["srm_again", "2", "1", "0", "1"]  # problems, same text, parts at step 0, grades agree
    l0, l1 = (json.loads(x)["latency_s"] for x in lines[:2])
    assert rows["srm"][-1] == f"{(2 * l0 + l1) / (l0 + l1):.2f}x |"
    assert rows["mc"][1:6] == ["mentorcollab_probe_rate-0.3", "3", "3", "-", "3"] and rows["mc"][-1] == "1.00x |"
    assert "Runs of A without a partner: `lrm` (lrm)." in md and "Runs of B without a partner: `mc_seed2` (mentorcollab)." in md
    assert "## srm / srm_again" in md and "## mc / mentorcollab_probe_rate-0.3" in md and "**Same text: 3 of 3.**" in md

    # folders with nothing in common: a clear error, exit 2, nothing written
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "lrm.jsonl").write_bytes((b / "mc_seed2.jsonl").read_bytes())
    res = _cli("compare", tmp_path / "c", a, "-o", tmp_path / "none.md", cwd=tmp_path)
    assert res.returncode == 2 and "computes what a run in" in " ".join(res.stderr.split()) and not (tmp_path / "none.md").exists()


def test_sweep_chunk_round_robin_keeps_points_on_the_same_problems(tiny_pair_dirs, problems_file, tmp_path):
    srm, lrm = tiny_pair_dirs
    grid = tmp_path / "grid.toml"
    grid.write_text(f'max_tokens = 8\nsrm = "{srm}"\nlrm = "{lrm}"\n[settings]\nwindow = 2\n[[grid]]\nmethod = ["srm", "lrm"]\n')
    out = tmp_path / "grid"
    res = _cli("sweep", "-d", problems_file, "--limit", 2, "--chunk", 1, "--config", grid, "-o", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    done = [line.split("] ", 2)[-1] for line in res.stderr.splitlines() if " done, accuracy" in line]
    # every point finishes problem 1 before any point starts problem 2
    assert [d.split(",")[0] for d in done] == ["srm: 1/1 done", "lrm: 1/1 done", "srm: 2/2 done", "lrm: 2/2 done"]
    for name in ("srm", "lrm"):
        ids = [json.loads(x)["id"] for x in (out / f"{name}.jsonl").read_text().splitlines()[1:]]
        assert ids == ["q0", "q1"]


def test_stop_after_reads_hours_minutes_and_seconds():
    from tandem.eval.sweep import parse_duration

    assert [parse_duration(t) for t in ("90", "90s", "45m", "2h", "1h30m", "1.5h", " 2H ")] == [90, 90, 2700, 7200, 5400, 5400, 7200]
    for bad in ("", "h", "soon", "-1", "1m2h", "2 h"):
        with pytest.raises(ValueError, match="e.g. 90s, 45m, 2h, 1h30m"):
            parse_duration(bad)


def test_sweep_stop_after_ends_between_rounds_and_the_same_command_goes_on(tiny_pair_dirs, problems_file, tmp_path):
    """--stop-after 0s: each call runs one round with new problems, then stops with every point on the same
    problems (exit 0); rounds read back from the files do not count, so every call goes on."""
    srm, lrm = tiny_pair_dirs
    grid = tmp_path / "grid.toml"
    grid.write_text(f'max_tokens = 8\nsrm = "{srm}"\nlrm = "{lrm}"\n[settings]\nwindow = 2\n[[grid]]\nmethod = ["srm", "lrm"]\n')
    out = tmp_path / "grid"
    sweep = ("sweep", "-d", problems_file, "--limit", 3, "--config", grid, "-o", out)
    for n in (2, 3):  # --chunk 2 over 3 problems: rounds end at 2 and 3
        res = _cli(*sweep, "--chunk", 2, "--stop-after", "0s", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        said = " ".join(res.stderr.split())
        assert (f"has been run on the first {n} of 3 problems" in said) == (n < 3)
        assert ("sweep done" in said) == (n == 3)
        for name in ("srm", "lrm"):
            ids = [json.loads(x)["id"] for x in (out / f"{name}.jsonl").read_text().splitlines()[1:]]
            assert ids == [f"q{i}" for i in range(n)]

    # a bad value, or no rounds to stop between: a clear error (exit 2) before anything runs
    for args, says in ((("--chunk", 1, "--stop-after", "soon"), "not a duration: 'soon'"),
                       (("--stop-after", "1h"), "needs --chunk N")):
        res = _cli(*sweep[:-2], "-o", tmp_path / "not-made", *args, cwd=tmp_path)
        assert res.returncode == 2 and says in " ".join(res.stderr.replace("│", " ").split()), res.stderr  # typer's box
        assert not (tmp_path / "not-made").exists()


def test_sweep_command_line_points_one_grid_file_at_another_pair_and_dataset(tiny_pair_dirs, tmp_path):
    """A grid file without a model pair (as sweeps/paper-grid.toml) runs on the pair, token budget and
    settings given on the command line, over a JSONL with its own field names; the eval files' headers
    and the folder's copy of the grid say so. Overriding a key a [[grid]] table sets is an error."""
    srm, lrm = tiny_pair_dirs
    data = tmp_path / "aime.jsonl"
    data.write_text("".join(json.dumps({"pid": f"a{i}", "problem": q, "sol": str(i)}) + "\n" for i, q in enumerate(QUESTIONS)))
    grid = tmp_path / "grid.toml"
    grid.write_text('max_tokens = 512\n[settings]\nwindow = 10\n[[grid]]\nmethod = "glimprouter"\nte = [0.5, 3.0]\n')
    out = tmp_path / "grid"
    args = ["sweep", "-d", data, "--question-field", "problem", "--answer-field", "sol", "--id-field", "pid", "--limit", 2,
            "--config", grid, "-o", out, "--srm", srm, "--lrm", lrm, "--max-tokens", 8, "--set", "window=2"]
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in ("glimprouter_te-0.5", "glimprouter_te-3.0"):
        header, *records = [json.loads(x) for x in (out / f"{name}.jsonl").read_text().splitlines()]
        assert (header["config"]["srm"], header["config"]["lrm"], header["config"]["max_tokens"]) == (str(srm), str(lrm), 8)
        assert header["config"]["settings"]["window"] == 2 and header["dataset"]["fields"]["question"] == "problem"
        assert [r["id"] for r in records] == ["a0", "a1"] and all(r["gold"] == r["id"][1:] for r in records)
    copy = (out / "sweep.toml").read_text()
    assert copy.startswith("# run with these values from the command line:") and "max_tokens = 8" in copy and "window = '2'" in copy
    assert copy.endswith(grid.read_text())

    res = _cli(*args, cwd=tmp_path)  # the same command resumes: nothing to do
    assert res.returncode == 0 and "2/2 done" in res.stderr
    before = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    for bad, says in ((["--set", "te=1.0"], "grid #1 sets te itself"),
                      (["--set", "windw=2"], "with the command line's values: unknown setting 'windw'"),
                      (["--max-tokens", 0], "max_tokens"),
                      (["--steer", tmp_path / "none.pt"], "steering vector file not found")):
        res = _cli(*args, *bad, cwd=tmp_path)
        assert res.returncode == 2 and says in " ".join(res.stderr.replace("│", " ").split()), res.stderr  # typer's box
    assert before == {p.name: p.read_bytes() for p in out.glob("*.jsonl")}


def test_a_sweep_file_from_before_field_options_resumes():
    """Sweeps over a JSONL wrote ``fields: null`` before ``tandem sweep`` took field options; those are the defaults."""
    from tandem.eval.runner import differences

    cfg = _cfg(method="srm").model_dump()
    old = {"config": cfg, "dataset": {"name": "p.jsonl", "split": "test", "path": "/x/p.jsonl", "fields": None}}
    new = {"config": cfg, "dataset": dict(old["dataset"], fields=asdict(Fields()))}
    assert differences(old, new) == []
    assert differences(old, {"config": cfg, "dataset": dict(new["dataset"], fields=asdict(Fields(question="problem")))}) == ["dataset"]


def test_sweep_in_two_shard_processes_reads_back_as_one_run(tiny_pair_dirs, problems_file, tmp_path):
    """Two processes at once, each every other problem into its own file; report and load_runs see one run
    per point, equal to the unsharded run."""
    from tandem.analysis.runs import load_runs

    srm, lrm = tiny_pair_dirs
    grid = tmp_path / "grid.toml"
    grid.write_text(f'max_tokens = 8\nsrm = "{srm}"\nlrm = "{lrm}"\n[settings]\nwindow = 2\n[[grid]]\nmethod = ["srm", "lrm"]\n')
    out = tmp_path / "grid"
    cmd = [sys.executable, "-m", "tandem.cli", "sweep", "-d", str(problems_file), "--config", str(grid), "-o", str(out)]
    procs = [subprocess.Popen(cmd + ["--shard", f"{k}/2"], cwd=tmp_path, stderr=subprocess.PIPE, text=True) for k in (0, 1)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()
    assert sorted(f.name for f in out.glob("*.jsonl")) == ["lrm.0-of-2.jsonl", "lrm.1-of-2.jsonl", "srm.0-of-2.jsonl", "srm.1-of-2.jsonl"]
    shard0 = [json.loads(x) for x in (out / "srm.0-of-2.jsonl").read_text().splitlines()]
    assert shard0[0]["dataset"]["shard"] == "0/2" and [r["id"] for r in shard0[1:]] == ["q0", "q2"]

    whole = tmp_path / "srm.jsonl"
    res = _cli("eval", "-d", problems_file, "-m", "srm", "--srm", srm, "--lrm", lrm, "--max-tokens", 8, "--set", "window=2", "-o", whole, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    runs = {r.name: r for r in load_runs([out])}
    assert sorted(runs) == ["lrm", "srm"] and runs["srm"].header["shards"] == ["0/2", "1/2"]
    assert [(r["id"], r["text"]) for r in runs["srm"].results] == [(r["id"], r["text"]) for r in load_runs([whole])[0].results]

    res = _cli("report", out, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Problems: 3" in (out / "report.md").read_text() and "| srm | srm |" in (out / "report.md").read_text()

    res = _cli("eval", "-d", problems_file, "-m", "srm", "--shard", "2/2", "-o", tmp_path / "x.jsonl", cwd=tmp_path)
    assert res.returncode == 2 and "K must be in 0..N-1" in res.stderr and not (tmp_path / "x.2-of-2.jsonl").exists()


def test_shard_files_of_different_runs_are_not_merged(tmp_path):
    from tandem.analysis.runs import load_runs
    from tandem.eval import shards

    assert shards.parse("1/4") == (1, 4) and shards.parse(None) is None
    for bad in ("4/4", "1", "a/b", "0/0"):
        with pytest.raises(shards.ShardError):
            shards.parse(bad)
    assert shards.select(list(range(7)), (1, 3)) == [1, 4]
    assert shards.path(tmp_path / "rg.jsonl", (1, 3)).name == "rg.1-of-3.jsonl"
    assert shards.split_stem("rankguide_te-0.9.1-of-3") == ("rankguide_te-0.9", 1, 3) and shards.split_stem("srm") is None

    def write(name, te, shard):
        cfg = RunConfig(method="rankguide", settings=Settings(te=te)).model_dump()
        header = {"type": "header", "config": cfg, "dataset": {"name": "p", "split": "test", "shard": shard}, "models": {}, "steer": None}
        (tmp_path / name).write_text(json.dumps(header) + "\n")

    write("rg.0-of-2.jsonl", 0.9, "0/2")
    write("rg.1-of-2.jsonl", 1.1, "1/2")
    with pytest.raises(EvalError, match="hold different runs"):
        load_runs([tmp_path])


def test_pareto_labels_of_nearby_points_do_not_overlap():
    from tandem.analysis.pareto import _place_labels
    from tandem.analysis.runs import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=150)
    pts = [(24.8, 24.0), (24.5, 22.0), (24.6, 23.0), (10.0, 10.0), (50.0, 45.0)]
    ax.scatter(*zip(*pts))
    _place_labels(fig, ax, [(f"point-label-{i}", p, "C0") for i, p in enumerate(pts)])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    plt.close(fig)
    assert len(boxes) == len(pts)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_shipped_sweep_files_expand_and_resume_the_committed_cpu_run():
    """Every sweeps/*.toml is a valid grid; each eval file in results/gsm8k-bf16-cpu/ is a point of
    sweeps/embedded-bf16.toml whose header the resume check accepts (same config, dataset, models and
    no steering as srm.jsonl), so RESULTS.md's sweep command resumes those files."""
    from pathlib import Path

    from tandem.eval.runner import dataset_info, differences
    from tandem.eval.sweep import expand

    root = Path(__file__).resolve().parents[1]
    for f in sorted((root / "sweeps").glob("*.toml")):
        assert expand(f), f
    points = {name: cfg.model_dump() for name, cfg in expand(root / "sweeps" / "embedded-bf16.toml")}
    files = sorted((root / "results" / "gsm8k-bf16-cpu").glob("*.jsonl"))
    assert len(files) >= 6
    headers = {f.stem: json.loads(f.read_text(encoding="utf-8").split("\n", 1)[0]) for f in files}
    models = headers["srm"]["models"]
    for name, header in headers.items():
        assert name in points, f"{name}.jsonl is not a point of sweeps/embedded-bf16.toml"
        new = {"config": points[name], "dataset": dataset_info("gsm8k", "test"), "models": models, "steer": None}
        assert differences(header, new) == [], name


def test_every_committed_record_keeps_its_grade_under_the_current_grader():
    """Every math record in results/ is graded again from its text (``tandem regrade --dry-run``): the
    verdict must be the one it carries. (Until 16b0d82 eval's worker threads graded by the numeric
    fallback alone; this shows that no committed number depended on it.)"""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from pathlib import Path

    from tandem.eval.regrade import regrade

    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "results").rglob("*.jsonl"))
    n, differ = 0, []
    # two processes, the files shared out one at a time: math-verify is pure Python, ~30 s for one core here
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for f, (graded, changes) in zip(files, pool.map(partial(regrade, write=False), files), strict=True):
            n += graded
            differ += [(f.name, i) for i, _, _ in changes]
    assert n > 6000
    assert differ == []


def test_regrade_fixes_the_verdicts_of_the_numeric_fallback_and_nothing_else(tiny_pair, problems_file, tmp_path):
    """A file whose non-number golds were graded by the numeric fallback alone (eval before 16b0d82):
    ``tandem regrade`` recomputes those verdicts from the texts, keeps code records as they are, puts the
    change on record in the header, touches nothing else, and the file still resumes."""
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))[:2]
    out = tmp_path / "old.jsonl"
    _eval(engine, problems, _cfg(), out)
    header, *recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # as the old runner graded them: boxed answers a number check cannot match, so both "wrong"
    recs[0].update(gold=r"\frac{14}{3}", text=r"So $f = \boxed{\frac{14}{3}}$.", answer=r"\frac{14}{3}", correct=False)
    recs[1].update(gold=r"\text{Evelyn}", text=r"\boxed{\text{Evelyn}}", answer=r"\text{Evelyn}", correct=False)
    code = dict(recs[1], id="c0", answer="print(1)", correct=False, grade_note="wrong answer on test 1",
                text="```python\nprint(1)\n```")
    for r in recs:
        r["grade_note"] = None
    recs.append(code)
    out.write_text("".join(json.dumps(x) + "\n" for x in [header, *recs]), encoding="utf-8")
    before = out.read_bytes()

    dry = tandem("regrade", out, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 math records regraded, 2 verdicts would change (now correct: 2, now wrong: 0)" in dry.stdout
    assert out.read_bytes() == before

    missing = tmp_path / "missing.jsonl"
    res = tandem("regrade", missing, out)  # a bad file is reported, the good one is still done
    assert res.returncode == 2
    assert f"{missing}: no such eval file" in " ".join(res.stderr.split())
    assert "2 verdicts changed" in res.stdout and "q0: wrong -> correct" in res.stdout
    header2, *recs2 = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["correct"] for r in recs2] == [True, True, False]
    assert recs2[2] == code
    assert [{k: v for k, v in r.items() if k != "correct"} for r in recs2] == [
        {k: v for k, v in r.items() if k != "correct"} for r in recs]
    assert header2.pop("regraded")[0]["changed"] == ["q0", "q1"]
    assert header2 == header

    assert _eval(engine, problems, _cfg(), out)[1] == {}  # resumes: nothing left to solve, nothing refused
    again = tandem("regrade", out)
    assert again.returncode == 0 and "0 verdicts changed" in again.stdout


def test_a_file_from_before_seed_scope_resumes_only_as_seed_scope_run(tiny_pair, problems_file, tmp_path):
    """Files written before per-problem seeds drew every problem from the run's seed: the resume check
    reads them as seed_scope = "run", so they never mix with per-problem draws."""
    engine = Engine(*tiny_pair)
    problems = load(str(problems_file))[:2]
    out = tmp_path / "old.jsonl"
    _eval(engine, problems[:1], _cfg(method="mentorcollab", seed_scope="run", probe_rate=0.5, lookahead=2), out)
    header, rest = out.read_text(encoding="utf-8").split("\n", 1)
    old = json.loads(header)
    del old["config"]["settings"]["seed_scope"]  # as an older tandem wrote it
    out.write_text(json.dumps(old) + "\n" + rest, encoding="utf-8")
    before = out.read_bytes()
    with pytest.raises(EvalError, match="config differs"):
        _eval(engine, problems, _cfg(method="mentorcollab", probe_rate=0.5, lookahead=2), out)
    assert out.read_bytes() == before
    _eval(engine, problems, _cfg(method="mentorcollab", seed_scope="run", probe_rate=0.5, lookahead=2), out)
    assert [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()[1:]] == ["q0", "q1"]
