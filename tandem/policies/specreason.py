"""SpecReason: the SRM drafts each step, the LRM scores it, a low score hands the step to the LRM.

After every SRM step the engine appends a scoring question on a fork of the
LRM's cache (the question never enters the reasoning), reads the LRM's
distribution over the digits 0-9 from one forward, and calls ``review``. The
score is the most likely digit (``score_mode=greedy``) or the expected digit
(``expectation``). At or above ``accept`` the step stays; otherwise the engine
rolls it back in both caches and the LRM writes that step.
"""

from tandem.policies.base import Decision, Policy, Review, StepView
from tandem.policies.registry import register


@register
class SpecReason(Policy):
    name = "specreason"
    reads = ("accept", "score_mode")
    reviews = True

    def choose(self, view: StepView) -> Decision:
        return Decision("srm", "SRM drafts, LRM scores")

    def review(self, view: StepView, score: float) -> Review:
        a = self.settings.accept
        if score >= a:
            return Review(True, f"LRM score {score:.2f} >= accept {a:g}")
        return Review(False, f"LRM score {score:.2f} < accept {a:g}: LRM rewrites the step")
