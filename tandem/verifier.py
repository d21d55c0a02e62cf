"""MentorCollab's MLP verifier: which of two continuations should the SRM keep?

Features (this project's design; the paper's training data is not public):
the SRM's capture-layer input at the last token of each option, each fed on a
fork of the SRM's cache after the shared context, concatenated as
``[h(SRM option), h(LRM option)]``. A two-layer MLP maps them to the
probability that the LRM's option is the better one.

Labels (``tandem train-verifier``): on calibration problems MentorCollab runs
with the self verifier; at every divergence both options are rolled out to the
end by the SRM alone (greedy) and graded. The LRM's option is labelled better
(1) if its rollout is right and the SRM's is wrong, worse (0) in the reverse
case; ties carry no preference and are dropped. The file stores the weights,
feature standardisation and what produced them, and is checked against the SRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from tandem.artifacts import check_made_for, load_artifact, save_artifact

FORMAT = "tandem-verifier/1"


class VerifierError(ValueError):
    pass


class MLP(torch.nn.Module):
    def __init__(self, d_in: int, hidden: int = 128):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@dataclass
class Verifier:
    mlp: MLP
    mean: np.ndarray
    std: np.ndarray
    meta: dict

    def p_lrm(self, features: np.ndarray) -> float:
        x = torch.from_numpy(((features - self.mean) / self.std).astype(np.float32))
        with torch.inference_mode():
            return float(torch.sigmoid(self.mlp(x[None]))[0])

    def save(self, path: str | Path) -> None:
        save_artifact(path, FORMAT, {"state": self.mlp.state_dict(), "mean": torch.from_numpy(self.mean),
                                     "std": torch.from_numpy(self.std), "meta": self.meta})

    @classmethod
    def load(cls, path: str | Path) -> "Verifier":
        data = load_artifact(path, FORMAT, "verifier", "tandem train-verifier", VerifierError)
        meta = data["meta"]
        mlp = MLP(2 * meta["hidden_size"], meta["mlp_hidden"])
        mlp.load_state_dict(data["state"])
        return cls(mlp.eval(), data["mean"].numpy(), data["std"].numpy(), meta)

    def check(self, hf, source: str = "") -> None:
        check_made_for(self.meta, hf, f"verifier {source}", VerifierError)


def fit(x: np.ndarray, y: np.ndarray, meta: dict, hidden: int = 128, epochs: int = 300, seed: int = 0) -> Verifier:
    """Train on standardised features with Adam + weight decay (full batch: the sets are small)."""
    if len(y) == 0 or len(set(y.tolist())) < 2:
        raise VerifierError(f"need divergences labelled both ways to train; got {int(y.sum())} LRM-better and "
                            f"{int(len(y) - y.sum())} SRM-better (raise --limit or probe_rate)")
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.float32))
    mlp = MLP(x.shape[1], hidden)
    opt = torch.optim.AdamW(mlp.parameters(), lr=1e-3, weight_decay=1e-2)
    pos = float(yt.mean())
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / max(pos, 1e-6)))
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(mlp(xt), yt)
        loss.backward()
        opt.step()
    with torch.inference_mode():
        acc = float(((mlp(xt) > 0).float() == yt).float().mean())
    meta = meta | {"mlp_hidden": hidden, "examples": int(len(y)), "lrm_better": int(y.sum()), "train_accuracy": round(acc, 4),
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return Verifier(mlp.eval(), mean.astype(np.float32), std.astype(np.float32), meta)


def collect(engine, problem, config, layer: int) -> tuple[list[np.ndarray], list[int], int]:
    """Features and labels from one calibration problem: (features, labels, divergences seen)."""
    from tandem.eval.grading import grade
    from tandem.prompt import prompt_ids
    from tandem.steering.calibrate import boundary_states

    prompt = prompt_ids(engine.tokenizer, problem.question)
    trace = engine.run(prompt, config.model_copy(update={"method": "mentorcollab"}), problem.question)
    xs, ys = [], []
    for context, srm_opt, lrm_opt in trace.divergences:
        outcome, feats = {}, []
        for who, opt in (("srm", srm_opt), ("lrm", lrm_opt)):
            ids = context + opt
            feats.append(boundary_states(engine.srm, ids, [len(ids) - 1], layer)[0])
            room = max(1, config.max_tokens - (len(ids) - len(prompt)))
            rollout = engine.run(ids, config.model_copy(update={"method": "srm", "max_tokens": room}))
            text = engine.tokenizer.decode(ids[len(prompt):], skip_special_tokens=True) + rollout.text
            outcome[who] = grade(problem, text)[1]
        if outcome["srm"] != outcome["lrm"]:
            xs.append(np.concatenate(feats))
            ys.append(int(outcome["lrm"]))
    return xs, ys, len(trace.divergences)
