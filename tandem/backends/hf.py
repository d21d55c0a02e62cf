"""In-process Hugging Face backend: the only one that gives hidden states and steering.

``HFModel`` wraps a loaded causal LM and installs one forward pre-hook on the
capture layer. The hook reads that layer's *input* (what transformers reports
as ``hidden_states[layer]``) for the current forward only, so capturing costs
no extra pass and no copy of other layers. ``HFSession`` is one sequence's KV
cache plus bookkeeping; several sessions can share one HFModel.

Steering is a second pre-hook, installed for one forward at a time (so no
other session and no later forward is ever affected): it adds ``alpha * v`` to
the steering layer's input at the positions of boundary tokens that belong to
the reasoning (not the prompt), in every forward this session runs: decoding
its own tokens and catching up on the other model's. SEAL and the RankGuide
paper add the vector while the SRM generates; a boundary the LRM wrote is part
of the SRM's reasoning context too, so it is steered when the SRM reads it.
The capture hook is registered first and so records the *unsteered* state:
routing signals do not move with alpha.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time

import numpy as np
import torch

from tandem.backends.base import Context, SessionBase


def decoder_layers(model) -> torch.nn.ModuleList:
    """The stack of decoder layers of a causal LM (Qwen2, Llama, Mistral, ... share this layout)."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: cannot find decoder layers at model.model.layers")
    return layers


