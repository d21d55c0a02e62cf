"""The step loop, written once; every method is a Policy plugged into it.

Per problem:

    ids = prompt ids                             (tokenized once)
    loop:
        SRM feeds the ids it has not seen        -> next-token logits, boundary states
        signals = entropy(logits), TT ranks of the last W boundary states
        decision = policy.choose(signals)        -> "srm" | "lrm" (| finish)
        writer feeds the ids it has not seen, then decodes until a boundary
        token, EOS, the per-step cap or the total budget

Each model keeps its own KV cache in its Session and only ever prefills the
tokens it has not processed yet, so a handoff costs exactly the other model's
new tokens. The signals come from forwards the SRM runs anyway: the boundary
token that ends a step is fed at the start of the next one, and that single
forward yields both the boundary hidden state and the first-token distribution
of the next step (GlimpRouter's "glimpse").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable
from tandem.answer import last_boxed
from tandem.backends.base import ENGINE, Context, Session
from tandem.config import RunConfig
from tandem.policies import Decision, Policy, Signals, StepView, get_policy
from tandem.prompt import FINAL_ANSWER_CUE, INSTRUCTION, prompt_ids
from tandem.sampling import Sampler
from tandem.step_labels import StepLabeler
from tandem.steering import Steering, SteerVectors
from tandem.signals import BoundaryTokens, RankWindow, entropy
from tandem.trace import Step, Trace

OnStep = Callable[[int, Step], None]


class Engine:
    """Runs policies over an SRM (an HFModel: hidden states needed) and an LRM (any backend)."""

    def __init__(self, srm, lrm):
        self.srm = srm
        self.lrm = lrm
        self.tokenizer = srm.tokenizer
        self.labeler = StepLabeler()
        self._boundaries: dict[str, BoundaryTokens] = {}
        self._vectors: dict[tuple, SteerVectors] = {}

    def boundaries(self, delimiter: str) -> BoundaryTokens:
        if delimiter not in self._boundaries:
            self._boundaries[delimiter] = BoundaryTokens(self.tokenizer, delimiter)
        return self._boundaries[delimiter]

    def steering(self, config: RunConfig) -> Steering | None:
        """The SRM's steering for this run (vector files are read once and checked against the SRM)."""
        if not config.steer:
            return None
        path = Path(config.steer)
        key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else None)
        if key not in self._vectors:
            self._vectors[key] = SteerVectors.load(path)
        s = config.settings
        return self._vectors[key].for_model(self.srm, s.steer_kind, s.alpha, str(path))

    def solve(
        self, question: str, config: RunConfig | None = None, on_step: OnStep | None = None, instruction: str = INSTRUCTION
    ) -> Trace:
        config = config or RunConfig()
        return self.run(prompt_ids(self.tokenizer, question, instruction), config, question=question, on_step=on_step)

    def run(self, prompt: list[int], config: RunConfig, question: str = "", on_step: OnStep | None = None) -> Trace:
        """Solve from prompt ids; ``on_step(index, step)`` is called as each step finishes."""
        return _Run(self, prompt, config, question, on_step).execute()


