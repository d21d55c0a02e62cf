"""A small OpenAI-compatible completions server on 127.0.0.1 that answers the way vLLM does,
around a real transformers model, so that CI (which has no vLLM) exercises the whole ``ids``
dialect of tandem's remote backend: token-id prompts, ``stop_token_ids``, generated ids as
``"token_id:N"`` log-prob keys, ``finish_reason`` / ``stop_reason``, and the prompt's cached
tokens reported only in a usage chunk after the finishing one (``stream_options``).

It is a test fixture, not a serving stack: greedy decoding only, one request at a time, and its
"prefix cache" is a count (the longest prefix a previous request computed), not a cache. With
``omit_stop`` it also leaves a stop token out of its output and names it in ``stop_reason``, as
vLLM does for special tokens: the one case the real servers in tests/test_remote.py never show.
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
    def __init__(self, model, tokenizer, name: str = "tiny-lrm", omit_stop: bool = False):
        self.hf, self.tokenizer, self.name, self.omit_stop = HFModel(model, tokenizer, name), tokenizer, name, omit_stop
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
                tokens, finish, stop_reason, usage = self._run(body)
                choice = {"index": 0, "text": "".join(self._text(t) for t, *_ in tokens),
                          "logprobs": self._logprobs(tokens, body), "finish_reason": finish, "stop_reason": stop_reason}
                return {"object": "text_completion", "model": self.name, "choices": [choice], "usage": usage}
            return StreamingResponse(self._stream(body), media_type="text/event-stream")

        return app

    def _stream(self, body: dict):
        """One chunk per token (the last one carries the finish), then the usage chunk, then [DONE]."""
        tokens, finish, stop_reason, usage = self._run(body)
        for i, tok in enumerate(tokens):
            last = i == len(tokens) - 1
            choice = {"index": 0, "text": self._text(tok[0]), "logprobs": self._logprobs([tok], body),
                      "finish_reason": finish if last else None, "stop_reason": stop_reason if last else None}
            yield _sse({"object": "text_completion", "model": self.name, "choices": [choice]})
        if not tokens:  # an omitted stop token as the only output: a chunk with the finish alone
            choice = {"index": 0, "text": "", "logprobs": None, "finish_reason": finish, "stop_reason": stop_reason}
            yield _sse({"object": "text_completion", "model": self.name, "choices": [choice]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield _sse({"object": "text_completion", "model": self.name, "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"

    # -- decoding ----------------------------------------------------------------------
    @torch.no_grad()
    def _run(self, body: dict):
        """Greedy decoding: ([(id, logprob, top log-probs)], finish_reason, stop_reason, usage)."""
        prompt, max_tokens = list(body["prompt"]), int(body.get("max_tokens", 16))
        stops = set(body.get("stop_token_ids") or [])
        eos = self.tokenizer.eos_token_id
        k = int(body.get("logprobs") or 0)
        with self.lock:
            cached = min(max((_common(prompt, s) for s in self.seen), default=0), len(prompt) - 1)
            cache = DynamicCache(config=self.hf.config)
            out = self.hf.forward(torch.tensor([prompt]), cache)
            tokens, finish, stop_reason, fed = [], "length", None, list(prompt)
            for _ in range(max_tokens):
                lp = torch.log_softmax(out.logits[0, -1].float(), -1)
                tok = int(lp.argmax())
                top = torch.topk(lp, k) if k else None
                entry = (tok, float(lp[tok]), [] if top is None else list(zip(top.indices.tolist(), top.values.tolist())))
                if tok in stops or tok == eos:
                    finish, stop_reason = "stop", (tok if tok != eos else None)
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
        return tokens, finish, stop_reason, usage

    def _text(self, tok: int) -> str:
        return self.tokenizer.decode([tok])

    def _logprobs(self, tokens, body: dict) -> dict | None:
        """vLLM's completions log-probs with ``return_tokens_as_token_ids``: every token as "token_id:N"."""
        if not body.get("logprobs"):
            return None
        return {"tokens": [f"token_id:{t}" for t, *_ in tokens], "token_logprobs": [lp for _, lp, _ in tokens],
                "top_logprobs": [{f"token_id:{i}": v for i, v in top} for *_, top in tokens]}


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _sse(obj: dict) -> str:
    return f"data: {json.dumps(obj)}\n\n"
