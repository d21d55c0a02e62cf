"""Routing policies, one file per method, looked up by their command-line name.

A new method is one file with one ``Policy`` subclass, registered with
``@register`` (or ``register(cls)``) under its ``name``.
"""

from tandem.policies.base import Decision, Policy, Review, Signals, StepView
from tandem.policies.registry import POLICIES, get_policy, register

# importing the modules registers the built-in methods
from tandem.policies import glimprouter, mentorcollab, rankguide, single, specreason  # noqa: E402,F401
from tandem.policies.rankguide import rank_is_low  # noqa: E402

__all__ = ["POLICIES", "Decision", "Policy", "Review", "Signals", "StepView", "get_policy", "rank_is_low", "register"]
