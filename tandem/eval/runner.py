"""``tandem eval``: solve a dataset, one JSON line per problem, resumable.

File layout (JSONL):

    {"type": "header", "config": {...}, "dataset": {...}, "models": {...}, "versions": {...}, ...}
    {"type": "result", "id": ..., "question": ..., "gold": ..., "answer": ..., "correct": ..., ...}
    ...

A record is appended and flushed as soon as its problem is done. Running the
same command again resumes: the header must describe the same run (config,
dataset, model weights, steering vector; otherwise it is an error, never a
silent mix), finished ids are skipped, and a half-written last line left by a
crash is cut off before anything is appended.

Problems are independent units of work: ``workers > 1`` solves several at once
on threads, each with its own KV caches (each in-process model still runs one
forward at a time; a remote LRM serves them concurrently). Only the main thread
writes the file. For latency numbers use one worker. Each record says how it
was measured: ``workers`` (problems in flight), ``host`` (the machine),
``finished`` (UTC time) and ``load`` (the 1-minute load average then), so a
report can tell which latencies shared the machine or came from another one;
and, when a resumed run's code differs from the one the header records,
``versions`` (what differs: the git commit, a library's version).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from tandem.config import RunConfig
from tandem.eval.datasets import Fields, Problem, upgrade_info
from tandem.eval.grading import grade
from tandem.hardware import OtherProcessorWarning, cpu_times, host, processor, steal_share
from tandem.prompt import CODE_INSTRUCTION, INSTRUCTION

IDENTITY = ("config", "dataset", "models", "steer")  # header keys that must match to resume


class EvalError(ValueError):
    pass


def versions() -> dict:
    import torch
    import transformers

    import tandem

    out = {
        "tandem": tandem.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }
    if "llama_cpp" in sys.modules:  # an in-process llama.cpp LRM: its build decides its speed
        llama_cpp = sys.modules["llama_cpp"]
        out["llama_cpp"] = f"{llama_cpp.__version__} ({llama_cpp.llama_print_system_info().decode().strip()})"
    out.update(RUNNING_CODE)
    return out


CODE_PATHS = ("tandem", "pyproject.toml")  # what decides a record: the package and its pinned dependencies


def code_state(root: Path) -> dict:
    """``git``: the commit of the checkout tandem runs from (None when it is not one, e.g. an installed
    wheel); ``git_dirty``: whether tandem's code there (``CODE_PATHS``, new files included) differs from
    that commit. Notes, results and scripts beside it are left out: editing RESULTS.md while a sweep runs
    does not make its records another version."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5).stdout

    try:
        commit = git("rev-parse", "HEAD").strip() or None
        dirty = bool(git("status", "--porcelain", "--", *CODE_PATHS).strip()) if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"git": commit, "git_dirty": dirty}


# The code this process imported, read once when it did: a sweep runs for hours while its checkout is edited and
# committed beside it, and its records must name the code that computed them, not the working tree's state at the
# time each one finished.
RUNNING_CODE = code_state(Path(__file__).resolve().parents[2])


def steer_info(engine, config: RunConfig) -> dict | None:
    """What the header records about the steering vector: its file hash, kind, alpha, layer and counts."""
    steering = engine.steering(config)
    if steering is None:
        return None
    import hashlib

    meta = engine.steer_vectors(config.steer).meta
    return steering.describe() | {
        "sha256": hashlib.sha256(Path(config.steer).read_bytes()).hexdigest(),
        "counts": meta.get("counts", {}).get(steering.kind),
    }


