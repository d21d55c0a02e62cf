"""Registers test-only policies once, for any test module that needs them."""

from tandem.policies import Decision, Policy, register
from tandem.policies.registry import POLICIES

if "test-alternate" not in POLICIES:

    @register
    class Alternate(Policy):
        """Hands every other step to the LRM, so both caches see handoffs."""

        name = "test-alternate"

        def choose(self, view):
            return Decision("lrm" if view.index % 2 else "srm", "alternate")

ensure_alternate = True
