"""``tandem report``: the paper's Table 1 (Markdown) and Fig. 3-style Pareto plot (drawn by
``tandem.analysis.pareto``) from eval files.

Latency is relative to the LRM-only run and steps relative to the SRM-only
run when those runs are among the inputs (else the columns show "-"). A
second table pairs every run with the SRM-only and LRM-only runs on the same
problems (gained / lost, exact McNemar p) and gives each accuracy its 95%
interval: at a few hundred problems most gaps between routers are noise, and
the report should say which are not. With ``baseline`` a third table sets every
run beside one chosen run in the layout of the paper's Table 2 (its ablation:
accuracy gained, speed-up, change in steps, against GlimpRouter). The same tables
go out as LaTeX (``report.tex``) and their numbers, unrounded, as JSON
(``report.json``), so a paper's tables and a researcher's own plots start from
the figures the Markdown shows. With ``by`` (``--by level``), accuracy and latency per value of a problem
field follow, with a bar chart each (``tandem.analysis.breakdown``).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from tandem.analysis.breakdown import breakdown_plot, breakdown_tables, breakdowns, figure_name
from tandem.analysis.latex import to_latex
from tandem.analysis.pareto import pareto_plot
from tandem.analysis.runs import METHOD_ORDER, Run, common_ids, first_problems, load_runs, summarize
from tandem.analysis.stats import paired, wilson
from tandem.eval.runner import canonical, upgrade_config
from tandem.hardware import processor


ENGINE_SETTINGS = ("delimiter", "temperature", "top_p", "max_step_tokens", "answer_tokens")


def relevant_settings(run: Run) -> set[str]:
    """The settings that change what this run computes: its method's, the engine-wide ones, and
    ``seed_scope`` where the run draws (MentorCollab's probes, sampling)."""
    from tandem.policies import POLICIES

    policy = POLICIES.get(run.method)
    relevant = set(ENGINE_SETTINGS) | set(getattr(policy, "reads", ()) if policy else run.settings)
    if run.settings.get("temperature"):
        relevant.add("seed_scope")  # sampled runs draw per problem or per run: two such rows differ only here
    return relevant


def shared_settings(runs: list[Run]) -> dict:
    """The settings every run has with the same value."""
    return {k: v for k, v in runs[0].settings.items() if all(r.settings.get(k) == v for r in runs)}


def settings_note(run: Run, base: dict, seeds_differ: bool = False) -> str:
    """The settings this run reads that differ from the shared ones; the seed too where the run draws
    and the drawing runs compared differ in it."""
    relevant = relevant_settings(run)
    diff = {k: v for k, v in run.settings.items() if k in relevant and base.get(k) != v}
    if seeds_differ and "seed_scope" in relevant:
        diff["seed"] = run.header["config"].get("seed")  # two such rows may differ only in where the draws start
    note = " ".join(f"{k}={v}" for k, v in sorted(diff.items()))
    if run.steered:  # with the calibration samples the vector was made from (the paper's Table 3 column)
        s = run.header["steer"]
        samples = (s.get("counts") or {}).get("samples")
        note = f"steer={s.get('kind')} alpha={s.get('alpha')}{f' ({samples} samples)' if samples is not None else ''} " + note
    return note.strip() or "-"


def _fmt(x, spec: str) -> str:
    if x is None:
        return "-"
    return format(x, spec) + ("x" if spec == ".2f" else "")


def table(runs: list[Run]) -> tuple[str, list[dict]]:
    ids = common_ids(runs)
    shared = shared_settings(runs)
    seeds_differ = len({r.header["config"].get("seed") for r in runs if "seed_scope" in relevant_settings(r)}) > 1
    rows = [summarize(r, ids) | {"note": settings_note(r, shared, seeds_differ), "steered": r.steered} for r in runs]
    lrm = _baseline(rows, "lrm")
    srm = _baseline(rows, "srm")
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    rows.sort(key=lambda r: (rank.get(r["method"], 99), r["name"]))
    lines = [
        f"Problems: {len(ids)} (the ids every run finished). Settings shared by all runs: "
        + (", ".join(f"{k}={v!r}" for k, v in sorted(shared.items())) or "-")
        + ". The settings column shows the rest.\n",
        "| run | method | settings | acc. | latency (s) | latency vs LRM | steps | steps vs SRM | tokens | valid. ratio | LRM share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat_rel = r["latency_s"] / lrm["latency_s"] if lrm and lrm["latency_s"] else None
        steps_rel = r["steps"] / srm["steps"] if srm and srm["steps"] else None
        r["latency_vs_lrm"], r["steps_vs_srm"] = lat_rel, steps_rel
        lines.append(
            f"| {r['name']} | {r['method']} | {r['note']} | {_fmt(r['accuracy'], '.1%')} | {_fmt(r['latency_s'], '.1f')} "
            f"| {_fmt(lat_rel, '.2f')} | {_fmt(r['steps'], '.1f')} | {_fmt(steps_rel, '.2f')} | {_fmt(r['tokens'], '.0f')} "
            f"| {_fmt(r['validation_ratio'], '.3f')} | {_fmt(r['lrm_share'], '.1%')} |"
        )
    lines.append("\nTokens: of the final text, per problem. LRM share: the LRM's part of all the tokens both models "
                 "generated, drafts that were thrown away (SpecReason's rejected steps, MentorCollab's unused lookaheads) "
                 "included, so it measures the LRM's work rather than its part of the text.")
    return "\n".join(lines) + "\n", rows


def _grades(runs: list[Run]) -> dict[str, dict[str, bool]]:
    """Run name -> problem id -> solved."""
    return {r.name: {i: bool(rec["correct"]) for i, rec in r.by_id().items()} for r in runs}


def paired_table(correct: dict[str, dict[str, bool]], rows: list[dict], ids: list[str]) -> str:
    """Each run against the SRM-only and LRM-only runs, problem by problem on ``ids``, in the order of
    ``rows``; ``correct``: ``_grades`` of the runs."""
    bases = [(m, _baseline(rows, m)) for m in ("srm", "lrm")]
    bases = [(m, b) for m, b in bases if b]
    lines = [
        f"Paired on the same {len(ids)} problems: +problems the run solves and the {' / '.join(m.upper() for m, _ in bases)}-only "
        "run does not, -the other way round; p: exact McNemar test (two-sided). Accuracy with its 95% Wilson interval.\n",
        "| run | acc. (95% CI) | " + " | ".join(f"vs {m.upper()}-only" for m, _ in bases) + " |",
        "|---|---|" + "---|" * len(bases),
    ]
    for r in rows:
        lo, hi = wilson(sum(correct[r["name"]][i] for i in ids), len(ids))
        cells = ["-" if b is r else str(paired(correct[r["name"]], correct[b["name"]], ids)) for _, b in bases]
        lines.append(f"| {r['name']} | {r['accuracy']:.1%} ({lo:.1%}-{hi:.1%}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ablation_table(correct: dict[str, dict[str, bool]], rows: list[dict], ids: list[str], baseline: str) -> str:
    """Every run against the run named ``baseline``, as the paper's Table 2 sets each component against
    GlimpRouter: accuracy and its change in points, latency and the speed-up (the baseline's latency over
    the run's: above 1 is faster), steps and their change in percent, and the problems gained / lost."""
    base = next(r for r in rows if r["name"] == baseline)
    lines = [
        f"Against {baseline} on the same {len(ids)} problems (the paper's Table 2 layout): the change in accuracy "
        f"(points), the speed-up ({baseline}'s mean latency over the run's; above 1x is faster), the change in "
        "steps per problem, and the problems the run solves that the baseline does not (+) and the other way "
        "round (-), with the exact McNemar p.\n",
        "| run | settings | acc. | latency (s) | steps | vs baseline |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r is base:
            lines.append(f"| {r['name']} (baseline) | {r['note']} | {_fmt(r['accuracy'], '.1%')} | {_fmt(r['latency_s'], '.1f')} "
                         f"| {_fmt(r['steps'], '.1f')} | - |")
            continue
        acc = f"{_fmt(r['accuracy'], '.1%')} ({100 * (r['accuracy'] - base['accuracy']):+.1f})"
        speed = base["latency_s"] / r["latency_s"] if r["latency_s"] else None
        steps = f"{r['steps'] / base['steps'] - 1:+.1%}" if base["steps"] else "-"
        lines.append(f"| {r['name']} | {r['note']} | {acc} | {_fmt(r['latency_s'], '.1f')} ({_fmt(speed, '.2f')}) "
                     f"| {_fmt(r['steps'], '.1f')} ({steps}) | {paired(correct[r['name']], correct[baseline], ids)} |")
    return "\n".join(lines) + "\n"


def summary(runs: list[Run], rows: list[dict], correct: dict[str, dict[str, bool]], ids: list[str],
            baseline: str | None, title: str, seeds: list[list[Run]], machines: Machines,
            vs_lrm: dict[str, dict[str, dict]]) -> dict:
    """The report's numbers as one JSON document (``report.json``), for a researcher's own tables and plots:
    per run the table's columns, its accuracy interval, its full settings and steering vector, each pairing
    the Markdown shows (against the SRM-only and LRM-only runs, and against ``baseline``), the problems
    solved on a loaded machine, the machines that measured its latencies and its latency against the LRM-only
    run's on each of them (``vs_lrm``, by run name: ``Machines.same_machine``); and ``seeds`` (``seed_groups``)."""
    by_name = {r.name: r for r in runs}
    against = [b["name"] for b in (_baseline(rows, "srm"), _baseline(rows, "lrm")) if b]
    if baseline is not None and baseline not in against:
        against.append(baseline)
    out = []
    for row in rows:
        run = by_name[row["name"]]
        solved = sum(correct[row["name"]][i] for i in ids)
        vs = {}
        for other in against:
            if other != row["name"]:
                p = paired(correct[row["name"]], correct[other], ids)
                vs[other] = {"gained": p.gained, "lost": p.lost, "p": p.p}
        out.append({k: row[k] for k in ("name", "method", "note", "accuracy", "latency_s", "latency_vs_lrm", "steps",
                                        "steps_vs_srm", "tokens", "validation_ratio", "lrm_share")}
                   | {"solved": solved, "accuracy_ci95": list(wilson(solved, len(ids))) if ids else None,
                      "loaded_problems": row["loaded"], "path": str(run.path), "settings": run.settings,
                      "steer": run.header.get("steer"), "vs": vs,
                      "machines": machines.of_run(row["name"]),
                      "latency_vs_lrm_by_machine": vs_lrm.get(row["name"])})
    accuracy = {x["name"]: x["accuracy"] for x in rows}
    groups = [{"runs": [r.name for r in g], "seeds": [r.header["config"].get("seed") for r in g],
               "accuracy_mean": statistics.fmean(accuracy[r.name] for r in g) if ids else None} for g in seeds]
    return {"title": title, "problems": len(ids), "ids": ids, "baseline": baseline, "runs": out, "seed_groups": groups}


def computation_key(run: Run, with_seed: bool = True) -> str:
    """What a run computes, as one string: its command's config (models, method, token budget, LRM
    backend, steering and verifier files) with only the settings its method reads, and its seed where it
    draws (MentorCollab's probes, sampling; ``with_seed=False`` leaves it out). Not the machine, device or
    dtype: the same command run again elsewhere has the same key."""
    relevant = relevant_settings(run)
    drop = {"settings"} | ({"seed"} if not with_seed or "seed_scope" not in relevant else set())
    config = {k: v for k, v in upgrade_config(run.header["config"]).items() if k not in drop}
    return canonical(config | {"settings": {k: v for k, v in run.settings.items() if k in relevant},
                               "steer": run.header.get("steer")})


def seed_groups(runs: list[Run]) -> list[list[Run]]:
    """Runs that draw (MentorCollab's probes, sampling) and differ only in their seed, in groups of two or
    more: the spread of their accuracies is what the draw alone moves one run's accuracy by."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        if "seed_scope" in relevant_settings(r):
            groups.setdefault(computation_key(r, with_seed=False), []).append(r)
    return [sorted(g, key=lambda r: r.header["config"].get("seed")) for g in groups.values() if len(g) > 1]


def _seed_note(groups: list[list[Run]], rows: list[dict], shared: dict) -> str:
    if not groups:
        return ""
    acc = {r["name"]: r["accuracy"] for r in rows}
    parts = []
    for g in groups:
        accs = [acc[r.name] for r in g]
        if None in accs:  # no problem in common
            continue
        label = " ".join(x for x in (g[0].method, settings_note(g[0], shared)) if x != "-")
        each = ", ".join(f"seed {r.header['config'].get('seed')} {acc[r.name]:.1%}" for r in g)
        parts.append(f"{label}: {each} (mean {statistics.fmean(accs):.1%}, range {100 * (max(accs) - min(accs)):.1f} points)")
    if not parts:
        return ""
    return ("Runs that differ only in their seed (the probes or samples they draw): " + "; ".join(parts)
            + ". One run's accuracy moves by about that much from the draw alone.")


def _concurrency_note(runs: list[Run], ids: set[str]) -> str:
    """Runs whose problems were solved several at a time (``--workers``): their latencies are not single-stream."""
    marks = []
    for r in runs:
        ws = sorted({rec.get("workers", 1) for rec in r.results if rec["id"] in ids})
        if ws and ws != [1]:
            marks.append(f"{r.name} ({'/'.join(map(str, ws))})")
    if not marks:
        return ""
    return "Latency measured with several problems in flight (`--workers`), not one at a time: " + ", ".join(marks) + "."


def _host_label(h: dict | None) -> str:
    """One machine in a line: name, boot, GPU (or CPU), CPU count and, for a CPU, whether bf16 is in hardware."""
    if not h:
        return "not recorded"
    boot = f" (boot {h['boot']})" if h.get("boot") else ""
    bf16 = {True: ", bf16 in hardware", False: ", bf16 emulated"}.get(h.get("cpu_bf16"), "") if not h.get("gpu") else ""
    return f"{h.get('node')}{boot}: {processor(h)}, {h.get('cpus')} CPUs{bf16}"


def _mean_latency(recs: list[dict]) -> float:
    return statistics.fmean(rec["latency_s"] for rec in recs)


@dataclass
class Machines:
    """Each run's records grouped by the machine that measured them (run -> machine label -> records),
    and a letter for each machine (A, B, ... in the order of their labels): a resumed file may span
    several machines, and a reader should compare runs on one."""

    per_run: dict[str, dict[str, list[dict]]]
    letter: dict[str, str]

    @classmethod
    def of(cls, runs: list[Run], ids: set[str]) -> "Machines":
        per_run = {r.name: {} for r in runs}
        for r in runs:
            for rec in r.results:
                if rec["id"] in ids:
                    per_run[r.name].setdefault(_host_label(rec.get("host")), []).append(rec)
        hosts = sorted({h for lat in per_run.values() for h in lat})
        return cls(per_run, {h: chr(ord("A") + i) for i, h in enumerate(hosts)})

    def letters(self) -> dict[str, str]:
        """Run name -> the letters of the machines that measured its latencies (``A/D``), when the runs'
        latencies come from more than one machine (else empty): the plot prints them beside each point,
        the note says which machine each letter is."""
        if len(self.letter) < 2:
            return {}
        return {n: "/".join(sorted(self.letter[h] for h in lat)) for n, lat in self.per_run.items()}

    def note(self) -> str:
        """With more than one machine: which machine each letter is, and how many problems of each run each
        measured with their mean latency there."""
        if len(self.letter) < 2:
            return ""
        machines = "; ".join(f"{x} = {h}" for h, x in sorted(self.letter.items()))
        shares = ", ".join(
            f"{n} " + " / ".join(f"{self.letter[h]} {len(xs)} ({_mean_latency(xs):.1f} s)" for h, xs in sorted(lat.items()))
            for n, lat in self.per_run.items()
        )
        return f"Latency measured on more than one machine: {machines}. Problems per machine (mean latency there): {shares}."

    def same_machine(self, name: str, base: str) -> dict[str, dict]:
        """Per machine that measured problems of both runs: how many problems ``name`` and ``base`` both
        measured there, and ``name``'s latency relative to ``base``'s on them (ratio of the means, as the
        table's column). Where runs were measured on different machines, the table's ratio mixes the hosts'
        speeds; this one does not. Records without a host (files from before tandem kept one) pair with
        nothing: they may come from any machine."""
        base_at = {rec["id"]: (h, rec["latency_s"]) for h, xs in self.per_run[base].items() for rec in xs}
        out = {}
        for h, xs in sorted(self.per_run[name].items()):
            if h == _host_label(None):
                continue
            pairs = [(rec["latency_s"], base_at[rec["id"]][1]) for rec in xs if base_at.get(rec["id"], (None,))[0] == h]
            if pairs:
                run_s, base_s = (sum(x) for x in zip(*pairs))
                out[h] = {"problems": len(pairs), "ratio": run_s / base_s if base_s else None}
        return out

    def same_machine_note(self, vs_lrm: dict[str, dict[str, dict]], lrm: str | None, problems: int) -> str:
        """With more than one machine: each run's latency relative to the LRM-only run ``lrm``'s on the problems
        both measured on one machine (``vs_lrm``, by run name: ``same_machine``), for the runs that have
        problems measured elsewhere than the LRM's."""
        if len(self.letter) < 2 or lrm is None:
            return ""
        parts, none = [], []
        for name, same in vs_lrm.items():
            if name == lrm or sum(x["problems"] for x in same.values()) == problems:
                continue
            if not same:
                none.append(name)
                continue
            parts.append(f"{name} " + ", ".join(f"{_fmt(x['ratio'], '.2f')} on {self.letter[h]} "
                                                f"({x['problems']} problem{'s' * (x['problems'] != 1)})" for h, x in same.items()))
        if not parts and not none:
            return ""
        text = "The latency-vs-LRM column divides latencies measured on different machines for some problems (or all): "
        if parts:
            text += (f"on the problems each run and {lrm} measured on the same machine (ratio of mean latencies there), "
                     + "; ".join(parts) + " (those problems alone, which need not be typical of the rest)")
        if none:
            text += ("; " if parts else "") + f"no problem known to be measured on {lrm}'s machine for " + ", ".join(none)
        return text + "."

    def of_run(self, name: str) -> dict[str, dict]:
        """For report.json: each machine that measured ``name``, with its problems and mean latency."""
        return {h: {"problems": len(xs), "latency_s": _mean_latency(xs)} for h, xs in sorted(self.per_run[name].items())}


def _processor_note(runs: list[Run], ids: set[str]) -> str:
    """Records computed on more than one processor model: greedy texts repeat on one model, not across models
    (their kernels round differently), so the runs may differ in their texts, not only in their clocks."""
    per_proc: dict[str, list[str]] = {}
    for r in runs:
        for p in sorted({processor(rec.get("host")) for rec in r.results if rec["id"] in ids} - {None}):
            per_proc.setdefault(p, []).append(r.name)
    if len(per_proc) < 2:
        return ""
    listed = "; ".join(f"{p}: {', '.join(names)}" for p, names in sorted(per_proc.items()))
    return (f"Records computed on more than one processor model ({listed}). Greedy texts repeat byte for byte on one "
            "processor model, not across models, so these runs may differ in their texts, not only in their latencies; "
            "`tandem compare A.jsonl B.jsonl` shows where two runs part.")


def _versions_note(runs: list[Run], ids: set[str]) -> str:
    """Runs with records computed under other code than their file's header records (a file resumed after an
    update): a reader comparing such a run with another should know which of its numbers the header speaks for."""
    marks = []
    for r in runs:
        recs = [rec for rec in r.results if rec["id"] in ids]
        other = [rec["versions"] for rec in recs if rec.get("versions")]
        if other:
            marks.append(f"{r.name} ({len(other)} of {len(recs)}: {', '.join(sorted({k for v in other for k in v}))})")
    if not marks:
        return ""
    return ("Records computed under other versions than their file's header records (a file resumed after an update; "
            "each such record's `versions` names what differed): " + "; ".join(marks) + ".")


STEAL_BUSY = 0.2  # a problem during which the hypervisor took more than this share of the CPUs' time


def _busy(run: Run, ids: set[str]) -> tuple[int, int]:
    """(problems solved on a loaded machine, problems with a load or steal recorded): loaded means the
    1-minute load average at the finish was above the machine's CPUs by half again (other work in the
    machine; the load average lags, so this flags, it does not measure), or the hypervisor took more than
    ``STEAL_BUSY`` of the CPU time while the problem ran (other VMs on the host; measured over the problem)."""
    def busy(rec: dict) -> bool:
        cpus = max(1, (rec.get("host") or {}).get("cpus") or 1)
        return (rec.get("load") or 0) > 1.5 * cpus or (rec.get("steal") or 0) > STEAL_BUSY

    rs = [rec for rec in run.results if rec["id"] in ids and (rec.get("load"), rec.get("steal")) != (None, None)]
    return sum(busy(rec) for rec in rs), len(rs)


def _load_note(busy: dict[str, tuple[int, int]]) -> str:
    """Runs with problems solved on a loaded machine (``_busy`` per run name): their latencies were slowed by it."""
    marks = [f"{name} ({b} of {n})" for name, (b, n) in busy.items() if b]
    if not marks:
        return ""
    return ("Problems solved while other work shared the CPUs (a load average above 1.5x the CPUs at the finish, or "
            f"more than {STEAL_BUSY:.0%} of the CPU time stolen by the hypervisor for other VMs): " + ", ".join(marks) + ".")


def _baseline(rows: list[dict], method: str) -> dict | None:
    """The unsteered run of ``method`` that the relative columns divide by."""
    return next((r for r in rows if r["method"] == method and not r["steered"]), None)


def _model(header: dict, role: str) -> str:
    """A model's name with its dtype, and its device when that is not the CPU (latency means nothing
    without it); files written before tandem recorded the runtime are unmarked."""
    m = header["models"][role]
    runtime = m.get("runtime") or {}
    marks = [runtime.get("dtype")] + ([runtime["device"]] if runtime.get("device", "cpu") != "cpu" else [])
    marks = [x for x in marks if x]
    return f"{m['name']} ({', '.join(marks)})" if marks else m["name"]


def _decode_speeds(recs: list[dict]) -> str:
    """``SRM / LRM`` decode speed over ``recs``: generated tokens per second of decoding, '-' for a model
    that wrote nothing."""
    speeds = []
    for role in ("srm", "lrm"):
        use = [rec["usage"][role] for rec in recs if (rec.get("usage") or {}).get(role)]
        toks = sum(u.get("completion_tokens", 0) for u in use)
        secs = sum(u.get("seconds", 0.0) - u.get("prefill_seconds", 0.0) for u in use)
        speeds.append(f"{toks / secs:.1f}" if toks and secs > 0 else "-")
    return " / ".join(speeds)


def _speed_note(runs: list[Run], machines: Machines) -> str:
    """Each run's decode speed per model: generated tokens per second of decoding (prefill excluded),
    measured over the compared problems (``machines`` holds each run's records of them, by machine). Two
    machines with the same CPU name can decode at very different speeds; this is what tells a slow latency
    from a slow host. A run resumed on another machine gets its speed on each machine as well (by their
    letters), so that a reader can see how far the hosts differ."""
    parts = []
    for r in runs:
        by_host = machines.per_run[r.name]
        split = ""
        if len(by_host) > 1:
            split = " (" + ", ".join(f"{machines.letter[h]} {_decode_speeds(xs)}" for h, xs in sorted(by_host.items())) + ")"
        parts.append(f"{r.name} {_decode_speeds([rec for xs in by_host.values() for rec in xs])}{split}")
    return "Decode speed (generated tokens per second of decoding, prefill excluded; SRM / LRM): " + ", ".join(parts) + "."


def report(paths: list[str | Path], out: Path | None = None, limit: int | None = None, baseline: str | None = None,
           by: tuple[str, ...] = ()) -> Path:
    """Write report.md (its tables also as LaTeX, report.tex; its numbers as JSON, report.json) and
    pareto.png (and .pdf) next to the runs (or into ``out``); return the folder.
    ``limit``: compare on the first N problems every run finished only; ``baseline``: the name of a run
    to set every other against (``ablation_table``); ``by``: problem fields to break accuracy and latency
    down by (``breakdowns``; one ``by_FIELD.png`` each)."""
    runs = first_problems(load_runs(paths), limit)
    if baseline is not None and baseline not in {r.name for r in runs}:
        raise ValueError(f"--baseline {baseline!r} is not one of the runs: {', '.join(sorted(r.name for r in runs))}")
    first = Path(paths[0])
    out = out or (first if first.is_dir() else first.parent)
    out.mkdir(parents=True, exist_ok=True)
    md, rows = table(runs)
    ids = common_ids(runs)  # the notes and the paired tables speak of the problems the table compares
    id_set = set(ids)
    busy = {r.name: _busy(r, id_set) for r in runs}
    machines = Machines.of(runs, id_set)
    letters = machines.letters()
    for row in rows:  # the plot draws busy points hollow and prints the host letters beside each point
        row["loaded"] = busy[row["name"]][0]
        row["busy"] = row["loaded"] > busy[row["name"]][1] / 2
        row["hosts"] = letters.get(row["name"], "")
    seeds = seed_groups(runs)
    lrm = (_baseline(rows, "lrm") or {}).get("name")
    vs_lrm = {name: machines.same_machine(name, lrm) for name in machines.per_run} if lrm else {}  # once, for the note and JSON
    notes = (_concurrency_note(runs, id_set), machines.note(), machines.same_machine_note(vs_lrm, lrm, len(ids)),
             _processor_note(runs, id_set), _versions_note(runs, id_set),
             _load_note(busy), _speed_note(runs, machines), _seed_note(seeds, rows, shared_settings(runs)))
    for note in notes:
        if note:
            md += "\n" + note + "\n"
    correct = _grades(runs)
    if ids and (_baseline(rows, "srm") or _baseline(rows, "lrm")):
        md += "\n" + paired_table(correct, rows, ids)
    if ids and baseline is not None:
        md += "\n" + ablation_table(correct, rows, ids, baseline)
    h = runs[0].header
    title = f"{h['dataset'].get('name')} ({len(ids)} problems) · {_model(h, 'srm')} / {_model(h, 'lrm')}"
    srm_row, lrm_row = _baseline(rows, "srm"), _baseline(rows, "lrm")
    gap = (srm_row["name"], lrm_row["name"]) if srm_row and lrm_row else None
    parts = breakdowns(runs, rows, ids, by, gap) if by and ids else []  # before anything is written
    for b in parts:
        md += "\n" + breakdown_tables(b) + f"\n![by {b['field']}]({figure_name(b['field'])})\n"
    (out / "report.md").write_text(f"# tandem report\n\n{title}\n\n{md}\n![pareto](pareto.png)\n")
    (out / "report.tex").write_text(to_latex(md, title))
    doc = summary(runs, rows, correct, ids, baseline, title, seeds, machines, vs_lrm) | {"by": parts}
    (out / "report.json").write_text(json.dumps(doc, indent=1) + "\n")
    pareto_plot(rows, out / "pareto.png", title)
    for b in parts:
        breakdown_plot(b, out / figure_name(b["field"]), title)
    return out
