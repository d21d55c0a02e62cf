"""A small OpenAI-compatible completions server on 127.0.0.1 that answers the way vLLM does,
around a real transformers model, so that CI (which has no vLLM) exercises the whole ``ids``
dialect of tandem's remote backend: token-id prompts, ``stop_token_ids``, generated ids as
``"token_id:N"`` log-prob keys, ``finish_reason`` / ``stop_reason``, and the prompt's cached
tokens reported only in a usage chunk after the finishing one (``stream_options``).

It is a test fixture, not a serving stack: greedy decoding only, one request at a time, and its
"prefix cache" is a count (the longest prefix a previous request computed), not a cache. With
``omit_stop`` it also leaves a stop token out of its output and names it in ``stop_reason``, as
vLLM does for special tokens: the one case the real servers in tests/test_remote.py never show.

``flavour="sglang"`` answers as SGLang's OpenAI-compatible server does instead (its
``serving_completions.py`` and ``protocol.py``): log-probs name tokens by their text only, the
generated ids come in ``choices[].token_ids`` when the request sets ``return_token_ids``, the
stop token stays in the output and is named in ``matched_stop`` (the end-of-text id too). With
``abort_once`` its first streamed step ends early with ``finish_reason: "abort"``, as SGLang ends
a request it aborts gracefully.
"""

from __future__ import annotations

import json
import threading
import time

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from transformers import DynamicCache

from servers import free_port
from tandem.backends.hf import HFModel


class IdsServer:
    def __init__(self, model, tokenizer, name: str = "tiny-lrm", omit_stop: bool = False, flavour: str = "vllm",
                 abort_once: bool = False):
        assert flavour in ("vllm", "sglang") and not (omit_stop and flavour == "sglang")
        self.hf, self.tokenizer, self.name, self.omit_stop = HFModel(model, tokenizer, name), tokenizer, name, omit_stop
        self.flavour, self.abort_once = flavour, abort_once
        self.seen: list[list[int]] = []  # every sequence a request computed, for the cached count
        self.totals = {"prompt_tokens": 0, "cached_tokens": 0, "requests": 0, "stopped": 0}
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    # -- the API ---------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        def models():
            return {"object": "list", "data": [{"id": self.name, "object": "model"}]}

        @app.post("/v1/completions")
        def completions(body: dict):
            prompt = body.get("prompt")
            if not (isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt)):
                raise HTTPException(400, "this server takes token-id prompts only")
            if float(body.get("temperature", 1.0)) != 0.0:
                raise HTTPException(400, "this server decodes greedily only (temperature 0)")
            if not body.get("stream"):
                tokens, finish, stopped, usage = self._run(body)
                choice = self._choice(tokens, body, finish, stopped)
                return {"object": "text_completion", "model": self.name, "choices": [choice], "usage": usage}
            return StreamingResponse(self._stream(body), media_type="text/event-stream")

        return app

    def _stream(self, body: dict):
        """One chunk per token (the last one carries the finish), then the usage chunk, then [DONE]."""
        tokens, finish, stopped, usage = self._run(body)
        if self.abort_once and len(tokens) > 1:
            self.abort_once = False
            tokens, finish, stopped = tokens[:1], "abort", None  # one token, then the abort
        for i, tok in enumerate(tokens):
            last = i == len(tokens) - 1
            yield _sse({"object": "text_completion", "model": self.name,
                        "choices": [self._choice([tok], body, finish if last else None, stopped if last else None)]})
        if not tokens:  # an omitted stop token as the only output: a chunk with the finish alone
            yield _sse({"object": "text_completion", "model": self.name, "choices": [self._choice([], body, finish, stopped)]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield _sse({"object": "text_completion", "model": self.name, "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"

    # -- decoding ----------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, body: dict):
        """Greedy decoding: ([(id, logprob, top log-probs)], finish_reason, the stop or end-of-text id
        that ended it (None at the length limit), usage)."""
        prompt, max_tokens = list(body["prompt"]), int(body.get("max_tokens", 16))
        stops = set(body.get("stop_token_ids") or [])
        eos = self.tokenizer.eos_token_id
        k = int(body.get("logprobs") or 0)
        with self.lock:
            cached = min(max((_common(prompt, s) for s in self.seen), default=0), len(prompt) - 1)
            cache = DynamicCache(config=self.hf.config)
            out = self.hf.forward(torch.tensor([prompt]), cache)
            tokens, finish, stopped, fed = [], "length", None, list(prompt)
            for _ in range(max_tokens):
                lp = torch.log_softmax(out.logits[0, -1].float(), -1)
                tok = int(lp.argmax())
                top = torch.topk(lp, k) if k else None
                entry = (tok, float(lp[tok]), [] if top is None else list(zip(top.indices.tolist(), top.values.tolist())))
                if tok in stops or tok == eos:
                    finish, stopped = "stop", tok
                    if not self.omit_stop:
                        tokens.append(entry)
                    break
                tokens.append(entry)
                if len(tokens) < max_tokens:
                    fed.append(tok)
                    out = self.hf.forward(torch.tensor([[tok]]), cache)
            self.seen.append(fed)
            self.totals["prompt_tokens"] += len(prompt)
            self.totals["cached_tokens"] += cached
            self.totals["requests"] += 1
            self.totals["stopped"] += finish == "stop" and max_tokens > 1  # a step, not a one-token probe
        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(tokens), "total_tokens": len(prompt) + len(tokens),
                 "prompt_tokens_details": {"cached_tokens": cached}}
        return tokens, finish, stopped, usage

    def _choice(self, tokens, body: dict, finish: str | None, stopped: int | None) -> dict:
        """One choice as the flavour's server writes it: vLLM names a stop id (not the end of text) in
        ``stop_reason``; SGLang names either in ``matched_stop`` and lists the ids only when asked."""
        choice = {"index": 0, "text": "".join(self._text(t) for t, *_ in tokens), "finish_reason": finish}
        if self.flavour == "vllm":
            choice["logprobs"] = self._logprobs(tokens, body, lambda t: f"token_id:{t}")
            choice["stop_reason"] = stopped if stopped != self.tokenizer.eos_token_id else None
        else:
            choice["logprobs"] = self._logprobs(tokens, body, self._text)
            choice["matched_stop"] = stopped
            if body.get("return_token_ids"):
                choice["token_ids"] = [t for t, *_ in tokens]
        return choice

    def _text(self, tok: int) -> str:
        return self.tokenizer.decode([tok])

    def _logprobs(self, tokens, body: dict, key) -> dict | None:
        """Completions log-probs with every token named by ``key(id)``: vLLM with
        ``return_tokens_as_token_ids`` writes "token_id:N", SGLang the token's text."""
        if not body.get("logprobs") or not tokens:
            return None
        return {"tokens": [key(t) for t, *_ in tokens], "token_logprobs": [lp for _, lp, _ in tokens],
                "top_logprobs": [{key(i): v for i, v in top} for *_, top in tokens]}


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"