class _Run:
    """One problem: the context, both sessions, the rank window and the steps so far."""

    def __init__(self, engine: Engine, prompt: list[int], config: RunConfig, question: str, on_step: OnStep | None):
        s = config.settings
        self.on_step = on_step
        self.engine = engine
        self.config = config
        self.question = question
        self.policy: Policy = get_policy(config.method)(s)
        self.bounds = engine.boundaries(s.delimiter)
        self.ctx = Context.from_prompt(prompt)
        self.steer = engine.steering(config)
        self.srm: Session = engine.srm.session("srm", s.layer, self.bounds.ids, self.steer)
        self.lrm: Session = engine.lrm.session("lrm")
        self.window = RankWindow(engine.srm.hidden_size, s.window, s.eps, s.dims)
        self.sampler = Sampler(s.temperature, s.top_p, config.seed)
        self.steps: list[Step] = []

    # -- the loop -----------------------------------------------------------
    def execute(self) -> Trace:
        t0 = time.perf_counter()
        finish = None
        while finish is None:
            if self.ctx.generated >= self.config.max_tokens:
                finish = "budget"
                break
            signals = self.srm_signals() if self.policy.needs_srm else Signals()
            view = StepView(len(self.steps), signals, self.window.history, [st.writer for st in self.steps])
            decision = self.policy.choose(view)
            if decision.finish:
                self.write_final_answer(decision, signals)
                finish = "collapse"
            else:
                step = self.write_step(decision, signals)
                if step.end in ("eos", "budget"):
                    finish = step.end
        latency = time.perf_counter() - t0
        return self.trace(finish, latency)

    def srm_signals(self) -> Signals:
        """Feed the SRM what it has not seen; entropy of its next token and ranks of the newest window."""
        ctx, start = self.ctx, max(self.srm.seen, self.ctx.prompt_len)
        positions = [p for p in range(start, len(ctx)) if self.bounds.is_boundary(ctx.ids[p])]
        for state in self.srm.sync(ctx, capture=positions):
            self.window.push(state)
        h = entropy(self.srm.next_logits, self.config.settings.entropy_topk)
        return Signals(entropy=h, ranks=self.window.ranks)

    def session(self, writer: str) -> Session:
        return self.srm if writer == "srm" else self.lrm

    def write_step(self, decision: Decision, signals: Signals) -> Step:
        s = self.config.settings
        if decision.writer == "srm" and self.policy.needs_srm and not self.policy.reuse_glimpse:
            self.sampler(self.srm.next_logits)  # upstream GlimpRouter: the glimpsed token is thrown away
        cap = min(s.max_step_tokens, self.config.max_tokens - self.ctx.generated)
        stop = lambda t: self.bounds.is_boundary(t) or self.bounds.is_eos(t)  # noqa: E731
        ids = self.session(decision.writer).generate(self.ctx, self.sampler, stop, cap)
        return self.add_step(decision, signals, ids, self.end_of(ids))

    def write_final_answer(self, decision: Decision, signals: Signals) -> Step:
        """Eq. 4 collapse: append the final-answer cue and let the chosen model close the box."""
        cue = self.engine.tokenizer.encode(FINAL_ANSWER_CUE, add_special_tokens=False)
        for t in cue:
            self.ctx.append(t, ENGINE)
        cap = self.config.settings.answer_tokens
        ids = self.session(decision.writer).generate(self.ctx, self.sampler, self.bounds.is_eos, cap)
        return self.add_step(decision, signals, ids, "eos" if self.bounds.is_eos(ids[-1]) else "cap", prefix=FINAL_ANSWER_CUE)

    def end_of(self, ids: list[int]) -> str:
        last = ids[-1]
        if self.bounds.is_eos(last):
            return "eos"
        if self.bounds.is_boundary(last):
            return "boundary"
        return "budget" if self.ctx.generated >= self.config.max_tokens else "cap"

    def add_step(self, decision: Decision, signals: Signals, ids: list[int], end: str, prefix: str = "") -> Step:
        text = prefix + self.engine.tokenizer.decode(ids, skip_special_tokens=True)
        label = self.engine.labeler.label(text)
        step = Step(decision.writer, ids, text, signals.to_dict(), decision.reason, end, label)
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(len(self.steps) - 1, step)
        return step

    def trace(self, finish: str, latency: float) -> Trace:
        ctx = self.ctx
        text = self.engine.tokenizer.decode(ctx.ids[ctx.prompt_len :], skip_special_tokens=True)
        meta = {
            "srm": self.engine.srm.name,
            "lrm": self.engine.lrm.name,
            "layer": self.srm.layer,
            "dims": "x".join(map(str, self.window.dims)),
            "windows": len(self.window.history),
        }
        if self.steer is not None:
            meta["steer"] = self.steer.describe()
        warnings = self.policy.warnings(self.window.max_ranks)
        if warnings:
            meta["warnings"] = warnings
        return Trace(
            question=self.question,
            method=self.config.method,
            answer=last_boxed(text),
            text=text,
            prompt_tokens=ctx.prompt_len,
            latency_s=latency,
            config=self.config.model_dump(),
            steps=self.steps,
            usage={"srm": self.srm.usage, "lrm": self.lrm.usage},
            finish_reason=finish,
            meta=meta,
        )
