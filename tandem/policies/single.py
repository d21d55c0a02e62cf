"""Baselines where one model writes everything: ``srm`` and ``lrm``.

``srm`` still computes the per-step signals (they come free from the SRM's own
forwards) so SRM-only traces can be analysed, and never opens the LRM (so an
in-process LRM is not even loaded); ``lrm`` never runs the SRM.
"""

from tandem.policies.base import Decision, Policy, StepView
from tandem.policies.registry import register


@register
class SRMOnly(Policy):
    name = "srm"
    uses_lrm = False

    def choose(self, view: StepView) -> Decision:
        return Decision("srm", "srm only")


@register
class LRMOnly(Policy):
    name = "lrm"
    needs_srm = False

    def choose(self, view: StepView) -> Decision:
        return Decision("lrm", "lrm only")
