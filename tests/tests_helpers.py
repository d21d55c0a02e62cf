"""Test-only parts several test modules share: a policy that hands every other step to the LRM
(registered once) and a steering vector file for a tiny model."""

import numpy as np

from tandem.policies import Decision, Policy, register
from tandem.policies.registry import POLICIES
from tandem.steering import SteerVectors

if "test-alternate" not in POLICIES:

    @register
    class Alternate(Policy):
        """Hands every other step to the LRM, so both caches see handoffs."""

        name = "test-alternate"

        def choose(self, view):
            return Decision("lrm" if view.index % 2 else "srm", "alternate")

ensure_alternate = True


def vector_file(path, hf, layer=1, scale=3.0, seed=0):
    """A random SEAL vector for ``hf`` (a tiny model) at ``layer``, saved as `tandem calibrate` saves one."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(hf.hidden_size).astype(np.float32) * scale
    meta = {"model": hf.name, "fingerprint": hf.fingerprint, "hidden_size": hf.hidden_size, "layer": layer,
            "counts": {"seal": {"execution_steps": 3, "validation_steps": 2}, "rankguide": {"execution_steps": 3, "validation_steps": 0}}}
    SteerVectors({"seal": v}, meta).save(path)
    return path
