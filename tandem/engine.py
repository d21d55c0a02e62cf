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

import functools
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tandem.answer import last_boxed
from tandem.backends.base import ENGINE, Context, ModelUsage, Session, StopTokens
from tandem.config import RunConfig
from tandem.policies import Decision, Policy, Signals, StepView, get_policy
from tandem.prompt import FINAL_ANSWER_CUE, INSTRUCTION, mentor_ids, prompt_ids, scoring_ids
from tandem.sampling import Sampler, problem_seed
from tandem.signals import BoundaryTokens, RankWindow, entropy
from tandem.signals.repetition import trailing_repeat
from tandem.steering import Steering, SteerVectors
from tandem.step_labels import StepLabeler
from tandem.trace import Step, Trace

OnStep = Callable[[int, Step], None]


class Cancelled(RuntimeError):
    """The caller set the run's cancel event (e.g. a server client disconnected)."""


def _single_id(tokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {text!r} into {len(ids)} tokens; side questions need it as one token")
    return ids[0]


TIE = 1e-6  # a mean preference this close to 0.5 is no preference (float rounding, not the judge)


def mean_preference(answers) -> float:
    """The mean of a judge's answers for the LRM's option, one per option order asked; exactly 0.5
    when they cancel.

    A judge whose answer depends on the position alone gives complementary answers in the two orders
    (p and 1 - p). That is common in bfloat16, whose logits are rounded (a spacing of 0.125 at
    logits of 16-32), so both orders often see the same logit difference: the mean is then 0.5 in
    exact arithmetic but 0.5 + 1.5e-8 to 4.5e-8 from float32 softmax. Until 2026-12-07 that rounding
    decided the tie (of 31 ties in the committed both-orders runs, 25 went to the LRM's option that
    way and 6 were exactly 0.5; RESULTS.md); now a mean within ``TIE`` of 0.5 is 0.5, no preference:
    the SRM keeps its option (the LRM's needs more than 0.5) and ``train-verifier --labels lrm``
    makes no label of it."""
    answers = list(answers)
    p = sum(answers) / len(answers)
    return 0.5 if abs(p - 0.5) <= TIE else p


class Engine:
    """Runs policies over an SRM (an HFModel: hidden states needed) and an LRM (any backend)."""

    def __init__(self, srm, lrm):
        self.srm = srm
        self.lrm = lrm
        self.tokenizer = srm.tokenizer
        self.labeler = StepLabeler()
        self._boundaries: dict[str, BoundaryTokens] = {}
        self._files: dict[tuple, object] = {}  # loaded steering vectors and verifiers, by file

    @functools.cached_property
    def vocab_texts(self) -> list[str]:
        """Each vocabulary id decoded on its own (once per engine: ~150k ids for Qwen)."""
        return self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])

    def boundaries(self, delimiter: str) -> BoundaryTokens:
        if delimiter not in self._boundaries:
            self._boundaries[delimiter] = BoundaryTokens(self.tokenizer, delimiter, texts=self.vocab_texts)
        return self._boundaries[delimiter]

    @functools.cached_property
    def scoring_ids(self) -> list[int]:
        return scoring_ids(self.tokenizer)

    @functools.cached_property
    def digit_ids(self) -> list[int]:
        return [_single_id(self.tokenizer, str(d)) for d in range(10)]

    @functools.cached_property
    def option_ids(self) -> list[int]:
        for a, b in ((" A", " B"), ("A", "B")):  # the answer follows "Option": " A" in BPE vocabularies
            ids = [self.tokenizer.encode(x, add_special_tokens=False) for x in (a, b)]
            if all(len(i) == 1 for i in ids):
                return [ids[0][0], ids[1][0]]
        raise ValueError("the tokenizer has no single-token option labels (' A'/' B' or 'A'/'B')")

    def mentor_ids(self, a: list[int], b: list[int]) -> list[int]:
        return mentor_ids(self.tokenizer, a, b)

    def option_preference(
        self, judge: Session, ctx: Context, options: dict[str, list[int]], lrm_first: bool, float32: bool = False
    ) -> float:
        """``judge``'s probability that the LRM's option is the better one: the mentor question, with the
        options shown in the order ``lrm_first`` says, asked on a fork of its cache after ``ctx``; the two
        option labels' logits computed in float32 with ``float32`` (``judge_readout``)."""
        a, b = (options["lrm"], options["srm"]) if lrm_first else (options["srm"], options["lrm"])
        logits = judge.peek_ids(ctx, self.mentor_ids(a, b), self.option_ids, float32)
        pa, pb = torch.softmax(logits, -1).tolist()
        return pa if lrm_first else pb

    def option_preferences(
        self, judge: Session, ctx: Context, options: dict[str, list[int]], orders, float32: bool = False
    ) -> dict[str, float]:
        """``option_preference`` in each of ``orders`` (True: the LRM's option first), keyed ``lrm_first`` /
        ``srm_first`` as the records keep them."""
        return {
            ("lrm_first" if o else "srm_first"): self.option_preference(judge, ctx, options, o, float32) for o in orders
        }

    @functools.cached_property
    def word_starts(self) -> frozenset[int]:
        return frozenset(i for i, t in enumerate(self.vocab_texts) if t[:1].isspace())

    def starts_word(self, token_id: int) -> bool:
        return token_id in self.word_starts

    def _load_once(self, path: str, load: Callable):
        """``load(path)``, read once per file version (path and modification time)."""
        p = Path(path)
        key = (load.__qualname__, str(p.resolve()), p.stat().st_mtime_ns if p.exists() else None)
        if key not in self._files:
            self._files[key] = load(p)
        return self._files[key]

    def verifier(self, config: RunConfig):
        """The MLP verifier of this run, checked against the SRM."""
        from tandem.verifier import Verifier, VerifierError

        if not config.verifier_file:
            raise VerifierError("verifier=mlp needs a verifier file (--verifier FILE, made by `tandem train-verifier`)")
        v = self._load_once(config.verifier_file, Verifier.load)
        v.check(self.srm, config.verifier_file)
        return v

    def steer_vectors(self, path: str) -> SteerVectors:
        return self._load_once(path, SteerVectors.load)

    def steering(self, config: RunConfig) -> Steering | None:
        """The SRM's steering for this run, checked against the SRM."""
        if not config.steer:
            return None
        s = config.settings
        return self.steer_vectors(config.steer).for_model(self.srm, s.steer_kind, s.alpha, config.steer)

    def solve(
        self, question: str, config: RunConfig | None = None, on_step: OnStep | None = None, instruction: str = INSTRUCTION,
        cancel: threading.Event | None = None,
    ) -> Trace:
        config = config or RunConfig()
        prompt = prompt_ids(self.tokenizer, question, instruction)
        return self.run(prompt, config, question=question, on_step=on_step, cancel=cancel)

    def run(
        self, prompt: list[int], config: RunConfig, question: str = "", on_step: OnStep | None = None,
        cancel: threading.Event | None = None,
    ) -> Trace:
        """Solve from prompt ids; ``on_step(index, step)`` is called as each step finishes. Setting
        ``cancel`` stops the run after the token being generated (raises ``Cancelled``)."""
        return _Run(self, prompt, config, question, on_step, cancel).execute()


