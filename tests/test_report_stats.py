"""Paired significance in `tandem report`: the arithmetic, and the table it writes from real eval files."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cli_in_process import tandem

from tandem.analysis.report import report
from tandem.analysis.stats import format_p, mcnemar_exact, paired, wilson
from tandem.config import RunConfig


def test_exact_mcnemar_matches_the_binomial_tail():
    # 8 gained, 5 lost: 2 * P(X <= 5), X ~ Bin(13, 1/2) = 2 * 2380 / 8192
    assert mcnemar_exact(8, 5) == pytest.approx(2 * 2380 / 8192)
    assert mcnemar_exact(5, 8) == mcnemar_exact(8, 5)
    assert mcnemar_exact(27, 8) == pytest.approx(0.0018782, abs=1e-7)  # R: binom.test(8, 35)$p.value
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_wilson_interval_known_values():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_p_values_print_with_two_significant_digits():
    assert [format_p(p) for p in (1.0, 0.581, 0.0143, 0.0019, 0.0004)] == ["1", "0.58", "0.014", "0.0019", "< 0.001"]


def test_paired_counts_only_discordant_problems():
    a = {"1": True, "2": True, "3": False, "4": False}
    b = {"1": True, "2": False, "3": True, "4": False}
    r = paired(a, b, ["1", "2", "3", "4"])
    assert (r.gained, r.lost) == (1, 1) and str(r) == "+1 / -1 (p = 1)"
    assert str(paired({str(i): True for i in range(12)}, {str(i): False for i in range(12)}, [str(i) for i in range(12)])) == "+12 / -0 (p < 0.001)"


def _write_run(path, method: str, correct: list[bool], seed: int = 0, **settings):
    header = {
        "type": "header",
        "config": RunConfig(method=method, seed=seed, settings=settings).model_dump(),
        "dataset": {"name": "gsm8k", "split": "test"},
        "models": {r: {"name": r, "runtime": {"device": "cpu", "dtype": "bfloat16"}} for r in ("srm", "lrm")},
        "steer": None,
    }
    lines = [header]
    for i, ok in enumerate(correct):
        lrm_tokens = 10 if method != "srm" else 0
        lines.append({
            "type": "result", "id": f"q{i}", "correct": ok, "latency_s": 1.0 + lrm_tokens / 10, "generated_tokens": 20,
            "validation_ratio": 0.0, "steps": [{"signals": {"r1": None}}],
            "usage": {"srm": {"completion_tokens": 20 - lrm_tokens}, "lrm": {"completion_tokens": lrm_tokens}},
        })
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def _add_to_records(path, fields: list[dict]) -> None:
    """Give the run's i-th result record the fields of ``fields[i]`` (what a test needs beyond ``_write_run``'s)."""
    header, *recs = path.read_text().splitlines()
    path.write_text("\n".join([header] + [json.dumps(json.loads(x) | f) for x, f in zip(recs, fields)]) + "\n")


def test_report_pairs_every_run_with_both_baselines(tmp_path):
    # 40 problems: the LRM solves 0-19, the SRM 0-9 and 30-31, the router 0-14 and 30
    n = 40
    _write_run(tmp_path / "lrm.jsonl", "lrm", [i < 20 for i in range(n)])
    _write_run(tmp_path / "srm.jsonl", "srm", [i < 10 or i in (30, 31) for i in range(n)])
    _write_run(tmp_path / "rankguide_te0.9.jsonl", "rankguide", [i < 15 or i == 30 for i in range(n)], te=0.9)
    md = (report([tmp_path]) / "report.md").read_text()
    assert "Paired on the same 40 problems" in md
    rows = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ") and "%" in line}
    # router vs SRM: gains 10-14 (5), loses 31 (1); vs LRM: gains 30 (1), loses 15-19 (5)
    assert f"| +5 / -1 (p = {format_p(mcnemar_exact(5, 1))}) | +1 / -5 (p = {format_p(mcnemar_exact(1, 5))}) |" in rows["rankguide_te0.9"]
    assert "| 40.0% (" in rows["rankguide_te0.9"]
    assert "| - | +2 / -10 (p = 0.039) |" in rows["srm"]
    assert rows["lrm"].endswith(f"| +10 / -2 (p = {format_p(mcnemar_exact(10, 2))}) | - |")
    # report.json: the same numbers for a researcher's own tables, unrounded
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["problems"] == 40 and doc["ids"] == [f"q{i}" for i in range(n)] and doc["baseline"] is None
    runs = {r["name"]: r for r in doc["runs"]}
    assert [r["name"] for r in doc["runs"]] == ["srm", "lrm", "rankguide_te0.9"]  # the table's order
    rg = runs["rankguide_te0.9"]
    assert rg["vs"] == {"srm": {"gained": 5, "lost": 1, "p": mcnemar_exact(5, 1)}, "lrm": {"gained": 1, "lost": 5, "p": mcnemar_exact(1, 5)}}
    assert rg["solved"] == 16 and rg["accuracy"] == 0.4 and rg["accuracy_ci95"] == list(wilson(16, 40))
    assert rg["settings"]["te"] == 0.9 and rg["latency_vs_lrm"] == 1.0 and rg["loaded_problems"] == 0
    assert rg["machines"] == {"not recorded": {"problems": 40, "latency_s": 2.0}}
    assert set(runs["srm"]["vs"]) == {"lrm"} and set(runs["lrm"]["vs"]) == {"srm"}


def test_report_limit_compares_the_first_problems_only(tmp_path):
    # the router solves the first 4 of 8 and misses the rest; the SRM the other way round
    _write_run(tmp_path / "srm.jsonl", "srm", [i >= 4 for i in range(8)])
    _write_run(tmp_path / "rankguide.jsonl", "rankguide", [i < 4 for i in range(7)])  # one problem short
    md = (report([tmp_path], tmp_path / "all") / "report.md").read_text()
    assert "gsm8k (7 problems)" in md and "| +4 / -3 (p = " in md
    md = (report([tmp_path], tmp_path / "first", limit=4) / "report.md").read_text()
    assert "gsm8k (4 problems)" in md and "| rankguide | 100.0% (" in md and "| +4 / -0 (p = " in md
    r = tandem("report", tmp_path, "-o", tmp_path / "cli", "--limit", "0")
    assert r.returncode == 2 and "--limit" in r.stderr


def test_baseline_sets_every_run_against_one_as_in_the_papers_table_2(tmp_path):
    # GlimpRouter solves 0-9 of 20 in 4 s and 5 steps; + steering 0-11 in 3.2 s and 4 steps;
    # + rank routing 0-9 but 3, and 15-17, in 5 s and 6 steps
    n = 20
    runs = {
        "glimprouter": ([i < 10 for i in range(n)], 4.0, 5),
        "glimprouter_steer": ([i < 12 for i in range(n)], 3.2, 4),
        "rankguide_steer": ([(i < 10 and i != 3) or i in (15, 16, 17) for i in range(n)], 5.0, 6),
    }
    for name, (correct, latency, steps) in runs.items():
        _write_run(tmp_path / f"{name}.jsonl", name.split("_")[0], correct)
        _add_to_records(tmp_path / f"{name}.jsonl", [{"latency_s": latency, "steps": [{"signals": {"r1": None}}] * steps}] * n)
        if name.endswith("_steer"):  # as `tandem eval --steer` writes it: the vector's kind, alpha and counts
            header, rest = (tmp_path / f"{name}.jsonl").read_text().split("\n", 1)
            steer = {"kind": "rankguide", "alpha": 1.0, "file": "v.pt", "counts": {"samples": 72, "execution_steps": 336}}
            (tmp_path / f"{name}.jsonl").write_text(json.dumps(json.loads(header) | {"steer": steer}) + "\n" + rest)
    r = tandem("report", tmp_path, "--baseline", "glimprouter")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "report.md").read_text()
    table = md[md.index("Against glimprouter on the same 20 problems"):]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ") and "%" in line}
    assert rows["glimprouter (baseline)"].endswith("| 50.0% | 4.0 | 5.0 | - |")
    assert "| steer=rankguide alpha=1.0 (72 samples) | 60.0% (+10.0) | 3.2 (1.25x) | 4.0 (-20.0%) | +2 / -0 (p = 0.5) |" in rows["glimprouter_steer"]
    assert f"| 60.0% (+10.0) | 5.0 (0.80x) | 6.0 (+20.0%) | +3 / -1 (p = {format_p(mcnemar_exact(3, 1))}) |" in rows["rankguide_steer"]
    # report.tex: the same tables as LaTeX floats, cells escaped, each captioned with the text above it
    tex = (tmp_path / "report.tex").read_text()
    n_tables = sum(line.startswith("|---") for line in md.splitlines())
    assert n_tables >= 2 and tex.count("\\begin{table}") == tex.count("\\toprule") == n_tables
    lines = [" ".join(x.split()) for x in tex.splitlines()]
    assert "glimprouter\\_steer & steer=rankguide alpha=1.0 (72 samples) & 60.0\\% (+10.0) & 3.2 (1.25x) & 4.0 (-20.0\\%) & +2 / -0 (p = 0.5) \\\\" in lines
    assert "\\caption{Against glimprouter on the same 20 problems (the paper's Table 2 layout)" in tex
    # a name that is not a run: a clear error, and the report already there is kept
    r = tandem("report", tmp_path, "--baseline", "glimprouter_te-1.1")
    error = " ".join(r.stderr.split())  # rich wraps long lines
    assert r.returncode != 0 and "'glimprouter_te-1.1' is not one of the runs: glimprouter, glimprouter_steer, rankguide_steer" in error
    assert (tmp_path / "report.md").read_text() == md
    doc = json.loads((tmp_path / "report.json").read_text())
    runs = {r["name"]: r for r in doc["runs"]}
    assert doc["baseline"] == "glimprouter" and runs["glimprouter"]["vs"] == {}
    assert runs["rankguide_steer"]["vs"] == {"glimprouter": {"gained": 3, "lost": 1, "p": mcnemar_exact(3, 1)}}
    assert runs["glimprouter_steer"]["steer"]["counts"]["samples"] == 72 and runs["glimprouter"]["steer"] is None


def test_runs_that_differ_only_in_seed_scope_get_different_settings_and_plot_labels(tmp_path):
    # two MentorCollab runs at one probe rate, one with the old fixed probe schedule: the report must tell them apart
    _write_run(tmp_path / "srm.jsonl", "srm", [True, False], seed_scope="run")
    _write_run(tmp_path / "mc_run.jsonl", "mentorcollab", [True, True], probe_rate=0.1, lookahead=16)
    lines = (tmp_path / "mc_run.jsonl").read_text().splitlines()  # written before seed_scope existed: reads as "run"
    header = json.loads(lines[0])
    del header["config"]["settings"]["seed_scope"]
    (tmp_path / "mc_run.jsonl").write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    _write_run(tmp_path / "mc_problem.jsonl", "mentorcollab", [False, True], probe_rate=0.1, lookahead=16, seed_scope="problem")
    from tandem.analysis.pareto import _point_label
    from tandem.analysis.report import load_runs, table

    _, rows = table(load_runs([tmp_path]))
    notes = {r["name"]: r["note"] for r in rows}
    assert notes["mc_run"] == "probe_rate=0.1 seed_scope=run" and notes["mc_problem"] == "probe_rate=0.1 seed_scope=problem"
    assert notes["srm"] == "-"  # greedy SRM-only: where its (unused) draws start says nothing
    labels = {r["name"]: _point_label(r) for r in rows}
    assert labels["mc_problem"] == notes["mc_problem"] and labels["srm"] == "srm"


def test_runs_that_differ_only_in_seed_show_it_where_the_method_draws(tmp_path):
    # two MentorCollab runs with per-problem probes from seeds 1 and 2: the same settings, other probe positions
    _write_run(tmp_path / "srm.jsonl", "srm", [True, False], seed=3)
    _write_run(tmp_path / "mc_s1.jsonl", "mentorcollab", [True, True], seed=1, probe_rate=0.1, seed_scope="problem")
    _write_run(tmp_path / "mc_s2.jsonl", "mentorcollab", [False, True], seed=2, probe_rate=0.1, seed_scope="problem")
    from tandem.analysis.report import load_runs, table

    notes = {r["name"]: r["note"] for r in table(load_runs([tmp_path]))[1]}
    assert notes == {"srm": "-", "mc_s1": "probe_rate=0.1 seed=1", "mc_s2": "probe_rate=0.1 seed=2"}
    (tmp_path / "mc_s2.jsonl").unlink()  # one drawing run: its seed differs from the SRM's, which draws nothing
    assert {r["name"]: r["note"] for r in table(load_runs([tmp_path]))[1]} == {"srm": "-", "mc_s1": "probe_rate=0.1"}


def test_report_gives_the_spread_between_seeds_of_one_setting(tmp_path):
    # MentorCollab at probe rate 0.1 from seeds 1 and 2 (10 and 12 of 20 solved), and at 0.05 from seed 1 only
    _write_run(tmp_path / "srm.jsonl", "srm", [i < 8 for i in range(20)], seed=3)
    _write_run(tmp_path / "mc_s1.jsonl", "mentorcollab", [i < 10 for i in range(20)], seed=1, probe_rate=0.1)
    _write_run(tmp_path / "mc_s2.jsonl", "mentorcollab", [i < 12 for i in range(20)], seed=2, probe_rate=0.1)
    _write_run(tmp_path / "mc_low.jsonl", "mentorcollab", [i < 9 for i in range(20)], seed=1, probe_rate=0.05)
    md = " ".join((report([tmp_path]) / "report.md").read_text().split())
    assert ("Runs that differ only in their seed (the probes or samples they draw): mentorcollab probe_rate=0.1: "
            "seed 1 50.0%, seed 2 60.0% (mean 55.0%, range 10.0 points).") in md
    assert md.count("seed 1 ") == 1  # the 0.05 run has no second seed; the greedy SRM draws nothing
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["seed_groups"] == [{"runs": ["mc_s1", "mc_s2"], "seeds": [1, 2], "accuracy_mean": 0.55}]
    r = tandem("report", tmp_path, "--json")  # the same document on stdout, for jq and scripts
    assert r.returncode == 0 and json.loads(r.stdout) == doc


def _png_size(path) -> tuple[int, int]:
    import matplotlib.image

    h, w = matplotlib.image.imread(path).shape[:2]
    return w, h


def test_crowded_pareto_plot_numbers_its_points_and_keys_them_below(tmp_path):
    """Points too close for their settings beside them get numbers and a key under the axes (a taller
    figure); points with room keep their settings beside them (the figure's own size)."""
    from tandem.analysis.pareto import pareto_plot

    def row(name, method, lat, acc, note):
        return {"name": name, "method": method, "latency_s": lat, "accuracy": acc, "note": note}

    sparse = [row("srm", "srm", 10, 0.2, "-"), row("lrm", "lrm", 50, 0.5, "-"), row("rg", "rankguide", 30, 0.35, "te=0.9")]
    pareto_plot(sparse, tmp_path / "sparse.png")
    crowded = sparse + [row(f"mc{i}", "mentorcollab", 30 + 0.2 * i, 0.35 + 0.002 * i, f"probe_rate=0.{i} seed={i} seed_scope=problem")
                        for i in range(1, 7)]
    pareto_plot(crowded, tmp_path / "crowded.png")
    (w1, h1), (w2, h2) = _png_size(tmp_path / "sparse.png"), _png_size(tmp_path / "crowded.png")
    assert w1 == w2 and h1 == round(4.4 * 150) and h2 > h1 + 3 * 11 / 72 * 150  # at least 4 key lines (7 labels, two columns)


def test_pareto_axes_do_not_magnify_small_differences():
    """Two runs 0.8 s and one problem in ten apart: the latency axis still spans a fifth of the largest
    latency (not the 0.8 s autoscaling gives) and accuracy at least ten points, within 0-100% where it fits."""
    from tandem.analysis.pareto import _at_least

    lo, hi = _at_least((98.56, 99.40), 0.2 * 99.40, low=0)
    assert hi - lo == pytest.approx(19.88) and lo < 98.56 and hi > 99.40 and (lo + hi) / 2 == pytest.approx(98.98)
    assert _at_least((29.5, 40.5), 10, low=-2.5, high=102.5) == (29.5, 40.5)  # wide enough: untouched
    assert _at_least((99.5, 100.5), 10, low=-2.5, high=102.5) == (92.5, 102.5)  # kept under 100% + margin
    assert _at_least((-0.5, 0.5), 10, low=-2.5, high=102.5) == (-2.5, 7.5)
    assert _at_least((1.0, 1.5), 10, low=0) == (0, 10)  # latency never below zero


def test_pareto_points_measured_on_a_loaded_machine_are_flagged(tmp_path):
    """A run most of whose problems were solved while the load average was above 1.5x the CPUs, or while
    the hypervisor stole more than 20% of the CPU time, is marked busy (drawn hollow); one loaded problem
    in three is named in the note but not drawn hollow. Records from before steal was recorded count by load."""
    from tandem.analysis.report import _busy, load_runs

    host = {"node": "box", "cpus": 2}
    runs = {"quiet": [(0.5, 0.0), (4.0, 0.01), (1.0, 0.2)], "loaded": [(3.5, None), (4.0, None), (1.0, None)],
            "stolen": [(1.9, 0.5), (1.0, 0.21), (None, 0.0)]}
    for name, marks in runs.items():
        _write_run(tmp_path / f"{name}.jsonl", "srm", [True, False, True])
        _add_to_records(tmp_path / f"{name}.jsonl", [{"load": ld, "steal": st, "host": host} for ld, st in marks])
    ids = {"q0", "q1", "q2"}
    busy = {r.name: _busy(r, ids) for r in load_runs([tmp_path])}
    assert busy == {"quiet": (1, 3), "loaded": (2, 3), "stolen": (2, 3)}
    md = (report([tmp_path]) / "report.md").read_text()
    assert "stolen by the hypervisor for other VMs): loaded (2 of 3), quiet (1 of 3), stolen (2 of 3)." in md


def test_report_states_each_runs_decode_speed_with_prefill_left_out(tmp_path):
    """Decode speed per run and model, from the recorded usage: generated tokens over decoding seconds
    (seconds minus prefill_seconds), summed over the compared problems; '-' for a model that wrote nothing."""
    timing = {"srm": {"srm": (20, 2.5, 0.5), "lrm": (0, 0.0, 0.0)}, "router": {"srm": (10, 1.0, 0.0), "lrm": (10, 2.2, 0.2)}}
    for name, method in (("srm", "srm"), ("router", "glimprouter")):
        _write_run(tmp_path / f"{name}.jsonl", method, [True, False])
        usage = {role: {"completion_tokens": t, "seconds": s, "prefill_seconds": p} for role, (t, s, p) in timing[name].items()}
        _add_to_records(tmp_path / f"{name}.jsonl", [{"usage": usage}] * 2)
    md = (report([tmp_path]) / "report.md").read_text()
    assert "(generated tokens per second of decoding, prefill excluded; SRM / LRM): router 10.0 / 5.0, srm 10.0 / -." in md


_NO_LRM = {"completion_tokens": 0, "seconds": 0.0}
_USAGE_BY_BOOT = {"aa": {"srm": {"completion_tokens": 10, "seconds": 1.0}, "lrm": _NO_LRM},
                  "bb": {"srm": {"completion_tokens": 10, "seconds": 2.0}, "lrm": _NO_LRM}}


def test_pareto_points_name_the_machine_that_measured_them_when_there_are_several(tmp_path):
    """Latencies from two machines: the host note gives each a letter and the plot prints each run's
    letters beside its point (``[A/B]`` for a run resumed on the other one); from one machine, no letters."""
    from tandem.analysis.pareto import _point_text
    from tandem.analysis.report import Machines, load_runs

    fast, slow = {"node": "vm", "boot": "aa", "cpus": 2, "cpu": "EPYC"}, {"node": "vm", "boot": "bb", "cpus": 2, "cpu": "EPYC"}
    for name, method, hosts in (("srm", "srm", [fast, fast]), ("lrm", "lrm", [fast, slow]), ("sr", "specreason", [slow, slow])):
        _write_run(tmp_path / f"{name}.jsonl", method, [True, False], accept=5)
        _add_to_records(tmp_path / f"{name}.jsonl", [{"host": h, "usage": _USAGE_BY_BOOT[h["boot"]]} for h in hosts])
    runs = load_runs([tmp_path])
    assert Machines.of(runs, {"q0", "q1"}).letters() == {"srm": "A", "lrm": "A/B", "sr": "B"}
    assert Machines.of([r for r in runs if r.name != "sr"], {"q0"}).letters() == {}  # srm's and lrm's first problems: one machine
    assert _point_text({"name": "sr", "method": "specreason", "note": "accept=5", "hosts": "B"}) == "accept=5 [B]"
    assert _point_text({"name": "srm", "method": "srm", "note": "-", "hosts": "A"}) == "[A]"
    assert _point_text({"name": "srm", "method": "srm", "note": "-", "hosts": ""}) == ""
    md = (report([tmp_path]) / "report.md").read_text()
    assert "A = vm (boot aa): EPYC, 2 CPUs; B = vm (boot bb): EPYC, 2 CPUs." in md and "lrm A 1 (" in md
    # the decode speed of a run measured on both machines, on each of them too (B decodes at half A's speed)
    assert "SRM / LRM): lrm 6.7 / - (A 10.0 / -, B 5.0 / -), sr 5.0 / -, srm 10.0 / -." in md


def test_latency_vs_lrm_on_one_machine_where_runs_span_machines(tmp_path):
    """The LRM-only run measured q0-q1 on A and q2-q3 on B; a router measured q0 on A (in half the LRM's
    time there) and q1-q3 on B (B is slower: 3 s a problem against the LRM's 4 s there). The table's ratio
    mixes the hosts; the note and report.json give it per machine, on the problems both measured there."""
    a, b = {"node": "vm", "boot": "aa", "cpus": 2, "cpu": "EPYC"}, {"node": "vm", "boot": "bb", "cpus": 2, "cpu": "EPYC"}
    _write_run(tmp_path / "lrm.jsonl", "lrm", [True] * 4)
    _add_to_records(tmp_path / "lrm.jsonl", [{"host": a, "latency_s": 2.0}, {"host": a, "latency_s": 2.0},
                                             {"host": b, "latency_s": 4.0}, {"host": b, "latency_s": 4.0}])
    _write_run(tmp_path / "rg.jsonl", "rankguide", [True] * 4)
    _add_to_records(tmp_path / "rg.jsonl", [{"host": a, "latency_s": 1.0}] + [{"host": b, "latency_s": 3.0}] * 3)
    _write_run(tmp_path / "srm.jsonl", "srm", [True] * 4)  # measured where the LRM was, problem by problem: no note
    _add_to_records(tmp_path / "srm.jsonl", [{"host": h, "latency_s": 1.0} for h in (a, a, b, b)])
    md = (report([tmp_path]) / "report.md").read_text()
    assert "| rg | rankguide |" in md and "| 2.5 | 0.83x |" in md  # (1 + 3 * 3) / 4 over (2 + 2 + 4 + 4) / 4
    assert ("on the problems each run and lrm measured on the same machine (ratio of mean latencies there), "
            "rg 0.50x on A (1 problem), 0.75x on B (2 problems) (those problems alone") in md  # q1: rg on B, the LRM on A
    assert "srm 0" not in md.split("same machine")[1].split("\n")[0]
    runs = {r["name"]: r for r in json.loads((tmp_path / "report.json").read_text())["runs"]}
    by_machine = runs["rg"]["latency_vs_lrm_by_machine"]
    assert [(x["problems"], x["ratio"]) for x in by_machine.values()] == [(1, 0.5), (2, 0.75)]
    assert [x["problems"] for x in runs["srm"]["latency_vs_lrm_by_machine"].values()] == [2, 2]
    # a run measured only where the LRM-only run was not is named as such
    _add_to_records(tmp_path / "rg.jsonl", [{"host": b}, {"host": b}, {"host": a}, {"host": a}])
    md = (report([tmp_path]) / "report.md").read_text()
    assert "some problems (or all): no problem known to be measured on lrm's machine for rg." in md
    # records without a host pair with nothing: they may come from any machine
    _add_to_records(tmp_path / "rg.jsonl", [{"host": a}, {"host": a}, {"host": None}, {"host": None}])
    _add_to_records(tmp_path / "lrm.jsonl", [{"host": a}, {"host": a}, {"host": None}, {"host": None}])
    report([tmp_path])
    runs = {r["name"]: r for r in json.loads((tmp_path / "report.json").read_text())["runs"]}
    assert [x["problems"] for x in runs["rg"]["latency_vs_lrm_by_machine"].values()] == [2]


def test_lrm_share_counts_every_generated_token_and_tokens_the_final_text(tmp_path):
    """The LRM share divides the LRM's generated tokens by both models', thrown-away drafts included (a
    SpecReason run whose SRM wrote 40 tokens, 20 of them rejected, and whose LRM wrote 10 in their place:
    10 / 50), and the report says so; the tokens column is the final text's (30)."""
    _write_run(tmp_path / "sr.jsonl", "specreason", [True, False], accept=5)
    usage = {"srm": {"completion_tokens": 40}, "lrm": {"completion_tokens": 10}}
    _add_to_records(tmp_path / "sr.jsonl", [{"usage": usage, "generated_tokens": 30}] * 2)
    md = (report([tmp_path]) / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| sr |"))
    assert row.endswith("| 30 | 0.000 | 20.0% |")
    assert "LRM share: the LRM's part of all the tokens both models generated, drafts that were thrown away" in md


def _set_dataset(path, info: dict) -> None:
    header, *recs = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps(json.loads(header) | {"dataset": info})] + recs) + "\n")