def make_header(engine, config: RunConfig, dataset: dict, steer: dict | None = None) -> dict:
    def model(m):
        return {"name": m.name, "source": getattr(m, "source", m.name), "fingerprint": getattr(m, "fingerprint", None),
                "runtime": getattr(m, "runtime", None)}

    return {
        "type": "header",
        "config": config.model_dump(),
        "dataset": dataset,
        "models": {"srm": model(engine.srm), "lrm": model(engine.lrm)},
        "steer": steer if steer is not None else steer_info(engine, config),
        "versions": versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class ResultsFile:
    """One eval's JSONL file: header first, then one result per finished problem."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> tuple[dict | None, list[dict], int]:
        """(header, results, byte length of the intact part). A torn last line (a crash mid-write)
        is left out of the intact part; a bad line anywhere else is an error."""
        if not self.path.exists():
            return None, [], 0
        data = self.path.read_bytes()
        *complete, tail = data.split(b"\n")  # tail: bytes after the last newline (a torn write) or b""
        header, results, good = None, [], 0
        for n, raw in enumerate(complete, 1):
            if raw.strip():
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError:
                    if n == len(complete) and not tail.strip():
                        break  # torn last line
                    raise EvalError(f"{self.path}:{n}: not valid JSON before the last line; fix or move the file") from None
                if n == 1 and rec.get("type") != "header":
                    raise EvalError(f"{self.path}: first line is not a tandem header; is it an eval file?")
                if rec.get("type") == "header":
                    header = rec
                elif rec.get("type") == "result":
                    results.append(rec)
            good += len(raw) + 1
        return header, results, good

    def open(self, header: dict) -> tuple[dict, dict[str, dict]]:
        """Start or resume; returns the file's header (``header`` for a new file) and the finished
        results by id."""
        old, results, good = self.read()
        if old is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", encoding="utf-8") as f:
                f.write(json.dumps(header, ensure_ascii=False) + "\n")
            return header, {}
        diff = differences(old, header)
        if diff:
            raise EvalError(
                f"{self.path} holds a different run ({', '.join(diff)} differ{'s' if len(diff) == 1 else ''}); "
                "resume only with the same settings, or write to another --out"
            )
        if good < self.path.stat().st_size:  # cut a half-written last line left by a crash
            with open(self.path, "r+b") as f:
                f.truncate(good)
        return old, {r["id"]: r for r in results}

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def differences(old: dict, new: dict) -> list[str]:
    """The IDENTITY keys in which a file's header ``old`` (written by this or an older tandem) and a
    new run's header ``new`` differ; the file resumes only when there are none."""
    old = dict(old, config=upgrade_config(old.get("config")), models=_upgrade_models(old.get("models"), new.get("models")),
               dataset=upgrade_info(old.get("dataset")))
    return [k for k in IDENTITY if canonical(old.get(k)) != canonical(new.get(k))]


def upgrade_config(config: dict | None) -> dict | None:
    """A config written by an older tandem, with the defaults of settings added since (so they still resume).
    One exception: files from before ``seed_scope`` drew every problem from the run's seed, so they
    read as ``seed_scope = "run"`` (resume them with ``--set seed_scope=run``)."""
    if isinstance(config, dict) and isinstance(config.get("settings"), dict) and "seed_scope" not in config["settings"]:
        config = dict(config, settings=dict(config["settings"], seed_scope="run"))
    try:
        return RunConfig.model_validate(config).model_dump()
    except Exception:  # noqa: BLE001 - an unreadable config simply will not match
        return config


def _upgrade_models(old: dict | None, new: dict | None) -> dict | None:
    """Model entries written before tandem recorded device and dtype: the file cannot say which it was
    run with, so it takes the new run's (all such files in this repository were float32 on CPU)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return old
    return {role: (dict(e, runtime=new.get(role, {}).get("runtime")) if isinstance(e, dict) and "runtime" not in e else e)
            for role, e in old.items()}


def canonical(x) -> str:
    return json.dumps(x, sort_keys=True)


LIBRARIES = ("tandem", "python", "torch", "transformers", "llama_cpp")  # versions whose change can change the outputs


class OtherVersionsWarning(RuntimeWarning):
    """A file resumed under other library versions than the ones its header records."""


def version_changes(file_header: dict, header: dict) -> dict:
    """The entries of this run's ``versions`` (tandem, torch, the git commit, ...) that differ from the
    ones in the header of the file it resumes. The header speaks for the run that began the file, so the
    records a resumed run adds carry these (their ``versions``) and a report can say which records came
    from other code."""
    old = file_header.get("versions") or {}
    return {k: v for k, v in (header.get("versions") or {}).items() if old.get(k) != v}


def solve_problem(engine, problem: Problem, config: RunConfig) -> dict:
    """Solve and grade one problem; the result record."""
    instruction = CODE_INSTRUCTION if problem.kind == "code" else INSTRUCTION
    trace = engine.solve(problem.question, config, instruction=instruction)
    answer, correct, note = grade(problem, trace.text)
    d = trace.to_dict()
    return {
        "type": "result",
        "id": problem.id,
        "question": problem.question,
        "gold": problem.gold,
        "answer": answer,
        "correct": bool(correct),
        "grade_note": note,
        "latency_s": d["latency_s"],
        "finish_reason": d["finish_reason"],
        "validation_ratio": d["validation_ratio"],
        "lrm_token_share": d["lrm_token_share"],
        "generated_tokens": sum(s["tokens"] for s in d["steps"]),
        "steps": d["steps"],
        "usage": d["usage"],
        "meta": d.get("meta", {}),
        "text": d["text"],
    }


OnResult = Callable[[dict], None]
OnResumed = Callable[[list[dict]], None]


def run_eval(
    engine,
    problems: Iterable[Problem],
    config: RunConfig,
    results: ResultsFile,
    header: dict,
    workers: int = 1,
    on_result: OnResult | None = None,
    solve: Callable = solve_problem,
    on_resumed: OnResumed | None = None,
) -> tuple[list[dict], dict[str, str]]:
    """Solve every problem not yet in ``results``; returns (all results in problem order, errors by id).

    A problem that raises is reported in ``errors`` and not written, so the
    next run retries it; the others go on. ``on_result`` hears of each problem
    solved now, as it is written; ``on_resumed``, once and before any, of those
    the file already held (a progress bar's running accuracy counts both, a log
    of new work only the first).
    """
    problems = list(problems)
    file_header, done = results.open(header)
    machine = host()
    todo = [p for p in problems if p.id not in done]
    changed = version_changes(file_header, header)
    if todo:
        _warn_if_other_processor(results.path, done.values(), machine)
        _warn_if_other_libraries(results.path, file_header, changed)
    errors: dict[str, str] = {}
    resumed = [done[p.id] for p in problems if p.id in done]
    if on_resumed and resumed:
        on_resumed(resumed)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = {}
        queue = iter(todo)

        def submit() -> bool:
            p = next(queue, None)
            if p is None:
                return False
            pending[pool.submit(_solve_watching_steal, solve, engine, p, config)] = p
            return True

        for _ in range(max(1, workers)):
            submit()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                p = pending.pop(fut)
                try:
                    rec = fut.result()
                except Exception as e:  # noqa: BLE001 - reported per problem, the run goes on
                    errors[p.id] = f"{type(e).__name__}: {e}"
                else:
                    rec["workers"] = max(1, workers)  # problems in flight: latency was measured under that sharing
                    # where and when, with the load then: a resumed file may span machines, and other work on
                    # the cores (a load above their count) slows a latency down, as does a hypervisor giving
                    # their time to other VMs (the record's steal)
                    rec["host"] = machine
                    rec["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                    rec["load"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
                    if changed:  # resumed under other code than the header records: say which
                        rec["versions"] = changed
                    results.append(rec)
                    done[p.id] = rec
                    if on_result:
                        on_result(rec)
                submit()
    return [done[p.id] for p in problems if p.id in done], errors


def _solve_watching_steal(solve: Callable, engine, problem: Problem, config: RunConfig) -> dict:
    """``solve``'s record with ``steal``: the share of the CPUs' time the hypervisor gave to other VMs
    meanwhile (machine-wide, so with several workers it covers the problems in flight together)."""
    before = cpu_times()
    rec = solve(engine, problem, config)
    rec["steal"] = steal_share(before, cpu_times())
    return rec


def _warn_if_other_processor(path: Path, records: Iterable[dict], machine: dict) -> None:
    """Resuming records computed on another processor model: its kernels round differently, so greedy
    texts can differ from what this machine would write, and the file would mix the two. The message
    names no counts, so that a ``--chunk`` sweep, resuming each file again and again, warns once per file."""
    others = {processor(r.get("host")) for r in records} - {None, processor(machine)}
    if others:
        warnings.warn(
            f"{path}: finished problems in it were computed on {' / '.join(sorted(others))}, this machine is "
            f"{processor(machine)}. Greedy texts repeat byte for byte on one processor model, not across models "
            "(RESULTS.md), so this file will mix texts from both; write to another --out to keep them apart.",
            OtherProcessorWarning,
            stacklevel=3,
        )


def _warn_if_other_libraries(path: Path, file_header: dict, changed: dict) -> None:
    """Resuming a file under other library versions (an upgrade between two runs of one command): the
    new records may differ from what the old versions would have computed. A new git commit alone does
    not warn (a developer's every commit would); the records still name it."""
    libs = [k for k in LIBRARIES if k in changed]
    if libs:
        old = file_header.get("versions") or {}
        said = ", ".join(f"{k} {old.get(k) or 'none'} -> {changed[k]}" for k in libs)
        warnings.warn(
            f"{path} was begun with other versions than this run's ({said}); the records added now name "
            "theirs (their 'versions'), and may differ from what the old versions would have computed. "
            "Write to another --out to keep the two apart.",
            OtherVersionsWarning,
            stacklevel=3,
        )


def dataset_info(name: str, split: str, fields=None) -> dict:
    info = {"name": name, "split": split}
    if Path(name).suffix == ".jsonl":
        info["path"] = str(Path(name).resolve())
        info["fields"] = asdict(fields if fields is not None else Fields())
    return info

