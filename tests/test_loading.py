"""The LRM's weights are read when a method first needs them, and never inside a problem's latency."""

from __future__ import annotations

import threading
import time

import pytest

from tandem.backends.base import ModelUsage
from tandem.backends.hf import HFModel
from tandem.backends.loading import DeferredModel, ensure_loaded, load_model, load_pair
from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.eval.runner import make_header
from tandem.policies import Decision, Policy
from tandem.policies.registry import POLICIES

QUESTION = "What is 2 + 3?"


def cfg(method: str) -> RunConfig:
    return RunConfig(method=method, max_tokens=12, settings=Settings(window=2, delimiter=" ", max_step_tokens=4))


def test_srm_only_never_reads_the_lrm_weights_and_the_header_does_not_change(tiny_pair_dirs):
    srm_dir, lrm_dir = map(str, tiny_pair_dirs)
    srm, lrm, _ = load_pair(srm_dir, lrm_dir, device="cpu")
    assert isinstance(lrm, DeferredModel) and not lrm.loaded
    engine = Engine(srm, lrm)
    before = make_header(engine, cfg("srm"), {"name": "p", "split": "test"})["models"]

    trace = engine.solve(QUESTION, cfg("srm"))
    assert trace.steps and not lrm.loaded
    assert trace.usage["lrm"].to_dict() == ModelUsage().to_dict()

    trace = engine.solve(QUESTION, cfg("lrm"))
    assert lrm.loaded and {s.writer for s in trace.steps} == {"lrm"}
    after = make_header(engine, cfg("srm"), {"name": "p", "split": "test"})["models"]
    assert after == before  # a file an SRM-only run started resumes under any later method
    direct = load_model(lrm_dir, "lrm", "cpu")
    assert lrm.load().runtime == direct.runtime == before["lrm"]["runtime"]
    assert lrm.fingerprint == direct.fingerprint


def test_deferred_runtime_names_the_dtype_the_weights_load_in(tiny_pair_dirs):
    lrm = DeferredModel(str(tiny_pair_dirs[1]), "lrm", "cpu", "bfloat16")
    promised = dict(lrm.runtime)
    assert promised == {"device": "cpu", "dtype": "bfloat16"}
    assert ensure_loaded(lrm) > 0 and ensure_loaded(lrm) == 0.0
    assert lrm.load().runtime == promised


def test_deferred_model_loads_once_under_concurrent_first_use(tiny_pair_dirs):
    lrm = DeferredModel(str(tiny_pair_dirs[1]), "lrm", "cpu")
    seen, start = [], threading.Barrier(4)

    def use():
        start.wait()
        seen.append(lrm.model)  # any attribute the wrapper does not hold loads the model

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and all(m is seen[0] for m in seen)
    assert isinstance(lrm.load(), HFModel)


class SlowToLoad(DeferredModel):
    """Weights that take 2 s to read, so that loading inside the clock would show in latency."""

    def load(self):
        if not self.loaded:
            time.sleep(2.0)
        return super().load()


def test_loading_is_not_part_of_latency(tiny_pair_dirs):
    """The engine opens the LRM session before the clock starts, so the first LRM problem's latency is
    its solve, not the weights being read."""
    srm_dir, lrm_dir = map(str, tiny_pair_dirs)
    engine = Engine(load_model(srm_dir, "srm", "cpu"), SlowToLoad(lrm_dir, "lrm", "cpu"))
    t0 = time.perf_counter()
    first = engine.solve(QUESTION, cfg("lrm"))
    wall = time.perf_counter() - t0
    assert engine.lrm.loaded and first.usage["lrm"].completion_tokens > 0
    assert wall - first.latency_s >= 2.0  # the 2 s of loading fell outside the problem's clock


def test_a_policy_that_declares_no_lrm_but_asks_for_it_gets_a_clear_error(tiny_pair):
    if "test-liar" not in POLICIES:
        from tandem.policies import register

        @register
        class Liar(Policy):
            name = "test-liar"
            uses_lrm = False

            def choose(self, view):
                return Decision("lrm", "lies")

    with pytest.raises(RuntimeError, match="declares uses_lrm = False"):
        Engine(*tiny_pair).solve(QUESTION, cfg("test-liar"))


def test_a_bf16_load_on_a_cpu_that_emulates_bf16_warns_first_in_python_and_in_the_cli(tiny_pair_dirs, monkeypatch):
    """This host may have bf16 in hardware; the CPU flag is what is pretended, the loading and the CLI are real."""
    import warnings

    from typer.testing import CliRunner

    import tandem.hardware
    from tandem.cli import app
    from tandem.hardware import EmulatedBF16Warning

    srm_dir, lrm_dir = map(str, tiny_pair_dirs)
    monkeypatch.setattr(tandem.hardware, "bf16_in_hardware", lambda: False)
    with pytest.warns(EmulatedBF16Warning, match="emulated"):
        load_model(srm_dir, "srm", "cpu", "bfloat16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmulatedBF16Warning)
        load_model(srm_dir, "srm", "cpu", "float32")  # float32 is not emulated: no warning

    with warnings.catch_warnings():  # restores warnings.showwarning, which the CLI replaces
        warnings.simplefilter("always", EmulatedBF16Warning)
        res = CliRunner().invoke(app, ["solve", QUESTION, "--srm", srm_dir, "--lrm", lrm_dir, "--method", "srm",
                                       "--device", "cpu", "--dtype", "bfloat16", "--max-tokens", "4"])
    assert res.exit_code == 0, res.output
    assert "warning: this CPU has no bfloat16 instructions" in res.output