def test_report_breaks_accuracy_and_latency_down_by_a_field_of_the_dataset(tmp_path):
    """``--by level``: the field is read from the dataset the headers name (a local JSONL here, whose
    lines carry ``level``), not from the records; numbers sort as numbers, and lines without the field
    form their own group; with SRM-only and LRM-only runs, how much of the LRM's gain each other run
    recovers, per level. A field the dataset lacks is an error naming the fields it has, and the
    report already written stays as it was."""
    from tandem.eval.datasets import Fields
    from tandem.eval.runner import dataset_info

    data = tmp_path / "problems.jsonl"
    levels = [10, 10, 2, 2, 2, None]
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": "?", "answer": "1"} | ({"level": lv} if lv else {})) + "\n"
                            for i, lv in enumerate(levels)))
    runs = tmp_path / "runs"
    runs.mkdir()
    _write_run(runs / "srm.jsonl", "srm", [True, False, False, False, False, True])
    _write_run(runs / "lrm.jsonl", "lrm", [True, True, True, False, True, False])
    _write_run(runs / "rankguide.jsonl", "rankguide", [False, True, False, False, True, False])
    for f in runs.iterdir():
        _set_dataset(f, dataset_info(str(data), "test", Fields()))
    out = report([runs], tmp_path / "rep", by=("level",))
    md = (out / "report.md").read_text()
    assert "| run | level 2 (n=3) | level 10 (n=2) | (none) (n=1) |" in md
    assert "| srm | 0.0% (0/3) | 50.0% (1/2) | 100.0% (1/1) |" in md
    assert "| lrm | 66.7% (2/3) | 100.0% (2/2) | 0.0% (0/1) |" in md
    assert "| lrm | 2.0 | 2.0 | 2.0 |" in md  # mean latency by level (the test runs' LRM takes 2 s a problem)
    # the LRM's gain: q2, q4 (level 2) and q1 (level 10); the router solves q4 and q1 of them
    assert "| run | level 2 (n=2) | level 10 (n=1) | (none) (n=0) |\n|---|---|---|---|\n| rankguide | 1 | 1 | 0 |" in md
    by = json.loads((out / "report.json").read_text())["by"][0]
    assert by["values"] == [2, 10, "(none)"] and by["runs"]["srm"]["10"] == {"solved": 1, "latency_s": 1.0, "recovered": 0}
    assert (out / "by_level.png").stat().st_size > 0 and (out / "by_level.pdf").is_file()
    before = (out / "report.md").read_bytes()
    r = tandem("report", runs, "-o", out, "--by", "difficulty")
    assert r.returncode == 2 and "no field 'difficulty'" in r.stderr and "answer, id, level, question" in r.stderr
    assert (out / "report.md").read_bytes() == before


