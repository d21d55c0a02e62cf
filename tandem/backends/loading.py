"""Turn ``--srm`` / ``--lrm`` specs into loaded models, and refuse pairs that cannot share token ids.

A spec is ``embedded`` (the offline default pair), a local folder, or a
Hugging Face model id already in the local HF cache (tandem never downloads).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

from tandem.backends.embedded import EMBEDDED, prepare
from tandem.backends.hf import HFModel
from tandem.hardware import warn_if_bf16_emulated


class ModelLoadError(RuntimeError):
    pass


def resolve_device(device: str = "auto") -> str:
    """``auto`` is a CUDA GPU where there is one, else the CPU. A device torch does not know, or a GPU this
    machine lacks, is refused here, before any weights are read, rather than by torch midway through a load."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ModelLoadError(f"device {device!r}: this machine has no CUDA GPU that torch can use "
                                 f"(torch {torch.__version__}, {built}); use --device cpu or auto")
        if dev.index is not None and dev.index >= n:
            raise ModelLoadError(f"device {device!r}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    return device


def resolve_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ModelLoadError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}") from None


def _source(spec: str, role: str) -> tuple[str | Path, str]:
    """(path to load from, display name) of a model spec."""
    if spec == "embedded":
        return prepare(role), EMBEDDED[role].name
    return spec, Path(spec).name if Path(spec).exists() else spec


def _cannot_load(spec: str, role: str, e: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"cannot load {role.upper()} model {spec!r}: {e}. Give a local folder, a model already in "
        "the Hugging Face cache (tandem never downloads), or `embedded`."
    )


def _load_weights(spec: str, role: str, path, device: str, dtype: str):
    from transformers import AutoModelForCausalLM

    warn_if_bf16_emulated(device, dtype)  # before the read, which is slow there
    try:
        # local_files_only: tandem never downloads; fetch hub models beforehand (e.g. `hf download ID`)
        return AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device), local_files_only=True).to(device)
    except OSError as e:
        raise _cannot_load(spec, role, e) from None


