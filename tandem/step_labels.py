"""Step labels: execution, reflection (validation) or transition, from a step's text.

Keyword rules as in SEAL (the defaults are its published keyword lists);
reflection is tested first, then transition, and everything else is
execution. Matching is case-insensitive; "starts with" rules look at the first
word after leading whitespace and Markdown markers. The rules are data (a
``StepLabeler`` can be built from a TOML table), because a different model
family verbalises reflection differently.

The validation step ratio (reflection + transition steps over all steps) is
the paper's measure of how much a model second-guesses itself.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

Label = Literal["execution", "reflection", "transition"]
LABELS: tuple[Label, ...] = ("execution", "reflection", "transition")


class StepLabeler(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reflection: tuple[str, ...] = (
        "verify", "make sure", "hold on", "think again", "'s correct", "'s incorrect", "let me check", "seems right",
    )
    reflection_start: tuple[str, ...] = ("wait",)
    transition: tuple[str, ...] = (
        "think differently", "another way", "another approach", "another method", "another solution",
        "another strategy", "another technique",
    )
    transition_start: tuple[str, ...] = ("alternatively",)

    @classmethod
    def from_file(cls, path: str | Path) -> "StepLabeler":
        """Rules from a TOML file with any of the four keys (others keep their defaults)."""
        p = Path(path)
        try:
            return cls(**tomllib.loads(p.read_text()))
        except FileNotFoundError:
            raise ValueError(f"label rules file not found: {p}") from None
        except (tomllib.TOMLDecodeError, ValidationError) as e:
            raise ValueError(f"{p}: bad label rules: {e}") from None

    def label(self, text: str) -> Label:
        low = text.lower().replace("\u2019", "'")
        first = _first_word(low)
        if first in self.reflection_start or any(k in low for k in self.reflection):
            return "reflection"
        if first in self.transition_start or any(k in low for k in self.transition):
            return "transition"
        return "execution"

    def labels(self, texts: Iterable[str]) -> list[Label]:
        return [self.label(t) for t in texts]


def _first_word(text: str) -> str:
    m = re.match(r"[\s#*>\-_`]*([a-z']+)", text)
    return m.group(1) if m else ""


def validation_ratio(labels: Iterable[str]) -> float | None:
    """(reflection + transition) / all steps; None for no steps."""
    labels = list(labels)
    if not labels:
        return None
    return sum(1 for x in labels if x != "execution") / len(labels)