def test_markdown_tables_read_back_for_latex():
    from tandem.analysis.latex import escape, markdown_tables, to_latex

    md = ("Intro.\n\n| not | a table |\n\nThe first one, 50% of_all.\n\n| a | b |\n|---|:---:|\n| **x_1** | 10% |\n| y | $2 |\n\n"
          "Second & last:\n\n| c |\n|---|\n| z |\n")
    tables = markdown_tables(md)
    assert tables == [("The first one, 50% of_all.", ["a", "b"], [["x_1", "10%"], ["y", "$2"]]), ("Second & last:", ["c"], [["z"]])]
    assert escape("50% of_all & {x} #1 $2 ~ ^ \\") == r"50\% of\_all \& \{x\} \#1 \$2 \textasciitilde{} \textasciicircum{} \textbackslash{}"
    tex = to_latex(md, "title_1")
    assert "\\caption{title\\_1}" in tex and "\\caption{Second \\& last:}" in tex
    assert "x\\_1" in tex and "10\\%" in tex and "\\$2" in tex and "**" not in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (Debian: texlive-latex-recommended)")
def test_report_tex_compiles(tmp_path):
    """report.tex, with the characters run names and captions carry, goes through pdflatex."""
    _write_run(tmp_path / "srm.jsonl", "srm", [True, False, False])
    _write_run(tmp_path / "rankguide_te-0.9_x#1.jsonl", "rankguide", [True, True, False], te=0.9)
    report([tmp_path], baseline="srm")
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\\usepackage[T1]{fontenc}\\usepackage{booktabs}\n"
                                      "\\begin{document}\\input{report.tex}\\end{document}\n")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")


