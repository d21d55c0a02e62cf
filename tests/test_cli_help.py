"""Every command's ``--help`` shows each option's help text as written.

Typer renders help through rich, which reads ``[word]`` as markup and drops it
(``[settings]``, ``[#model]`` and ``[[grid]]`` once vanished this way), so a
literal bracket in a help string must be written ``\\[``."""

from __future__ import annotations

import re

from cli_in_process import tandem
from typer.main import get_command

from tandem.cli import app


def test_every_option_help_text_is_shown_whole(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no wrapping inside the help column
    commands = get_command(app).commands
    assert {"solve", "eval", "calibrate", "train-verifier", "sweep", "report", "analyze", "compare", "serve"} <= set(commands)
    checked = 0
    for name, command in commands.items():
        res = tandem(name, "--help")
        assert res.returncode == 0, res.stderr
        shown = re.sub(r"\s+", " ", res.stdout)
        for param in command.params:
            text = getattr(param, "help", None)
            if text:
                assert text.replace("\\[", "[") in shown, f"tandem {name} --help lost part of: {text!r}"
                checked += 1
    assert checked > 60


def test_the_method_option_names_every_registered_method():
    from tandem.policies import registry

    # the policies tandem ships: other tests register policies of their own
    shipped = {name for name, cls in registry.POLICIES.items() if cls.__module__.startswith("tandem.policies.")}
    assert {"srm", "lrm", "glimprouter", "rankguide", "specreason", "mentorcollab"} <= shipped
    assert all(m in tandem("eval", "--help").stdout for m in shipped)


def test_version_names_tandem_its_commit_and_its_libraries():
    import subprocess
    from pathlib import Path

    import tandem as pkg

    res = tandem("--version")
    assert res.returncode == 0, res.stderr
    head = res.stdout.splitlines()[0]
    assert head.startswith(f"tandem {pkg.__version__}")
    root = Path(pkg.__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    if commit:  # a git checkout (a wheel has no commit to name)
        assert f"commit {commit[:12]}" in head
    for lib in ("python", "torch", "transformers"):
        assert f"{lib} " in res.stdout


def test_bare_help_says_what_tandem_is():
    shown = re.sub(r"\s+", " ", tandem("--help").stdout)
    assert "small reasoning model" in shown and "tandem solve" in shown