def _load_tokenizer(spec: str, role: str, path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except OSError as e:
        raise _cannot_load(spec, role, e) from None


def load_model(spec: str, role: str, device: str = "auto", dtype: str = "auto") -> HFModel:
    """Load one model in-process with transformers."""
    device = resolve_device(device)
    path, name = _source(spec, role)
    tok = _load_tokenizer(spec, role, path)
    hf = HFModel(_load_weights(spec, role, path, device, dtype), tok, name=name, source=str(path))
    hf.fingerprint = fingerprint(spec, role, Path(path))
    return hf


class DeferredModel:
    """An in-process model whose weights are read on first use; everything else is known at once.

    Why: the SRM-only baseline never runs the LRM, and reading a large LRM's
    weights for it costs minutes and most of a GPU. What a results header
    records about a model (name, source, fingerprint, device, dtype) and the
    tokenizer the pair check needs are known before the weights are read, so a
    header is the same whether or not the weights were ever loaded, and a file
    started by an SRM-only run resumes under any later one. The engine opens a
    method's sessions before it starts a problem's clock, so loading never
    counts as latency. Any attribute not held here loads the model (once,
    thread-safe) and is the loaded HFModel's.
    """

    def __init__(self, spec: str, role: str, device: str = "auto", dtype: str = "auto"):
        import torch

        self._args = (spec, role, resolve_device(device), dtype)
        self._model: HFModel | None = None
        self._lock = threading.Lock()
        path, self.name = _source(spec, role)
        self.source = str(path)
        self.tokenizer = _load_tokenizer(spec, role, path)
        self.fingerprint = fingerprint(spec, role, Path(path))
        dev = torch.device(self._args[2])
        if dev.type == "cuda" and dev.index is None:  # where .to("cuda") puts it, as HFModel reports it
            dev = torch.device("cuda", torch.cuda.current_device())
        self.runtime = {"device": str(dev), "dtype": str(resolve_dtype(dtype, self._args[2])).removeprefix("torch.")}

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> HFModel:
        with self._lock:
            if self._model is None:
                spec, role, device, dtype = self._args
                path, _ = _source(spec, role)
                hf = HFModel(_load_weights(spec, role, path, device, dtype), self.tokenizer, name=self.name, source=self.source)
                hf.fingerprint = self.fingerprint
                if hf.runtime != self.runtime:  # a header may already name self.runtime
                    raise ModelLoadError(f"{role.upper()} loaded as {hf.runtime}, expected {self.runtime}")
                self._model = hf
            return self._model

    def __getattr__(self, attr: str):
        if attr.startswith("_"):  # not set yet (e.g. during unpickling): never load for these
            raise AttributeError(attr)
        return getattr(self.load(), attr)


def ensure_loaded(model) -> float:
    """Read a deferred model's weights now; seconds it took (0 for a model already in memory)."""
    if not isinstance(model, DeferredModel) or model.loaded:
        return 0.0
    t0 = time.perf_counter()
    model.load()
    return time.perf_counter() - t0


def fingerprint(spec: str, role: str, path: Path) -> dict:
    """What identifies the weights, for the header of every results file.

    Embedded: the verified GGUF sha256. A Hugging Face cache snapshot: its
    commit. Any other folder: sha256 over its weight files, cached per
    (path, size, mtime) under $TANDEM_HOME so it is computed once.
    """
    if spec == "embedded":
        return {"kind": "gguf-sha256", "value": EMBEDDED[role].sha256}
    m = re.search(r"/snapshots/([0-9a-f]{40})", str(path.resolve()))
    if m:
        return {"kind": "hf-snapshot", "value": m.group(1)}
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin", ".gguf"))
    if not files:
        return {"kind": "none", "value": None}
    from tandem.backends.embedded import tandem_home

    key = json.dumps([[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files])
    store = tandem_home() / "fingerprints.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        h = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    h.update(chunk)
        known[key] = h.hexdigest()
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_suffix(".tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(store)
    return {"kind": "weights-sha256", "value": known[key]}


def check_same_tokenizer(srm_tok, lrm_tok, srm_name: str = "SRM", lrm_name: str = "LRM") -> None:
    """Both models must read and write the same ids: same vocabulary and special tokens."""
    problems = []
    if len(srm_tok) != len(lrm_tok):
        problems.append(f"vocabulary sizes differ ({len(srm_tok)} vs {len(lrm_tok)})")
    elif srm_tok.get_vocab() != lrm_tok.get_vocab():
        problems.append("vocabularies map tokens to different ids")
    for attr in ("eos_token_id", "bos_token_id", "pad_token_id"):
        a, b = getattr(srm_tok, attr), getattr(lrm_tok, attr)
        if a != b:
            problems.append(f"{attr} differs ({a} vs {b})")
    if problems:
        raise ModelLoadError(
            f"{srm_name} and {lrm_name} do not share a tokenizer: {'; '.join(problems)}. "
            "tandem hands token ids between the models, so the pair must use one tokenizer."
        )


def load_llamacpp(spec: str, tokenizer, n_ctx: int = 4096):
    """The LRM under llama.cpp: ``embedded`` (its verified GGUF) or a path to a .gguf file."""
    from tandem.backends.embedded import assemble
    from tandem.backends.llamacpp import LlamaCppModel

    if spec == "embedded":
        gguf, name, fp = assemble(EMBEDDED["lrm"]), EMBEDDED["lrm"].name, {"kind": "gguf-sha256", "value": EMBEDDED["lrm"].sha256}
    elif spec.endswith(".gguf") and Path(spec).is_file():
        gguf, name, fp = Path(spec), Path(spec).stem, fingerprint(spec, "lrm", Path(spec).parent)
    else:
        raise ModelLoadError(f"--lrm-backend llamacpp needs `embedded` or a path to a .gguf file, got {spec!r}")
    try:
        model = LlamaCppModel(gguf, tokenizer, f"{name} (llama.cpp)", n_ctx=n_ctx)
    except (ImportError, ValueError) as e:
        raise ModelLoadError(str(e)) from None
    model.fingerprint = fp
    return model


def load_remote(url: str, tokenizer):
    """The LRM on an OpenAI-compatible server; fails at once if it cannot be reached or tokenizes differently."""
    from tandem.backends.remote import RemoteError, RemoteModel

    try:
        return RemoteModel(url, tokenizer)
    except RemoteError as e:
        raise ModelLoadError(str(e)) from None


def load_pair(srm: str = "embedded", lrm: str = "embedded", device: str = "auto", dtype: str = "auto", lrm_backend: str = "hf"):
    """Load both models and check they can continue each other's token ids; returns (srm, lrm, seconds).

    An in-process LRM comes back as a ``DeferredModel``: its weights are read
    when a method first needs it (``ensure_loaded`` reads them now)."""
    t0 = time.perf_counter()
    s = load_model(srm, "srm", device, dtype)
    if lrm_backend == "remote" or lrm.startswith(("http://", "https://")):
        return s, load_remote(lrm, s.tokenizer), time.perf_counter() - t0
    if lrm_backend == "llamacpp":
        return s, load_llamacpp(lrm, s.tokenizer), time.perf_counter() - t0
    l = DeferredModel(lrm, "lrm", device, dtype)  # noqa: E741
    check_same_tokenizer(s.tokenizer, l.tokenizer, s.name, l.name)
    return s, l, time.perf_counter() - t0