def _traced(correct: bool, r2s: list[int]) -> dict:
    """A record whose steps carry these r2 values (one full window each) after one step without a window,
    every step ended at the delimiter."""
    steps = [{"signals": {"r1": None, "r2": None}}] + [{"signals": {"r1": 4, "r2": v}} for v in r2s]
    return {"correct": correct, "steps": [{**s, "end": "boundary", "text": "step\n\n"} for s in steps]}


def test_rank_study_sets_minima_side_by_side_at_equal_window_counts():
    from pathlib import Path

    from tandem.analysis.runs import Run
    from tandem.analysis.study import min_r2_by_windows, min_ranks, r2_by_position, rank_samples

    records = [_traced(True, [44]), _traced(False, [41]), _traced(True, [43, 40]), _traced(False, [44, 38, 42]),
               _traced(False, [45, 44, 30, 41]), _traced(False, list(range(40, 30, -1))), _traced(True, [])]
    rows = rank_samples([Run("srm", Path("srm.jsonl"), {"config": {"method": "srm"}}, records)])
    assert [r["windows"] for r in rows] == [1, 1, 2, 3, 4, 10]  # the sample without a window is left out
    assert [r["first_r2"] for r in rows] == [44, 41, 43, 44, 45, 40]
    assert min_ranks(rows)["r2"] == {"correct": [44, 40], "incorrect": [41, 38, 30, 31]}
    binned = min_r2_by_windows(rows)
    assert binned == [{"windows": "1", "correct": [44], "incorrect": [41]},
                      {"windows": "2", "correct": [40], "incorrect": []},
                      {"windows": "3-4", "correct": [], "incorrect": [38, 30]},
                      {"windows": "9+", "correct": [], "incorrect": [31]}]  # 5-8 is empty and left out
    positions = r2_by_position(rows)  # every window's own r2, by its place in the trace; 9th and 10th pooled
    assert [p["window"] for p in positions] == ["1", "2", "3", "4", "5", "6", "7", "8", "9+"]
    assert positions[0] == {"window": "1", "correct": [44, 43], "incorrect": [41, 44, 45, 40]}
    assert positions[1] == {"window": "2", "correct": [40], "incorrect": [38, 44, 39]}
    assert positions[3] == {"window": "4", "correct": [], "incorrect": [41, 37]}
    assert positions[8] == {"window": "9+", "correct": [], "incorrect": [32, 31]}
    assert sum(len(p["correct"]) + len(p["incorrect"]) for p in positions) == sum(r["windows"] for r in rows)


