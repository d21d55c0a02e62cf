"""GlimpRouter: glimpse the SRM's first token of each step; uncertain steps go to the LRM.

The entropy is of the SRM's distribution for the step's first token, which the
engine already has after feeding the previous boundary token. Upstream draws
that token in a separate request and throws it away; here it is reused by
default (``glimpse=reuse``): the SRM's step begins with it. ``glimpse=discard``
redraws it, which only differs under sampling.
"""

from tandem.policies.base import Decision, Policy, StepView
from tandem.policies.registry import register


@register
class GlimpRouter(Policy):
    name = "glimprouter"
    reads = ("te", "entropy_topk", "glimpse")

    def __init__(self, settings, seed: int = 0):
        super().__init__(settings, seed)
        self.reuse_glimpse = settings.glimpse == "reuse"

    def choose(self, view: StepView) -> Decision:
        h = view.signals.entropy
        if h is not None and h >= self.settings.te:
            return Decision("lrm", f"entropy {h:.3f} >= te {self.settings.te}")
        return Decision("srm", f"entropy {h:.3f} < te {self.settings.te}")