class HFModel:
    """A loaded transformers causal LM with a hidden-state capture hook."""

    def __init__(self, model, tokenizer, name: str, source: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.source = source or name
        self.config = model.config
        self.layers = decoder_layers(model)
        self.num_layers = len(self.layers)
        self.hidden_size = int(model.config.hidden_size)
        self.device = next(model.parameters()).device
        # device and dtype change the numbers (bf16 greedy traces differ from fp32): eval headers record them
        self.runtime = {"device": str(self.device), "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
        self.lock = threading.RLock()  # one forward at a time: the hook state is per model
        self._captured: torch.Tensor | None = None
        self.fingerprint: dict = {"kind": "none", "value": None}  # set by the loader (weights hash)
        # transformers 5.24 renamed forward's ``past_key_values`` to ``cache`` (the old name warns, and
        # goes in 5.40); earlier 5.x releases know only the old one
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def forward(self, ids: torch.Tensor, cache):
        """One forward of ``ids`` on top of ``cache`` (extended in place); logits of the last position.
        Returns once the work is done (``wait``), so a caller's clock around it times the forward."""
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        self.wait()
        return out

    def wait(self) -> None:
        """Block until this model's queued GPU work is done. CUDA runs kernels asynchronously: without
        this, a forward's time would be charged to whatever next reads its result (the sampler, a
        policy's entropy), and usage would split prefill from decode and SRM from LRM wrongly."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def resolve_layer(self, layer: int | None) -> int:
        """The capture layer: ``layer`` checked against the model, or the middle layer for None."""
        layer = self.num_layers // 2 if layer is None else int(layer)
        if not 0 <= layer < self.num_layers:
            raise ValueError(f"layer must be in 0..{self.num_layers - 1} for {self.name}, got {layer}")
        return layer

    @contextlib.contextmanager
    def capturing(self, layer: int | None):
        """Install the capture hook on ``layer`` for the duration of one forward (None: no capture)."""
        if layer is None:
            yield
            return

        def hook(_module, args, kwargs):
            hs = args[0] if args else kwargs["hidden_states"]
            self._captured = hs

        handle = self.layers[layer].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def reading_head(self, out: list):
        """Append the LM head's input at the last position of one forward (the final, normed hidden
        state) to ``out``: what ``head_logits`` turns into float32 logits."""

        def hook(_module, args):
            out.append(args[0][0, -1])

        handle = self.model.get_output_embeddings().register_forward_pre_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def head_logits(self, state: torch.Tensor, ids: list[int]) -> torch.Tensor:
        """The logits of ``ids`` from the LM head's input ``state``, computed in float32: a bfloat16 head
        rounds its output to 8 significant bits (0.125 apart near 20), which a two-option judge reads
        as ties (RESULTS.md, "Ties, decided by float rounding")."""
        head = self.model.get_output_embeddings()
        index = torch.tensor(ids, device=head.weight.device)
        logits = head.weight[index].float() @ state.float()
        if getattr(head, "bias", None) is not None:
            logits += head.bias[index].float()
        return logits

    def take_captured(self) -> torch.Tensor:
        out, self._captured = self._captured, None
        if out is None:
            raise RuntimeError("capture hook did not run")
        return out

    @contextlib.contextmanager
    def steering(self, steer, mask: torch.Tensor, counter: list[int]):
        """Add ``steer.alpha * steer.vector`` at the ``mask`` positions of this forward's input to ``steer.layer``."""
        if steer is None or not bool(mask.any()):
            yield
            return
        idx = mask.nonzero(as_tuple=True)[0]

        def hook(_module, args, kwargs):
            hs = args[0] if args else kwargs["hidden_states"]
            hs = hs.clone()
            hs[0, idx.to(hs.device)] += (steer.alpha * steer.vector).to(hs.device, hs.dtype)
            counter[0] += int(idx.numel())
            if args:
                return (hs, *args[1:]), kwargs
            kwargs["hidden_states"] = hs
            return args, kwargs

        handle = self.layers[steer.layer].register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()

    def session(self, role: str, layer: int | None = None, boundary_ids=frozenset(), steer=None) -> "HFSession":
        """A new KV cache. ``boundary_ids`` are counted (and steered, with ``steer``) when fed after the prompt."""
        return HFSession(self, role, self.resolve_layer(layer), boundary_ids, steer)


class HFSession(SessionBase):
    """One sequence's KV cache on an HFModel; feeds only tokens it has not yet seen."""

    def __init__(self, hf: HFModel, role: str, layer: int, boundary_ids=frozenset(), steer=None):
        from transformers import DynamicCache

        super().__init__(role)
        self.hf = hf
        self.layer = layer  # capture layer
        self.boundary_ids = boundary_ids
        self.steer = steer
        self.cache = DynamicCache(config=hf.config)

    def sync(self, ctx: Context, capture=()) -> list[np.ndarray]:
        """Prefill ``ctx.ids[seen:]``; return capture-layer states at the absolute positions in ``capture``."""
        start = self.seen
        new = ctx.ids[start:]
        if not new:
            if capture:
                raise ValueError("cannot capture positions that were already fed")
            return []
        wanted = [p - start for p in capture]
        if any(not 0 <= w < len(new) for w in wanted):
            raise ValueError(f"capture positions {list(capture)} outside the fed range {start}..{len(ctx)}")
        mask = torch.tensor(
            [start + j >= ctx.prompt_len and t in self.boundary_ids for j, t in enumerate(new)], dtype=torch.bool
        )
        steered = [0]
        t0 = time.perf_counter()
        with (
            self.hf.lock,
            torch.inference_mode(),
            self.hf.capturing(self.layer if wanted else None),  # first: records the unsteered input
            self.hf.steering(self.steer, mask, steered),
        ):
            ids = torch.tensor([new], dtype=torch.long, device=self.hf.device)
            out = self.hf.forward(ids, self.cache)
            self._logits = out.logits[0, -1].float()
            states = []
            if wanted:
                hs = self.hf.take_captured()[0]
                states = [hs[w].float().cpu().numpy() for w in wanted]
        self.usage.boundary_positions += int(mask.sum())
        self.usage.steered_positions += steered[0]
        self.usage.record_feed(time.perf_counter() - t0, sum(1 for w in ctx.writers[start:] if w != self.role))
        self.seen = len(ctx)
        return states

    def peek(self, ctx: Context, extra: list[int]) -> torch.Tensor:
        """Logits after ``ctx`` followed by ``extra`` ids that never enter the context (a side question
        on a fork): the cache is cropped back afterwards. ``extra`` counts as prompt and scoring tokens."""
        return self._fork(ctx, extra, None)[0]

    def peek_state(self, ctx: Context, extra: list[int], layer: int) -> np.ndarray:
        """Input of ``layer`` at the last of ``extra`` fed after ``ctx`` on a fork (verifier features)."""
        return self._fork(ctx, extra, layer)[1]

    def peek_ids(self, ctx: Context, extra: list[int], ids: list[int], float32: bool = False) -> torch.Tensor:
        """The logits of ``ids`` after ``ctx`` + ``extra``. ``float32`` on a model of another dtype: computed
        from the LM head's input in float32 (``HFModel.head_logits``), checked against the model's own
        logits to their rounding. A model whose logits are not its head's output (Gemma 2 caps them,
        Cohere scales them) is refused."""
        if not float32 or self.hf.runtime["dtype"] == "float32":
            return super().peek_ids(ctx, extra, ids)
        config = self.hf.config
        if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", 1.0) not in (None, 1.0):
            raise ValueError(
                f"{self.hf.name} caps or scales its logits; they cannot be read in float32 (judge_readout=float32)"
            )
        logits, _, head = self._fork(ctx, extra, None, head_ids=ids)
        coarse = logits[ids]
        if not torch.allclose(head, coarse, rtol=2**-6, atol=2**-6):
            raise ValueError(
                f"{self.hf.name}: its logits are not its LM head's output ({coarse.tolist()} against "
                f"{head.tolist()}); it cannot be read in float32 (judge_readout=float32)"
            )
        return head

    def _fork(self, ctx: Context, extra: list[int], layer: int | None, head_ids: list[int] | None = None):
        self.sync(ctx)
        keep = self._logits
        t0 = time.perf_counter()
        heads: list = []
        reading = self.hf.reading_head(heads) if head_ids is not None else contextlib.nullcontext()
        with self.hf.lock, torch.inference_mode(), self.hf.capturing(layer), reading:
            ids = torch.tensor([extra], dtype=torch.long, device=self.hf.device)
            out = self.hf.forward(ids, self.cache)
            logits = out.logits[0, -1].float()
            state = self.hf.take_captured()[0, -1].float().cpu().numpy() if layer is not None else None
            head = self.hf.head_logits(heads[-1], head_ids).cpu() if head_ids is not None else None
            _crop_to(self.cache, self.seen)
        self.usage.record_side(time.perf_counter() - t0, len(extra))
        self._logits = keep
        return logits, state, head

    def rollback(self, length: int) -> None:
        """Forget every token at position >= ``length`` (the caller trims the context).

        The token at ``length - 1`` is forgotten too and re-fed at the next sync: its forward is
        what yields the next-token logits, which a crop cannot restore."""
        if length < self.seen:
            keep = max(length - 1, 0)
            _crop_to(self.cache, keep)
            self.seen = keep
            self._logits = None


def _crop_to(cache, length: int) -> None:
    """Keep the first ``length`` positions of a DynamicCache (transformers 5 crops by a negative count)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)
