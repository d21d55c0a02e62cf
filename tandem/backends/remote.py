"""The LRM on an OpenAI-compatible completions server (vLLM, SGLang, llama.cpp's
``llama-server``, llama-cpp-python's ``llama_cpp.server``).

At the papers' scale the LRM is a 32B model served on GPUs; tandem talks to that
server over ``POST {url}/completions`` instead of loading the model. The LRM
needs no hidden states and no steering, only tokens and (for SpecReason and
MentorCollab) next-token log-probabilities, so a ``RemoteSession`` has the same
contract as the in-process sessions.

Two dialects, detected once when the model is opened:

* ``ids``: the server takes the prompt as token ids and says which ids it
  generated (vLLM with ``return_tokens_as_token_ids``, ``llama-server`` with
  ``logprobs.content[].id``, SGLang with ``return_token_ids``: ``choices[].token_ids``).
  Nothing is converted: the engine's token ids go out and come back exactly.
* ``text``: the server takes text only (llama-cpp-python). The context is
  decoded, the reply re-encoded with the shared tokenizer. This is the one place
  tandem crosses text, so it is checked: on open, the server must tokenize a
  probe to the same ids as ours; per request, a context whose text would not
  encode back to its own ids is counted (``usage.remote.text_mismatches``).

The server's prefix cache does the incremental work: each request carries the
whole context, and the server recomputes only the suffix it has not cached.
Where the server says how much it recomputed (llama-server ``timings.prompt_n``,
vLLM and SGLang ``prompt_tokens_details.cached_tokens``, the latter only when started
with ``--enable-cache-report``) it is summed in
``usage.remote.recomputed_tokens`` over the ``reported_requests`` that said it;
if none did that field stays ``None``.

Generation streams and closes the stream at the first token the engine's stop
rule accepts (a step boundary), so the server stops within a token of where an
in-process model would. In the ids dialect the stop rule's ids also go out as
``stop_token_ids``: vLLM then ends the request at the boundary itself and sends
its closing usage chunk (the only one with ``cached_tokens``), which is read
before the stream is closed (SGLang does the same). Errors are retried with exponential
backoff (connection failures, timeouts, 429 and 5xx, a stream cut before its end, a request
the server aborts); when the tries run out the problem fails with a ``RemoteError`` naming
the server. A broken stream is never taken as end of text: its tokens are dropped and the
request is made again from the same context.

Written by hand because it is tandem's own protocol logic (stop at a token-id
boundary over SSE, dialect detection, the tokenization check); HTTP is httpx.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import httpx
import numpy as np
import torch

from tandem.backends.base import Context, SessionBase

PROBE = "Step 1: 12 + 30 = 42.\n\nSo the answer is \\boxed{42}.<|im_end|>\n½ × π ≈ 1.57"
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class RemoteError(RuntimeError):
    """The LRM server failed in a way retrying did not fix (or could not fix)."""


class _Transient(Exception):
    """A failure worth another try (the server may come back)."""


@dataclass
class RemoteOptions:
    timeout: float = 600.0  # seconds to wait for a response (a whole step may take long on a busy server)
    connect_timeout: float = 5.0
    retries: int = 4  # tries after the first
    backoff: float = 0.5  # first wait; doubles each try
    top_logprobs: int = 20  # alternatives asked for when the engine needs next-token logits


class RemoteModel:
    """An OpenAI-compatible completions server, opened once and shared by all sessions (thread-safe)."""

    def __init__(self, url: str, tokenizer, name: str | None = None, options: RemoteOptions | None = None):
        self.opts = options or RemoteOptions()
        url, _, model = url.partition("#")
        self.url = url.rstrip("/")
        self.root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url
        self.http = httpx.Client(timeout=httpx.Timeout(self.opts.timeout, connect=self.opts.connect_timeout))
        self.model = self._pick_model(model)
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.name = name or f"{self.model} @ {self.url}"
        self.source = self.url
        self.fingerprint = {"kind": "remote", "value": self.model}
        self.runtime = {"device": "remote", "dtype": "server"}  # precision is the server's, not known here
        self.eos_id = tokenizer.eos_token_id
        self._pieces: dict[str, int] | None = None
        self._pieces_lock = threading.Lock()
        self.dialect = self._detect_dialect()
        if self.dialect == "text":
            self._check_tokenizer()

    # -- opening: fail fast, find out what the server speaks --------------------
    def _pick_model(self, wanted: str) -> str:
        """The served model: ``URL#name`` picks one, else the server must serve exactly one.
        One try, short timeout: a wrong URL fails at once."""
        try:
            r = self.http.get(f"{self.url}/models", timeout=self.opts.connect_timeout * 2)
        except httpx.HTTPError as e:
            raise RemoteError(f"cannot reach the LRM server at {self.url}: {_describe(e)}") from None
        if r.status_code != 200:
            raise RemoteError(f"{self.url}/models answered HTTP {r.status_code}; is {self.url} an OpenAI-compatible /v1 URL?")
        try:
            served = [m["id"] for m in r.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise RemoteError(f"{self.url}/models did not return an OpenAI model list") from None
        if wanted:
            if wanted not in served:
                raise RemoteError(f"{self.url} does not serve {wanted!r}; it serves {served}")
            return wanted
        if len(served) != 1:
            raise RemoteError(f"{self.url} serves {len(served)} models {served}; pick one with URL#MODEL")
        return served[0]

    def _detect_dialect(self) -> str:
        """``ids`` if the server takes a token-id prompt and reports generated ids, else ``text``."""
        probe = self.tokenizer.encode("Q: 1 + 1 =", add_special_tokens=False)
        payload = self._payload(probe, max_tokens=1, logprobs=1, dialect="ids")
        try:
            r = self.http.post(f"{self.url}/completions", json=payload)
        except httpx.HTTPError as e:
            raise RemoteError(f"LRM server {self.url}: {_describe(e)}") from None
        if r.status_code == 200 and _generated_ids(r.json()["choices"][0]) is not None:
            return "ids"
        return "text"  # refused an id prompt (llama-cpp-python: HTTP 422) or reported no ids

    def _check_tokenizer(self) -> None:
        """A text server must turn text into the ids we would: compare on a probe."""
        ours = self.tokenizer.encode(PROBE, add_special_tokens=False)
        for path, body in (("/extras/tokenize", {"input": PROBE}), ("/tokenize", {"model": self.model, "prompt": PROBE, "add_special_tokens": False}),
                           ("/tokenize", {"content": PROBE})):
            try:
                r = self.http.post(f"{self.root}{path}", json=body)
            except httpx.HTTPError:
                continue
            if r.status_code == 200 and isinstance(r.json().get("tokens"), list):
                theirs = r.json()["tokens"]
                if theirs != ours:
                    raise RemoteError(
                        f"LRM server {self.url} tokenizes text differently from the SRM's tokenizer "
                        f"({len(theirs)} vs {len(ours)} ids on a probe); the pair cannot share token ids"
                    )
                return
        raise RemoteError(
            f"LRM server {self.url} takes only text prompts and has no tokenize endpoint to check its "
            "tokenizer against the SRM's; use a server that accepts token ids (vLLM, SGLang, llama-server)"
        )

    # -- one request ---------------------------------------------------------------
    def _payload(self, ids: list[int], max_tokens: int, logprobs: int = 0, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, stream: bool = False, dialect: str | None = None,
                 stop_ids=None) -> dict:
        dialect = dialect or self.dialect
        p = {
            "model": self.model,
            "prompt": ids if dialect == "ids" else self.tokenizer.decode(ids, skip_special_tokens=False),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "stream": stream,
            # llama.cpp servers: no repetition penalty, no top-k/min-p truncation (vLLM ignores these)
            "repeat_penalty": 1.0, "min_p": 0.0, "top_k": 0 if dialect == "text" else -1,
        }
        if logprobs:
            p["logprobs"] = logprobs
        if seed is not None and temperature > 0:
            p["seed"] = seed
        if dialect == "ids":
            p["return_tokens_as_token_ids"] = True  # vLLM: logprob tokens as "token_id:N"
            p["return_token_ids"] = True  # SGLang: the generated ids in choices[].token_ids
            p["timings_per_token"] = True  # llama-server: how many prompt tokens it evaluated
            if stop_ids:
                # vLLM stops at the step boundary itself and still reports the stop token's id and
                # the request's cached prompt tokens; servers without the field ignore it and are cut
                p["stop_token_ids"] = sorted(stop_ids)
            if stream:
                p["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
        return p

    def retrying(self, what: Callable[[], object]):
        """``what()``, tried again on transient failures with exponential backoff."""
        wait, last = self.opts.backoff, None
        for attempt in range(self.opts.retries + 1):
            try:
                return what()
            except _Transient as e:
                last = e
                if attempt < self.opts.retries:
                    time.sleep(wait)
                    wait *= 2
        raise RemoteError(f"LRM server {self.url} failed {self.opts.retries + 1} times; last: {last}")

    def post(self, payload: dict) -> dict:
        """One non-streamed completion (no retry here: callers wrap it in ``retrying``)."""
        try:
            r = self.http.post(f"{self.url}/completions", json=payload)
        except (httpx.TransportError, httpx.TimeoutException) as e:
            raise _Transient(_describe(e)) from None
        _raise_for(r, self.url)
        return r.json()

    def stream(self, payload: dict) -> Iterator[dict]:
        """The chunks of one streamed completion; raises ``_Transient`` if it breaks before its end.
        Closing the generator early closes the connection, which stops the server's generation."""
        try:
            with self.http.stream("POST", f"{self.url}/completions", json=payload) as r:
                if r.status_code != 200:
                    r.read()
                    _raise_for(r, self.url)
                finished = False
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise _Transient(f"error in stream: {chunk['error']}")
                    reasons = [c.get("finish_reason") for c in chunk.get("choices", [])]
                    if "abort" in reasons:
                        raise _Transient("the server aborted the request")  # SGLang, vLLM: not an end of text
                    yield chunk
                    finished = finished or any(reasons)
                if not finished:
                    raise _Transient("the stream ended before the completion did")
        except (httpx.TransportError, httpx.TimeoutException) as e:
            raise _Transient(_describe(e)) from None

    # -- text <-> ids for the text dialect -------------------------------------------
    def piece_id(self, piece: str) -> int | None:
        """The id whose text is ``piece``, for top-logprob keys of text servers (None if ambiguous)."""
        if piece.startswith("token_id:"):
            return int(piece[len("token_id:"):])
        with self._pieces_lock:
            if self._pieces is None:
                texts = self.tokenizer.batch_decode([[i] for i in range(self.vocab_size)])
                seen: dict[str, int] = {}
                for i, t in enumerate(texts):
                    if "\ufffd" in t:
                        continue  # a partial UTF-8 token: its text does not name it
                    seen[t] = -1 if t in seen else i
                self._pieces = {t: i for t, i in seen.items() if i >= 0}
        return self._pieces.get(piece)

    def logits_from(self, choice: dict) -> torch.Tensor:
        """A vocabulary-sized logits vector holding the server's top log-probs (-inf elsewhere).

        Softmax over it renormalises over the returned alternatives; a token the server did not
        return gets -inf, which is exact for argmax and a lower bound elsewhere."""
        top = _top_logprobs(choice)
        if top is None:
            raise RemoteError(
                f"LRM server {self.url} returned no log-probabilities; SpecReason and MentorCollab need them "
                "(llama-cpp-python: start it with --logits_all true)"
            )
        out = torch.full((self.vocab_size,), -math.inf)
        for key, lp in top:
            i = key if isinstance(key, int) else self.piece_id(key)
            if i is not None and 0 <= i < self.vocab_size and lp is not None:
                out[i] = max(float(out[i]), float(lp))
        return out

    def session(self, role: str, layer=None, boundary_ids=frozenset(), steer=None) -> "RemoteSession":
        if steer is not None:
            raise ValueError("a remote LRM cannot be steered; steering applies to the SRM (transformers)")
        return RemoteSession(self, role)