class _Run:
    """One problem: the context, both sessions, the rank window and the steps so far."""

    def __init__(
        self, engine: Engine, prompt: list[int], config: RunConfig, question: str, on_step: OnStep | None,
        cancel: threading.Event | None = None,
    ):
        s = config.settings
        self.cancel = cancel
        self.on_step = on_step
        self.engine = engine
        self.config = config
        self.question = question
        seed = problem_seed(config.seed, prompt) if s.seed_scope == "problem" else config.seed
        self.policy: Policy = get_policy(config.method)(s, seed)
        self.bounds = engine.boundaries(s.delimiter)
        # what ends a step (a boundary or EOS) and a forced final answer (EOS only); asked after
        # every generated token, so they are also where a cancelled run stops
        self.stop = StopTokens(self.bounds.ids | self.bounds.eos_ids, self.check_cancel)
        self.answer_stop = StopTokens(self.bounds.eos_ids, self.check_cancel)
        self.ctx = Context.from_prompt(prompt)
        self.steer = engine.steering(config)
        self.srm: Session = engine.srm.session("srm", s.layer, self.bounds.ids, self.steer)
        # opened before the clock starts: a deferred LRM reads its weights here, never inside latency
        self.lrm: Session | None = engine.lrm.session("lrm") if self.policy.uses_lrm else None
        self.window = RankWindow(engine.srm.hidden_size, s.window, s.eps, s.dims)
        self.sampler = Sampler(s.temperature, s.top_p, seed)
        self.steps: list[Step] = []
        self.stats: dict[str, int] = {}  # method counters (reviews, rejections, probes, divergences, ...)
        self.divergences: list[tuple[list[int], list[int], list[int]]] = []  # (context ids, SRM option, LRM option)
        self.mentor_log: list[dict] = []  # per divergence: where, the verifier's answers, the pick (meta["mentor"])
        if self.policy.mentored and s.verifier == "mlp":
            engine.verifier(config)  # fail before any work

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
                if self.policy.reviews and step.writer == "srm":
                    step = self.review_step(step, view, signals)
                if step.end in ("eos", "budget"):
                    finish = step.end
        latency = time.perf_counter() - t0
        return self.trace(finish, latency)

    def srm_signals(self) -> Signals:
        """Feed the SRM what it has not seen; entropy of its next token and ranks of the newest window."""
        ctx, start = self.ctx, max(self.srm.seen, self.ctx.prompt_len)
        positions = [p for p in range(start, len(ctx)) if self.bounds.is_boundary(ctx.ids[p])]
        if self.config.settings.cap_states and self.steps and self.steps[-1].end == "cap" and len(ctx) > start:
            positions.append(len(ctx) - 1)  # the step the cap cut ends here: a boundary of its own
        for state in self.srm.sync(ctx, capture=positions):
            self.window.push(state)
        h = entropy(self.srm.next_logits, self.config.settings.entropy_topk)
        return Signals(entropy=h, ranks=self.window.ranks, loop=self.loop_period())

    def loop_period(self) -> int | None:
        """Period of the verbatim repetition the generated tokens end in, where ``loop_tokens`` asks for it
        (units up to a step long: ``max_step_tokens``)."""
        s = self.config.settings
        if not s.loop_tokens:
            return None
        found = trailing_repeat(self.ctx.ids[self.ctx.prompt_len :], s.loop_tokens, s.max_step_tokens)
        return found[0] if found else None

    def session(self, writer: str) -> Session:
        if writer == "lrm" and self.lrm is None:
            raise RuntimeError(f"policy {self.policy.name!r} chose the LRM but declares uses_lrm = False")
        return self.srm if writer == "srm" else self.lrm

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("run cancelled")

    def write_step(self, decision: Decision, signals: Signals) -> Step:
        s = self.config.settings
        if decision.writer == "srm" and self.policy.needs_srm and not self.policy.reuse_glimpse:
            self.sampler(self.srm.next_logits)  # upstream GlimpRouter: the glimpsed token is thrown away
        cap = min(s.max_step_tokens, self.config.max_tokens - self.ctx.generated)
        start = len(self.ctx)
        if decision.writer == "srm" and self.policy.mentored:
            self.write_mentored(cap)
        else:
            self.session(decision.writer).generate(self.ctx, self.sampler, self.stop, cap)
        ids = self.ctx.ids[start:]
        return self.add_step(decision, signals, ids, self.end_of(ids), start=start)

    # -- SpecReason: score a finished SRM step on a fork of the LRM's cache ----
    def review_step(self, step: Step, view: StepView, signals: Signals) -> Step:
        score = self.lrm_score()
        verdict = self.policy.review(view, score)
        self.count("reviewed")
        step.reason += f"; {verdict.reason}"
        if verdict.keep:
            return step
        self.count("rejected")
        self.retract(step)
        rewrite = self.write_step(Decision(verdict.rewrite, f"rewrite: {verdict.reason}"), signals)
        rewrite.rejected = step.text
        return rewrite

    def lrm_score(self) -> float:
        """The LRM's 0-9 score of the last step from one forward over the scoring question (never kept)."""
        logits = self.lrm.peek(self.ctx, self.engine.scoring_ids)
        p = torch.softmax(logits[self.engine.digit_ids], -1)
        if self.config.settings.score_mode == "greedy":
            return float(p.argmax())
        return float((p * torch.arange(10, dtype=p.dtype, device=p.device)).sum())

    def retract(self, step: Step) -> None:
        """Remove the last step from the context, both caches and the trace."""
        start = len(self.ctx) - len(step.ids)
        self.ctx.truncate(start)
        self.srm.rollback(start)
        self.lrm.rollback(start)
        self.steps.pop()

    # -- MentorCollab: token-by-token SRM writing with probes -------------------
    def write_mentored(self, cap: int) -> None:
        """The SRM writes until a boundary, EOS or ``cap`` tokens; before each token the policy may
        probe, and where the models' greedy tokens differ a verifier picks one model's lookahead."""
        ctx, start = self.ctx, len(self.ctx)
        while len(ctx) - start < cap:
            self.srm.sync(ctx)
            if self.policy.probe(self.engine.starts_word(int(self.srm.next_logits.argmax()))):
                self.count("probes")
                if self.diverges():
                    self.count("divergences")
                    if self.mentor(cap - (len(ctx) - start)):
                        return
                    continue
            tok = self.srm.generate(ctx, self.sampler, self.stop, 1)[0]
            if self.stop(tok):
                return

    def diverges(self) -> bool:
        self.lrm.sync(self.ctx)
        return int(self.srm.next_logits.argmax()) != int(self.lrm.next_logits.argmax())

    def mentor(self, room: int) -> bool:
        """Both models propose a continuation and the verifier keeps one (``follow``: only the LRM proposes,
        and its continuation is kept). True if it ended the step."""
        ctx, base = self.ctx, len(self.ctx)
        n = min(self.config.settings.lookahead, room)
        follow = self.config.settings.verifier == "follow"  # no judge: the SRM's option would always be thrown away
        options = {"srm": []}
        for who in ("lrm",) if follow else ("srm", "lrm"):
            self.session(who).generate(ctx, self.sampler, self.stop, n)
            options[who] = ctx.ids[base:]
            ctx.truncate(base)
        self.divergences.append((list(ctx.ids), options["srm"], options["lrm"]))
        self.srm.rollback(base)
        if follow:
            self.policy.option_order()  # the judges' coin, so that this is a judged run's text until its judge keeps the SRM's
            judged, winner = {}, "lrm"
        else:
            judged = self.judge(options)
            winner = self.policy.pick(judged["p_lrm"])
        self.mentor_log.append({"at": base - ctx.prompt_len, **judged, "picked": winner})
        loser = "srm" if winner == "lrm" else "lrm"
        self.session(loser).rollback(base)
        for t in options[winner]:
            ctx.append(t, winner)
        self.count(f"picked_{winner}")
        return self.stop(options[winner][-1])

    def write_final_answer(self, decision: Decision, signals: Signals) -> Step:
        """Eq. 4 collapse: append the final-answer cue and let the chosen model close the box."""
        cue = self.engine.tokenizer.encode(FINAL_ANSWER_CUE, add_special_tokens=False)
        for t in cue:
            self.ctx.append(t, ENGINE)
        cap = self.config.settings.answer_tokens
        ids = self.session(decision.writer).generate(self.ctx, self.sampler, self.answer_stop, cap)
        return self.add_step(decision, signals, ids, "eos" if self.bounds.is_eos(ids[-1]) else "cap", prefix=FINAL_ANSWER_CUE)

    def end_of(self, ids: list[int]) -> str:
        last = ids[-1]
        if self.bounds.is_eos(last):
            return "eos"
        if self.bounds.is_boundary(last):
            return "boundary"
        return "budget" if self.ctx.generated >= self.config.max_tokens else "cap"

    def judge(self, options: dict[str, list[int]]) -> dict:
        """The verifier's probability that the LRM's option is the better one (asked on forks), as
        ``{"p_lrm": p}``, with a judge's answer in each order it was asked (``lrm_first`` /
        ``srm_first``; ``p_lrm`` is their mean, ``mean_preference``), so that a run's records show how often
        the order decides.

        ``self``: the SRM answers the mentor question; ``lrm``: the LRM does (a costlier judge, the
        reference an MLP trained with ``--labels lrm`` imitates); ``mlp``: the trained MLP on the SRM's
        states at the end of each option."""
        ctx, verifier = self.ctx, self.config.settings.verifier
        if verifier == "mlp":
            v = self.engine.verifier(self.config)
            layer = int(v.meta["layer"])
            feats = np.concatenate([self.srm.peek_state(ctx, options[w], layer) for w in ("srm", "lrm")])
            return {"p_lrm": v.p_lrm(feats)}
        judge = self.srm
        if verifier == "lrm":
            self.lrm.rollback(len(ctx))  # it has fed its own option; the question forks from the shared context
            judge = self.lrm
        first = self.policy.option_order()
        orders = (True, False) if first is None else (first,)
        float32 = self.config.settings.judge_readout == "float32"
        asked = self.engine.option_preferences(judge, ctx, options, orders, float32)
        return {"p_lrm": mean_preference(asked.values()), **asked}

    def add_step(
        self, decision: Decision, signals: Signals, ids: list[int], end: str, prefix: str = "", start: int | None = None
    ) -> Step:
        text = prefix + self.engine.tokenizer.decode(ids, skip_special_tokens=True)
        label = self.engine.labeler.label(text)
        start = len(self.ctx) - len(ids) if start is None else start
        by = self.ctx.writers[start : start + len(ids)]
        tokens = {w: by.count(w) for w in ("srm", "lrm") if w in by}
        writer = next(iter(tokens)) if len(tokens) == 1 else ("mixed" if tokens else decision.writer)
        step = Step(writer, list(ids), text, signals.to_dict(), decision.reason, end, label, tokens)
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
        if self.stats:
            meta["stats"] = dict(self.stats)
        if self.mentor_log:
            meta["mentor"] = self.mentor_log
        warnings = self.policy.warnings(self.window.max_ranks)
        if warnings:
            meta["warnings"] = warnings
        return Trace(
            divergences=self.divergences,
            question=self.question,
            method=self.config.method,
            answer=last_boxed(text),
            text=text,
            prompt_tokens=ctx.prompt_len,
            latency_s=latency,
            config=self.config.model_dump(),
            steps=self.steps,
            usage={"srm": self.srm.usage, "lrm": self.lrm.usage if self.lrm else ModelUsage()},
            finish_reason=finish,
            meta=meta,
        )
