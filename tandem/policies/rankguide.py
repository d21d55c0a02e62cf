"""RankGuide routing (Eq. 4 collapse and Eq. 5 routing).

Before every step:
1. Collapse (Eq. 4): if the last W windows were *all* low rank, the SRM's
   trajectory has collapsed: stop reasoning and write the final answer now
   (the engine appends a final-answer cue and ``collapse_writer`` completes it).
2. Route (Eq. 5): the LRM writes the step if the current window is low rank
   (r1 < tr1 or r2 < tr2) or the step's first-token entropy >= te; otherwise
   the SRM writes it. Before W boundary states exist only entropy decides.

With ``loop_tokens`` set (off by default; not in the paper) a trace whose tokens end in a verbatim
loop counts as collapsed too: a loop inside steps the cap cuts takes no boundary state, so step 1
cannot see it (``tandem.signals.repetition``).
"""

from __future__ import annotations

from tandem.policies.base import Decision, Policy, StepView
from tandem.policies.registry import register


def rank_is_low(ranks: list[int], tr1: int, tr2: int) -> bool:
    """The paper's low-rank test: r1 < T_r1 or r2 < T_r2."""
    return ranks[0] < tr1 or (len(ranks) > 1 and ranks[1] < tr2)


def has_collapsed(rank_history: list[list[int]], window: int, tr1: int, tr2: int) -> bool:
    """Eq. 4: the last ``window`` windows (ranks oldest first) were all low rank."""
    recent = rank_history[-window:]
    return len(recent) == window and all(rank_is_low(r, tr1, tr2) for r in recent)


@register
class RankGuide(Policy):
    name = "rankguide"
    reads = ("te", "tr1", "tr2", "window", "eps", "dims", "layer", "cap_states", "entropy_topk", "collapse_writer",
             "loop_tokens")

    def warnings(self, max_ranks: list[int]) -> list[str]:
        s, out = self.settings, []
        for name, threshold, cap in (("tr1", s.tr1, max_ranks[0]), ("tr2", s.tr2, max_ranks[1] if len(max_ranks) > 1 else None)):
            if cap is not None and threshold > cap:
                out.append(
                    f"{name}={threshold} exceeds the largest possible rank {cap} for window {s.window} and dims "
                    f"{s.dims or 'auto'}: every full window counts as low rank (lower {name} or change dims)"
                )
        return out

    def choose(self, view: StepView) -> Decision:
        s = self.settings
        if has_collapsed(view.rank_history, s.window, s.tr1, s.tr2):
            return Decision(s.collapse_writer, f"collapse: rank low for {s.window} consecutive windows", finish=True)
        sig = view.signals
        if sig.loop is not None:  # only with loop_tokens set: this project's addition, not the paper's
            return Decision(s.collapse_writer, f"collapse: the trace repeats a {sig.loop}-token unit", finish=True)
        if sig.ranks is not None and rank_is_low(sig.ranks, s.tr1, s.tr2):
            return Decision("lrm", f"low rank r1={sig.r1} r2={sig.r2} (tr1 {s.tr1}, tr2 {s.tr2})")
        if sig.entropy is not None and sig.entropy >= s.te:
            return Decision("lrm", f"entropy {sig.entropy:.3f} >= te {s.te}")
        rank_note = "" if sig.ranks is None else f", rank high r1={sig.r1} r2={sig.r2}"
        return Decision("srm", f"entropy {sig.entropy:.3f} < te {s.te}{rank_note}")
