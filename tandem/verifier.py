"""MentorCollab's MLP verifier: which of two continuations should the SRM keep?

Features (this project's design; the paper's training data is not public):
the SRM's capture-layer input at the last token of each option, each fed on a
fork of the SRM's cache after the shared context, concatenated as
``[h(SRM option), h(LRM option)]``. A two-layer MLP maps them to the
probability that the LRM's option is the better one.

Labels (``tandem train-verifier``): on calibration problems MentorCollab runs
with the self verifier, and every divergence is labelled one of two ways.
``rollout``: both options are rolled out to the end by the SRM alone (greedy)
and graded; the LRM's option is better (1) if its rollout is right and the
SRM's is wrong, worse (0) in the reverse case; ties carry no preference and are
dropped. Faithful to the outcome, but costly and sparse: with a weak SRM most
divergences end in a tie (RESULTS.md: 3 labels from 16 divergences).
``lrm``: the LRM is asked the self verifier's question, with the options in
both orders (so its position bias cancels); its mean probability for its own
option, > 0.5 or not, is the label (a mean of exactly 0.5, where the orders
cancel, gives none: ``engine.mean_preference``). Most divergences get one, for two short
forks of the LRM's cache, so the MLP learns to imitate the LRM's judgement
from the SRM's states. The contexts of one problem's divergences are prefixes
of one another, so the LRM prefills each problem's text once.

``fit`` also reports grouped cross-validation (folds by problem): accuracy on
held-out problems against the majority label, and balanced accuracy (0.5 is
chance whatever the class balance). Each problem's labels are saved in
OUT.parts/ as soon as they are made, so ``--resume`` continues an interrupted
run. The file stores the weights, feature standardisation and what produced
them, and is checked against the SRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from tandem.artifacts import Parts, check_made_for, load_artifact, safe_name, save_artifact
from tandem.engine import mean_preference

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


def _train(x: np.ndarray, y: np.ndarray, hidden: int, epochs: int, seed: int) -> Verifier:
    """Standardised features, Adam + weight decay, full batch (the sets are small), classes weighted
    equally (the LRM-better share is far from one half)."""
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
    return Verifier(mlp.eval(), mean.astype(np.float32), std.astype(np.float32), {})


def _predict(v: Verifier, x: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(((x - v.mean) / v.std).astype(np.float32))
    with torch.inference_mode():
        return (v.mlp(xt) > 0).numpy().astype(int)


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in (0, 1) if (y == c).any()]))


def cross_validate(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, hidden: int = 128,
                   epochs: int = 300, seed: int = 0) -> dict | None:
    """Held-out scores, folds by problem (``groups``) so that no problem is both trained and scored on.
    None when there are too few problems or a training fold lacks a class."""
    problems = np.unique(groups)
    if len(problems) < folds:
        return None
    order = np.random.default_rng(seed).permutation(problems)
    pred, majority = np.zeros_like(y), np.zeros_like(y)
    for k in range(folds):
        test = np.isin(groups, order[k::folds])
        if len(set(y[~test].tolist())) < 2:
            return None
        pred[test] = _predict(_train(x[~test], y[~test], hidden, epochs, seed), x[test])
        majority[test] = int(y[~test].mean() > 0.5)
    return {"folds": folds, "accuracy": round(float(np.mean(pred == y)), 4),
            "majority_accuracy": round(float(np.mean(majority == y)), 4),
            "balanced_accuracy": round(_balanced_accuracy(y, pred), 4)}


def fit(x: np.ndarray, y: np.ndarray, meta: dict, hidden: int = 128, epochs: int = 300, seed: int = 0,
        groups: np.ndarray | None = None) -> Verifier:
    """Train on every example; with ``groups`` (the problem of each example) first score held-out
    problems by cross-validation, recorded in the meta as ``cross_validation``."""
    if len(y) == 0 or len(set(y.tolist())) < 2:
        raise VerifierError(f"need divergences labelled both ways to train; got {int(y.sum())} LRM-better and "
                            f"{int(len(y) - y.sum())} SRM-better (raise --limit or probe_rate)")
    cv = cross_validate(x, y, groups, hidden=hidden, epochs=epochs, seed=seed) if groups is not None else None
    v = _train(x, y, hidden, epochs, seed)
    acc = float(np.mean(_predict(v, x) == y))
    v.meta = meta | {"mlp_hidden": hidden, "examples": int(len(y)), "lrm_better": int(y.sum()), "train_accuracy": round(acc, 4),
                     "cross_validation": cv, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return v


LABELS = ("rollout", "lrm")


def check_labels(labels: str) -> None:
    if labels not in LABELS:
        raise VerifierError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")


def collect(engine, problem, config, layer: int, labels: str = "rollout") -> tuple[list[np.ndarray], list[int], int]:
    """Features and labels from one calibration problem: (features, labels, divergences seen)."""
    from tandem.prompt import prompt_ids
    from tandem.steering.calibrate import boundary_states

    check_labels(labels)
    prompt = prompt_ids(engine.tokenizer, problem.question)
    trace = engine.run(prompt, config.model_copy(update={"method": "mentorcollab"}), problem.question)
    judge = _LrmJudge(engine, config.settings.judge_readout == "float32") if labels == "lrm" else None
    xs, ys = [], []
    for context, srm_opt, lrm_opt in trace.divergences:
        options = {"srm": srm_opt, "lrm": lrm_opt}
        if judge is not None:
            p = judge(context, options)
            if p == 0.5:  # the two orders cancel: no preference, no label (engine.mean_preference)
                continue
            y = int(p > 0.5)
        else:
            y = _rollout_label(engine, problem, config, len(prompt), context, options)
            if y is None:
                continue
        ends = [context + options[w] for w in ("srm", "lrm")]
        xs.append(np.concatenate([boundary_states(engine.srm, ids, [len(ids) - 1], layer)[0] for ids in ends]))
        ys.append(y)
    return xs, ys, len(trace.divergences)


def label_problems(engine, problems, out: Path, config, layer: int, labels: str, resume: bool = False,
                   dataset: dict | None = None, on_problem=None, on_resumed=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``collect`` over problems, each saved in OUT.parts/ as soon as it is done (``resume`` skips
    those): (features, labels, problem index of each, divergences seen). ``on_problem(n_seen, ys)``
    after each problem labelled now; ``on_resumed(n_problems, n_seen, ys)`` once, before any, for
    the problems the folder already held (as ``run_eval``'s ``on_resumed``)."""
    check_labels(labels)
    models = {role: {"name": m.name, "fingerprint": getattr(m, "fingerprint", None), "runtime": getattr(m, "runtime", None)}
              for role, m in (("srm", engine.srm), ("lrm", engine.lrm))}
    manifest = {"config": config.model_dump(), "layer": layer, "labels": labels, "models": models, "dataset": dataset}
    parts = Parts(out, VerifierError)
    done = parts.open(manifest, resume)
    d_in = 2 * engine.srm.hidden_size
    xs, ys, groups, seen = [np.zeros((0, d_in), np.float32)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], 0
    loaded = {i: parts.load(p.id) for i, p in enumerate(problems) if safe_name(p.id) in done}
    if on_resumed and loaded:
        on_resumed(len(loaded), sum(int(z["divergences"]) for z in loaded.values()),
                   np.concatenate([np.asarray(z["y"], np.int64) for z in loaded.values()]))
    for i, problem in enumerate(problems):
        if i in loaded:
            z = loaded[i]
            x, y, n = z["x"], z["y"], int(z["divergences"])
        else:
            xl, yl, n = collect(engine, problem, config, layer, labels)
            x = np.stack(xl).astype(np.float32) if xl else np.zeros((0, d_in), np.float32)
            y = np.array(yl, dtype=np.int64)
            parts.save(problem.id, x=x, y=y, divergences=n)
        xs.append(x)
        ys.append(y)
        groups.append(np.full(len(y), i))
        seen += n
        if on_problem and i not in loaded:
            on_problem(n, y)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups), seen