def test_entropy_bands_cut_r2_at_the_steps_own_percentiles_and_keep_ties_together():
    from tandem.analysis.study import entropy_by_r2_band

    steps = [{"r2": v, "entropy": v / 10, "correct": v % 2 == 0} for v in range(20, 0, -1)]
    bands = entropy_by_r2_band(steps)
    assert [b["band"] for b in bands] == ["r2 <= 2", "2 < r2 <= 5", "5 < r2 <= 10", "r2 > 10"]
    assert [sorted(b["entropy"]) for b in bands][:2] == [[0.1, 0.2], [0.3, 0.4, 0.5]]
    assert sum(len(b["entropy"]) for b in bands) == 20
    # ties: 18 steps at r2 = 7 put every percentile there; nothing is split across bands or lost
    tied = [{"r2": 7, "entropy": 0.5, "correct": True}] * 18 + [{"r2": 3, "entropy": 0.1, "correct": False},
                                                               {"r2": 9, "entropy": 0.9, "correct": False}]
    assert entropy_by_r2_band(tied) == [{"band": "r2 <= 7", "entropy": [0.5] * 18 + [0.1]},
                                        {"band": "r2 > 7", "entropy": [0.9]}]
    assert entropy_by_r2_band([]) == []


def test_collapse_test_fires_where_w_windows_in_a_row_are_low_rank():
    from pathlib import Path

    from tandem.analysis.runs import Run
    from tandem.analysis.study import collapse_points

    def traced(correct, r2s, finish="eos"):
        return {**_traced(correct, r2s), "id": f"p{len(records)}", "finish_reason": finish}

    records = []
    for correct, r2s, finish in ((False, [44, 40, 39, 16, 16], "budget"),  # low twice in a row from the 2nd window
                                 (True, [40, 44, 40, 44], "eos"),            # low, but never twice in a row
                                 (False, [44, 44], "eos"),                   # never low
                                 (True, [30, 30], "eos")):                   # low from the start
        records.append(traced(correct, r2s, finish))
    run = Run("srm", Path("srm.jsonl"), {"config": {"method": "srm", "settings": {"window": 2, "tr2": 41}}}, records)
    hits = collapse_points([run], tr1=3, tr2=None)  # tr2 from the run's settings, tr1 from the call
    assert [(h["id"], h["step"], h["steps"], h["correct"], h["finish_reason"]) for h in hits] == [
        ("p0", 3, 6, False, "budget"), ("p3", 2, 3, True, "eos")]  # step 0 of each trace has no window
    # a lower tr2 (strictly below it is low): only the two windows at 16 remain low, and r2 = 30 is not
    assert [(h["id"], h["step"]) for h in collapse_points([run], tr1=3, tr2=30)] == [("p0", 5)]


