"""MentorCollab: the LRM mentors the SRM sparsely, at randomly probed positions.

The SRM writes every step token by token. Before a token, with probability
``probe_rate`` (per token, or per word with ``probe_unit=word``: only where the
SRM's next token starts a word), the engine compares both models' greedy next
tokens. Where they differ, each model proposes a ``lookahead``-token
continuation and a verifier picks one; the other is rolled back. The
``self`` verifier is the SRM itself, shown both options on a fork of its cache
and asked which leads to the correct answer; its probability of the LRM's
option label decides (> 0.5: the LRM's continuation is kept); ``lrm`` asks the
LRM the same question instead, and ``mlp`` a trained MLP (tandem/verifier.py).
``follow`` asks no one: the LRM's continuation is always kept and the SRM does
not write one (the ablation that measures what judging adds, and its cost).
Which option is shown first is drawn from the same seeded generator, so position bias cannot
favour one model and a fixed ``--seed`` reproduces the run exactly; with
``option_orders=both`` the judge is asked in both orders and the two answers
averaged (how ``tandem train-verifier --labels lrm`` labels), so its bias
cancels within each question instead of on average.
"""

import random

from tandem.policies.base import Decision, Policy, StepView, Writer
from tandem.policies.registry import register


@register
class MentorCollab(Policy):
    name = "mentorcollab"
    reads = (  # seed_scope: where the probes fall
        "probe_rate", "probe_unit", "lookahead", "verifier", "option_orders", "judge_readout", "seed_scope",
    )
    mentored = True

    def __init__(self, settings, seed: int = 0):
        super().__init__(settings, seed)
        self.rng = random.Random(seed)

    def choose(self, view: StepView) -> Decision:
        return Decision("srm", "SRM writes, LRM mentors at probes")

    def probe(self, word_start: bool) -> bool:
        if self.settings.probe_unit == "word" and not word_start:
            return False
        return self.rng.random() < self.settings.probe_rate

    def option_order(self) -> bool | None:
        lrm_first = self.rng.random() < 0.5  # drawn in both modes, so that their probes fall alike
        return None if self.settings.option_orders == "both" else lrm_first

    def pick(self, p_lrm: float) -> Writer:
        return "lrm" if p_lrm > 0.5 else "srm"