def _rollout_label(engine, problem, config, prompt_len: int, context: list[int], options: dict) -> int | None:
    """1 if only the LRM option's SRM rollout is right, 0 if only the SRM's is, None for a tie."""
    from tandem.eval.grading import grade

    right = {}
    for who, opt in options.items():
        ids = context + opt
        room = max(1, config.max_tokens - (len(ids) - prompt_len))
        rollout = engine.run(ids, config.model_copy(update={"method": "srm", "max_tokens": room}))
        text = engine.tokenizer.decode(ids[prompt_len:], skip_special_tokens=True) + rollout.text
        right[who] = grade(problem, text)[1]
    return None if right["srm"] == right["lrm"] else int(right["lrm"])


class _LrmJudge:
    """The LRM's mean probability, over both option orders, that its own option is the better one.
    One LRM session per problem, rolled back only to where the next divergence's context parts from
    what it has fed (nowhere, within one MentorCollab trace)."""

    def __init__(self, engine, float32: bool = False):
        self.engine = engine
        self.float32 = float32  # judge_readout
        self.session = engine.lrm.session("lrm")
        self.fed: list[int] = []

    def __call__(self, context: list[int], options: dict[str, list[int]]) -> float:
        return mean_preference(self.preferences(context, options))

    def preferences(self, context: list[int], options: dict[str, list[int]]) -> list[float]:
        """The LRM's probability for its own option, shown first and shown second."""
        from tandem.backends.base import Context

        common = next((i for i, (a, b) in enumerate(zip(self.fed, context)) if a != b), min(len(self.fed), len(context)))
        self.session.rollback(common)
        self.fed = list(context)
        ctx = Context.from_prompt(context)  # who wrote which token matters only to usage, not reported here
        return list(self.engine.option_preferences(self.session, ctx, options, (True, False), self.float32).values())