def test_a_step_after_a_cut_one_repeats_the_old_window_and_is_not_a_window_of_its_own():
    """A step cut at max_step_tokens takes no boundary state, so the next step records the same window's
    ranks again: the study counts it once, as the engine's rank history does, and the collapse test does
    not fire on the repeats. With cap_states the cut step's last token is a state, and it is a window."""
    from pathlib import Path

    from tandem.analysis.runs import Run
    from tandem.analysis.study import collapse_points, rank_samples

    record = {**_traced(False, [30, 30, 30, 44]), "id": "p0", "finish_reason": "budget"}
    for i in (1, 2):  # steps 1 and 2 are cut: steps 2 and 3 show step 1's window again, step 4 a new one
        record["steps"][i]["end"] = "cap"
    record["steps"][-1]["end"] = "budget"
    header = {"config": {"method": "srm", "settings": {"window": 2, "tr1": 3, "tr2": 41}}}
    run = Run("srm", Path("srm.jsonl"), header, [record])
    assert [(r["windows"], r["r2s"]) for r in rank_samples([run])] == [(2, [30, 44])]
    assert collapse_points([run], None, None) == []  # one low window, seen three times, is not two windows
    capped = Run("srm", Path("srm.jsonl"), {"config": {"method": "srm", "settings": {
        **header["config"]["settings"], "cap_states": True}}}, [record])
    assert rank_samples([capped])[0]["windows"] == 4
    assert [h["step"] for h in collapse_points([capped], None, None)] == [2]
