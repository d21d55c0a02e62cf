"""Request bodies (OpenAI's fields plus tandem's extensions), validated with pydantic.

Unknown OpenAI fields (``n``, ``logprobs``, ``user``, ...) are accepted and
ignored, as vLLM does; tandem's own fields are ``method``, ``settings`` and
``steer``, sent by OpenAI clients through ``extra_body``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class TandemFields(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "tandem"
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    method: str | None = None
    settings: dict = Field(default_factory=dict)
    steer: str | None = None

    @property
    def budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ChatRequest(TandemFields):
    messages: list[Message] = Field(..., min_length=1)

    @field_validator("messages")
    @classmethod
    def _has_user(cls, v: list[Message]) -> list[Message]:
        if not any(m.role == "user" and m.content.strip() for m in v):
            raise ValueError("messages need at least one non-empty user message")
        return v

    @property
    def question(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role == "user" and m.content.strip())


class CompletionRequest(TandemFields):
    prompt: str = Field(..., min_length=1)

    @property
    def question(self) -> str:
        return self.prompt