class RemoteSession(SessionBase):
    """One sequence on a remote server: ``seen`` is what was already sent (the server caches it)."""

    def __init__(self, model: RemoteModel, role: str):
        super().__init__(role)
        self.m = model
        self.layer = None
        self._stale = True
        self._ctx: Context | None = None
        self.remote = {"dialect": model.dialect, "requests": 0, "retried_requests": 0, "sent_tokens": 0, "server_prompt_tokens": 0,
                       "recomputed_tokens": None, "reported_requests": 0, "text_mismatches": 0, "wasted_tokens": 0}
        self.usage.remote = self.remote

    # -- the Session contract ---------------------------------------------------------
    def sync(self, ctx: Context, capture=()) -> list[np.ndarray]:
        if capture:
            raise ValueError("a remote LRM gives no hidden states; use it for the LRM only")
        if self.seen < len(ctx) or self._ctx is not ctx:
            self._ctx, self._stale = ctx, True
        return []

    @property
    def next_logits(self) -> torch.Tensor:
        """Top log-probs of the token after the synced context: one 1-token request, made when asked."""
        if self._ctx is None:
            raise RuntimeError(f"{self.role}: no logits yet; sync first")
        if self._stale:
            ctx = self._ctx
            choice, seconds = self._ask(ctx.ids, 1, self.m.opts.top_logprobs)
            self.usage.record_feed(seconds, self._foreign(ctx))
            self.seen = len(ctx)
            self._logits, self._stale = self.m.logits_from(choice), False
        return self._logits

    def peek(self, ctx: Context, extra: list[int]) -> torch.Tensor:
        self.sync(ctx)
        choice, seconds = self._ask(ctx.ids + list(extra), 1, self.m.opts.top_logprobs)
        self.usage.prompt_tokens += self._foreign(ctx)
        self.seen = len(ctx)
        self.usage.record_side(seconds, len(extra))
        return self.m.logits_from(choice)

    def peek_ids(self, ctx: Context, extra: list[int], ids: list[int], float32: bool = False) -> torch.Tensor:
        if float32:
            raise ValueError("a remote model's log-probs are what its server sends; they cannot be read in float32")
        return super().peek_ids(ctx, extra, ids)

    def rollback(self, length: int) -> None:
        if length < self.seen:
            self.seen = length
        self._stale = True

    def generate(self, ctx: Context, sampler, stop, max_new: int) -> list[int]:
        """One streamed request: tokens are appended once the step is complete (a broken stream
        is retried from the same context, never taken as the end of the text)."""
        self.sync(ctx)
        seed = None if sampler.temperature == 0 else (sampler.seed * 100_003 + self.remote["requests"]) % 2**31
        t0 = time.perf_counter()
        ids, wasted = self.m.retrying(self._counting(lambda: self._stream_step(ctx.ids, sampler, stop, max_new, seed)))
        self.usage.seconds += time.perf_counter() - t0
        self.usage.prompt_tokens += self._foreign(ctx)
        for t in ids:
            ctx.append(t, self.role)
        self.usage.completion_tokens += len(ids)
        self.remote["wasted_tokens"] += wasted
        self.seen = len(ctx) - 1  # the last token is fed at the next request, as in-process
        self._stale = True
        return ids

    # -- requests ------------------------------------------------------------------------
    def _foreign(self, ctx: Context) -> int:
        return sum(1 for w in ctx.writers[self.seen :] if w != self.role)

    def _counting(self, what):
        first = [True]

        def once():
            if not first[0]:
                self.remote["retried_requests"] += 1
            first[0] = False
            self._count_request()
            return what()

        return once

    def _count_request(self) -> None:
        self.remote["requests"] += 1

    def _check_text(self, ids: list[int]) -> None:
        """Count what is sent; in the text dialect, whether its text encodes back to the same ids."""
        self.remote["sent_tokens"] += len(ids)
        if self.m.dialect == "text":
            tok = self.m.tokenizer
            if tok.encode(tok.decode(ids, skip_special_tokens=False), add_special_tokens=False) != list(ids):
                self.remote["text_mismatches"] += 1

    def _ask(self, ids: list[int], max_tokens: int, logprobs: int) -> tuple[dict, float]:
        self._check_text(ids)
        t0 = time.perf_counter()
        payload = self.m._payload(ids, max_tokens, logprobs)
        body = self.m.retrying(self._counting(lambda: self.m.post(payload)))
        self._server_report(body)
        return body["choices"][0], time.perf_counter() - t0

    def _server_report(self, body: dict) -> None:
        usage = body.get("usage") or {}
        if usage.get("prompt_tokens"):
            self.remote["server_prompt_tokens"] += int(usage["prompt_tokens"])
        recomputed = None
        timings = body.get("timings") or {}
        if isinstance(timings.get("prompt_n"), int) and timings["prompt_n"] >= 0:
            recomputed = timings["prompt_n"]
        details = usage.get("prompt_tokens_details") or {}
        if recomputed is None and details.get("cached_tokens") is not None and usage.get("prompt_tokens"):
            recomputed = int(usage["prompt_tokens"]) - int(details["cached_tokens"])
        if recomputed is not None:
            self.remote["recomputed_tokens"] = (self.remote["recomputed_tokens"] or 0) + recomputed
            self.remote["reported_requests"] += 1

    def _stream_step(self, ids: list[int], sampler, stop, max_new: int, seed) -> tuple[list[int], int]:
        """Stream one step; returns (kept ids, tokens the server generated beyond them)."""
        self._check_text(ids)
        text_mode = self.m.dialect == "text"
        payload = self.m._payload(ids, max_new + (1 if text_mode else 0), logprobs=0 if text_mode else 1,
                                  temperature=sampler.temperature, top_p=sampler.top_p, seed=seed, stream=True,
                                  stop_ids=getattr(stop, "token_ids", None))
        out: list[int] = []
        text, finish, stopped_on, last = "", None, None, {}
        chunks = self.m.stream(payload)
        try:
            for chunk in chunks:
                last = chunk
                choice = (chunk.get("choices") or [{}])[0]
                finish = choice.get("finish_reason") or finish
                for key in ("stop_reason", "matched_stop"):  # the stop id that ended it: vLLM, SGLang
                    stopped_on = choice[key] if choice.get(key) is not None else stopped_on
                if text_mode:
                    text += choice.get("text") or ""
                    out = self.m.tokenizer.encode(text, add_special_tokens=False)
                    # the newest token may still grow with the next chunk: only judge the ones before it
                    cut = _first_stop(out[:-1] if finish is None else out, stop)
                else:
                    out.extend(_generated_ids(choice) or [])
                    cut = _first_stop(out, stop)
                if cut is not None or len(out) >= max_new:
                    break
            if finish is not None:  # the server ended the request itself: its last chunk may carry
                for chunk in chunks:  # the usage with cached tokens (vLLM sends it after the finish)
                    last = chunk if chunk.get("usage") else last
        finally:
            chunks.close()
        self._server_report(last)
        produced = len(out)
        if cut is None and finish == "stop":
            # "stop" means the model ended its text (EOS) or hit one of the stop ids, which vLLM
            # names in stop_reason (SGLang in matched_stop); a server that left that token out of
            # its stream gets it back
            end = stopped_on if isinstance(stopped_on, int) and stop(stopped_on) else self.m.eos_id
            if not out or out[-1] != end:
                out.append(end)
            cut = _first_stop(out, stop)
        keep = out[: (cut + 1) if cut is not None else max_new]
        return keep, max(produced - len(keep), 0)


