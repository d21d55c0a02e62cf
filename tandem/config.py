"""Run settings as plain, validated data.

One flat ``Settings`` model holds every knob a policy or the engine reads, so
``--set NAME=VALUE``, a TOML config file and the JSON written next to results
all speak the same names. Unknown names are refused with the list of known ones.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """Bad settings or config file; the message says what to fix."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # routing thresholds (RankGuide Eq. 5, GlimpRouter)
    te: float = Field(0.9, description="entropy threshold: at or above it the LRM writes the step")
    tr1: int = Field(7, description="rank threshold on r1 (reasoning-step rank); below it counts as low rank")
    tr2: int = Field(60, description="rank threshold on r2 (hidden-feature rank); below it counts as low rank")
    # signals
    window: int = Field(10, ge=2, description="W: boundary states per TT window, and windows for collapse")
    eps: float = Field(0.1, gt=0, lt=1, description="relative TT reconstruction error bound")
    layer: int | None = Field(None, description="SRM decoder layer whose input is captured (default: middle)")
    dims: str | None = Field(None, description="reshape of d_hid, e.g. 16x14x4 (default: closest to the paper's 16x16)")
    entropy_topk: int = Field(0, ge=0, description="0: full-vocabulary entropy; k: top-k renormalised (GlimpRouter code uses 20)")
    delimiter: str = Field("\n\n", description="a token whose text contains this ends a step")
    cap_states: bool = Field(
        False,
        description="also capture the SRM's state at the last token of a step that max_step_tokens cut, so a trace "
        "that loops without writing the delimiter still moves the rank window; off: states at delimiter tokens "
        "only (the paper)",
    )
    loop_tokens: int = Field(
        0,
        ge=0,
        description="RankGuide: treat a trace whose generated tokens end in one unit repeated at least three times, "
        "this many tokens or more in all, as collapsed (the final answer now, as Eq. 4). It sees the loops inside "
        "steps the cap cuts, where no boundary state is taken; 0: off (the paper)",
    )
    # steering (with RunConfig.steer: a vector file from `tandem calibrate`)
    alpha: float = Field(1.0, description="steering strength: alpha * v is added at boundary positions")
    steer_kind: Literal["rankguide", "seal"] = Field("rankguide", description="which vector of the steering file")
    # SpecReason
    accept: float = Field(7.0, ge=0, le=9, description="SpecReason: keep an SRM step whose LRM score (0-9) is at least this")
    score_mode: Literal["greedy", "expectation"] = Field("greedy", description="SpecReason: most likely digit or expected digit")
    # MentorCollab
    probe_rate: float = Field(0.05, ge=0, le=1, description="MentorCollab: probability of probing before a token (or word)")
    probe_unit: Literal["token", "word"] = Field("token", description="MentorCollab: probe per token, or only at word starts")
    lookahead: int = Field(16, ge=1, description="MentorCollab: tokens each model proposes at a divergence")
    verifier: Literal["self", "lrm", "mlp", "follow"] = Field(
        "self", description="MentorCollab: the SRM itself, the LRM as judge, the MLP of RunConfig.verifier_file, or "
        "follow: no judge, the LRM's lookahead is always kept (the ablation that says what judging adds)",
    )
    option_orders: Literal["one", "both"] = Field(
        "one",
        description="MentorCollab self/lrm verifier: ask with the options in one seeded random order (the paper), or "
        "in both orders and average the two answers (the judge's position bias cancels; twice the questions). "
        "No effect on the mlp and follow verifiers",
    )
    judge_readout: Literal["logits", "float32"] = Field(
        "logits",
        description="MentorCollab self/lrm verifier: read the two option labels from the judge's logits as its "
        "model computes them (a bfloat16 model rounds a logit near 20 to steps of 0.125, so the two orders often "
        "see one gap and cancel: a tie, kept for the SRM), or compute those two logits in float32 from the final "
        "hidden state (in-process models; the same numbers for a float32 model, and for llama.cpp, whose logits "
        "are float32 already)",
    )
    # behaviour
    glimpse: Literal["reuse", "discard"] = Field("reuse", description="GlimpRouter: keep the glimpsed token or redraw it (upstream)")
    collapse_writer: Literal["srm", "lrm"] = Field("srm", description="RankGuide Eq. 4: who writes the final answer after a collapse")
    answer_tokens: int = Field(48, ge=1, description="token cap for a forced final answer")
    max_step_tokens: int = Field(256, ge=1, description="a step longer than this is cut")
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    seed_scope: Literal["problem", "run"] = Field(
        "problem",
        description="problem: each problem's random draws (sampling, MentorCollab's probes) are seeded from the seed "
        "and its prompt; run: every problem starts from the seed itself, so all draw the same sequence (tandem "
        "before 2026-11-24, and every file written then)",
    )

    @field_validator("delimiter")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v:
            raise ValueError("delimiter must not be empty")
        return v.encode().decode("unicode_escape") if "\\" in v else v


class RunConfig(BaseModel):
    """Everything that determines a run's output, written next to every result."""

    model_config = ConfigDict(extra="forbid")

    method: str = "rankguide"
    seed: int = 0
    max_tokens: int = Field(1024, ge=1, description="total generated tokens (both models) per problem")
    srm: str = "embedded"
    lrm: str = "embedded"
    lrm_backend: Literal["hf", "llamacpp", "remote"] = Field(
        "hf", description="LRM in transformers, in-process llama.cpp (GGUF), or on a server (an http(s) --lrm URL)"
    )
    steer: str | None = Field(None, description="steering vector file (tandem calibrate); None: no steering")
    verifier_file: str | None = Field(None, description="MentorCollab MLP verifier (tandem train-verifier)")
    settings: Settings = Field(default_factory=Settings)

    @model_validator(mode="after")
    def _remote_lrm(self) -> "RunConfig":
        """An http(s) LRM is a server: the backend follows from the URL."""
        is_url = self.lrm.startswith(("http://", "https://"))
        if is_url:
            self.lrm_backend = "remote"
        elif self.lrm_backend == "remote":
            raise ValueError(f"lrm_backend remote needs an http(s) URL as --lrm, got {self.lrm!r}")
        s = self.settings
        lrm_judges = self.method == "mentorcollab" and s.verifier == "lrm"
        if lrm_judges and self.lrm_backend == "remote" and s.judge_readout == "float32":
            raise ValueError(
                "judge_readout float32 needs an in-process judge: a remote LRM's log-probs are what its server sends"
            )
        return self


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value
    return out


def load_config_file(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return data


def build_config(file: str | Path | None = None, assignments: list[str] = (), **overrides) -> RunConfig:
    """Config file < command-line options < --set, validated together."""
    data: dict = load_config_file(file) if file else {}
    settings = dict(data.pop("settings", {}) or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    settings.update(parse_assignments(list(assignments)))
    return make_config(data, settings)


def make_config(data: dict, settings: dict) -> RunConfig:
    """Validate run keys and settings together; errors name the bad key and list the known ones."""
    try:
        valid_settings = Settings(**settings)
    except ValidationError as e:
        raise ConfigError(_explain(e, Settings, "setting")) from None
    try:
        return RunConfig(**data, settings=valid_settings)
    except ValidationError as e:
        raise ConfigError(_explain(e, RunConfig, "config key")) from None


def _explain(e: ValidationError, model: type[BaseModel], what: str) -> str:
    lines = []
    for err in e.errors():
        where = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown {what} {where!r}; known: {', '.join(model.model_fields)}")
        else:
            lines.append(f"{what} {where}: {err['msg']}")
    return "; ".join(lines)
