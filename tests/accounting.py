"""The handoff-accounting check shared by the unit and end-to-end tests."""


def assert_handoff_accounting(trace) -> None:
    """Each model generated exactly its steps' tokens, and prefilled at most:
    the prompt + the other model's generated tokens + one per step.

    ``trace`` is a Trace or its ``--json`` form (``Trace.to_dict()``), so a CLI run is checked on what it printed."""
    doc = trace if isinstance(trace, dict) else trace.to_dict()
    steps = doc["steps"]
    gen = {w: sum(s["tokens_by"].get(w, 0) for s in steps) for w in ("srm", "lrm")}
    for me, other in (("srm", "lrm"), ("lrm", "srm")):
        u = doc["usage"][me]
        assert u["completion_tokens"] == gen[me]
        if u["prompt_tokens"]:
            assert u["prompt_tokens"] <= doc["prompt_tokens"] + gen[other] + len(steps)