def _first_stop(ids: list[int], stop) -> int | None:
    for i, t in enumerate(ids):
        if stop(t):
            return i
    return None


def _generated_ids(choice: dict) -> list[int] | None:
    """Token ids a server reports for generated tokens: vLLM "token_id:N" log-prob keys,
    llama-server ``logprobs.content[].id``, SGLang ``token_ids`` (whose log-probs name tokens by
    their text only)."""
    ids = _logprob_ids(choice.get("logprobs"))
    if ids:
        return ids
    listed = choice.get("token_ids")
    if isinstance(listed, list) and all(isinstance(i, int) for i in listed):
        return listed
    return ids


def _logprob_ids(lp) -> list[int] | None:
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("content"), list):  # llama-server
        ids = [c.get("id") for c in lp["content"]]
        return ids if all(isinstance(i, int) for i in ids) else None
    tokens = lp.get("tokens")
    if isinstance(tokens, list) and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        return [int(t[len("token_id:"):]) for t in tokens]
    return None


def _top_logprobs(choice: dict) -> list[tuple] | None:
    """(id or text piece, logprob) alternatives for the first generated token, in any dialect."""
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("content"), list) and lp["content"]:  # llama-server
        first = lp["content"][0]
        alts = [(a["id"], a.get("logprob")) for a in first.get("top_logprobs", [])]
        return alts + [(first["id"], first.get("logprob"))]
    tops = lp.get("top_logprobs")
    if isinstance(tops, list) and tops and isinstance(tops[0], dict):
        pairs = list(tops[0].items())
        tokens, token_lps = lp.get("tokens") or [], lp.get("token_logprobs") or []
        if tokens and token_lps:
            pairs.append((tokens[0], token_lps[0]))
        return pairs
    return None


def _raise_for(r: httpx.Response, url: str) -> None:
    if r.status_code == 200:
        return
    detail = r.text[:300].replace("\n", " ")
    if r.status_code in TRANSIENT_STATUS:
        raise _Transient(f"HTTP {r.status_code}: {detail}")
    raise RemoteError(f"LRM server {url} refused the request: HTTP {r.status_code}: {detail}")


def _describe(e: Exception) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
