"""The OpenAI-compatible server: one engine loaded once, requests queued, steps streamed.

Concurrency: requests run on a pool of ``workers`` threads (each request has
its own KV caches; each in-process model runs one forward at a time, so
requests never see each other's state). At most ``workers + queue_size``
requests are admitted; the next gets 503 with Retry-After. Everything about a
request (method, settings, budget against the context length, steering file)
is validated before it is admitted, so a bad request costs no model work.
A request names a steering vector by its file name in the server's
``steer_dir`` (``tandem serve --steer-dir``), never by a path: a client cannot
make the server read, or learn of, any other file.
A client that disconnects sets the run's cancel event, and the engine stops
after the token it is generating.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tandem.backends.remote import RemoteError
from tandem.config import ConfigError, RunConfig, make_config
from tandem.engine import Cancelled, Engine
from tandem.policies import get_policy
from tandem.prompt import prompt_ids
from tandem.server.schema import ChatRequest, CompletionRequest, TandemFields
from tandem.steering import SteeringError


class RequestError(ValueError):
    """A request that cannot be served as asked (HTTP 400)."""


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tandem_requests", "requests by method and outcome", ["method", "status"], registry=r)
        self.latency = Histogram("tandem_request_latency_seconds", "engine latency per request", ["method"],
                                 buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300), registry=r)
        self.tokens = Counter("tandem_generated_tokens", "generated tokens by model", ["model"], registry=r)
        self.lrm_share = Histogram("tandem_lrm_token_share", "LRM share of generated tokens per request", ["method"],
                                   buckets=(0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0), registry=r)
        self.queue = Gauge("tandem_queue_depth", "requests admitted and not finished", registry=r)
        self.cancelled = Counter("tandem_cancelled", "runs stopped because the client went away", registry=r)


class TandemServer:
    def __init__(self, engine: Engine, base: RunConfig, workers: int = 1, queue_size: int = 16,
                 steer_dir: str | Path | None = None):
        self.engine = engine
        self.base = base
        self.steer_dir = Path(steer_dir).resolve() if steer_dir is not None else None
        self.workers = workers
        self.limit = workers + queue_size
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tandem-request")
        self.inflight = 0
        self.lock = threading.Lock()
        self.metrics = Metrics()
        self.max_context = min(_context_length(engine.srm), _context_length(engine.lrm))

    # -- admission ---------------------------------------------------------
    def config_for(self, req: TandemFields) -> RunConfig:
        data = self.base.model_dump()
        settings = data.pop("settings") | dict(req.settings)
        for key, value in (("temperature", req.temperature), ("top_p", req.top_p)):
            if value is not None:
                settings[key] = value
        steer = self.steer_file(req.steer) if req.steer is not None else None
        for key, value in (("method", req.method), ("seed", req.seed), ("max_tokens", req.budget), ("steer", steer)):
            if value is not None:
                data[key] = value
        cfg = make_config(data, settings)
        get_policy(cfg.method)
        self.engine.steering(cfg)  # a bad or foreign vector file fails here, before any work
        return cfg

    def steer_vectors(self) -> list[str]:
        """The vector files requests may name (``.pt`` files in ``steer_dir``)."""
        return sorted(p.name for p in self.steer_dir.glob("*.pt") if p.is_file()) if self.steer_dir else []

    def steer_file(self, name: str) -> str:
        """The path of the vector a request names: a file name in ``steer_dir``, nothing else."""
        if self.steer_dir is None:
            raise RequestError("steer: this server takes no steering vector from requests (its operator can start it "
                               "with --steer-dir DIR to let requests name one of DIR's .pt files)")
        path = self.steer_dir / name
        if Path(name).name != name or name in (".", ".."):  # a bare name: the file (or the operator's link) in steer_dir
            raise RequestError(f"steer: {name!r} is not a file name; name one of the server's vectors: "
                               f"{', '.join(self.steer_vectors()) or 'none'}")
        if not path.is_file():
            raise RequestError(f"steer: no vector {name!r} on this server; it has: {', '.join(self.steer_vectors()) or 'none'}")
        return str(path)

    def admit(self) -> bool:
        with self.lock:
            if self.inflight >= self.limit:
                return False
            self.inflight += 1
            self.metrics.queue.set(self.inflight)
            return True

    def release(self) -> None:
        with self.lock:
            self.inflight -= 1
            self.metrics.queue.set(self.inflight)

    # -- work ----------------------------------------------------------------
    def execute(self, prompt, cfg: RunConfig, question: str, on_step, cancel: threading.Event):
        """Runs on a worker thread; frees the admission slot when the work really ends.
        Returns the trace, or None when the client went away and the run was cancelled."""
        try:
            trace = self.engine.run(prompt, cfg, question, on_step, cancel)
        except Cancelled:
            self.metrics.cancelled.inc()
            return None
        except Exception:
            self.metrics.requests.labels(cfg.method, "error").inc()
            raise
        finally:
            self.release()
        self.record(cfg, trace)
        return trace

    def record(self, cfg: RunConfig, trace) -> None:
        m = self.metrics
        m.requests.labels(cfg.method, "ok").inc()
        m.latency.labels(cfg.method).observe(trace.latency_s)
        for role, u in trace.usage.items():
            m.tokens.labels(role).inc(u.completion_tokens)
        m.lrm_share.labels(cfg.method).observe(trace.lrm_token_share)


def _context_length(hf) -> int:
    return int(getattr(hf.config, "max_position_embeddings", 1 << 30) or 1 << 30)


def _step_dict(i: int, step) -> dict:
    return {"index": i, "writer": step.writer, "tokens": len(step.ids), "tokens_by": step.tokens_by,
            "signals": step.signals, "reason": step.reason, "label": step.label, "text": step.text}


def _tandem_extension(trace) -> dict:
    d = trace.to_dict()
    return {"method": d["method"], "answer": d["answer"], "latency_s": d["latency_s"], "finish_reason": d["finish_reason"],
            "lrm_token_share": d["lrm_token_share"], "validation_ratio": d["validation_ratio"], "usage": d["usage"],
            "steps": [{k: v for k, v in s.items() if k != "text"} for s in d["steps"]], "meta": d.get("meta", {})}


def _usage(trace) -> dict:
    completion = sum(len(s.ids) for s in trace.steps)
    return {"prompt_tokens": trace.prompt_tokens, "completion_tokens": completion,
            "total_tokens": trace.prompt_tokens + completion}


def _finish(trace) -> str:
    return "length" if trace.finish_reason == "budget" else "stop"


def create_app(server: TandemServer) -> FastAPI:
    app = FastAPI(title="tandem", description="collaborative SRM/LRM reasoning behind the OpenAI API")
    app.state.tandem = server

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, exc: RequestValidationError):
        msgs = ["{}: {}".format(".".join(str(x) for x in e["loc"] if x != "body"), e["msg"]) for e in exc.errors()]
        return _error(422, "; ".join(msgs) or "invalid request", "invalid_request_error")

    @app.get("/health")
    async def health():
        return {"status": "ok", "srm": server.engine.srm.name, "lrm": server.engine.lrm.name, "inflight": server.inflight}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        from tandem.policies import POLICIES

        return {"object": "list", "data": [{"id": "tandem", "object": "model", "owned_by": "tandem",
                                            "srm": server.engine.srm.name, "lrm": server.engine.lrm.name,
                                            "methods": list(POLICIES), "default_method": server.base.method,
                                            "steer_vectors": server.steer_vectors()}]}

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return resources.files("tandem.server").joinpath("page.html").read_text(encoding="utf-8")

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest, request: Request):
        return await _serve(req, request, chat=True)

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest, request: Request):
        return await _serve(req, request, chat=False)

    async def _serve(req, request: Request, chat: bool):
        try:
            cfg = server.config_for(req)
            prompt = prompt_ids(server.engine.tokenizer, req.question)
            if len(prompt) + cfg.max_tokens > server.max_context:
                raise RequestError(
                    f"prompt ({len(prompt)} tokens) + max_tokens ({cfg.max_tokens}) exceeds the context length "
                    f"{server.max_context}; lower max_tokens"
                )
        except (ConfigError, SteeringError, RequestError, ValueError) as e:
            server.metrics.requests.labels(req.method or server.base.method, "rejected").inc()
            return _error(400, str(e), "invalid_request_error")
        if not server.admit():
            server.metrics.requests.labels(cfg.method, "busy").inc()
            return _error(503, f"server busy: {server.limit} requests in flight; retry later", "server_busy",
                          headers={"Retry-After": "5"})
        cancel = threading.Event()
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        on_step = (lambda i, st: loop.call_soon_threadsafe(queue.put_nowait, (i, st))) if req.stream else None
        future = loop.run_in_executor(server.pool, server.execute, prompt, cfg, req.question, on_step, cancel)
        if req.stream:
            return StreamingResponse(_stream(rid, req, request, cancel, chat, queue, future), media_type="text/event-stream")
        watcher = asyncio.create_task(_watch(request, cancel, future))
        try:
            trace = await future
        except RemoteError as e:  # the LRM's server failed: a gateway error, not ours
            return _error(502, str(e), "upstream_error")
        except Exception as e:  # noqa: BLE001 - reported to the client as a server error, never as text
            return _error(500, f"{type(e).__name__}: {e}", "server_error")
        finally:
            watcher.cancel()
        if trace is None:
            return Response(status_code=499)  # the client is gone; nobody reads this
        text = trace.text
        choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": _finish(trace)}
                  if chat else {"index": 0, "text": text, "finish_reason": _finish(trace)})
        return {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": req.model, "choices": [choice], "usage": _usage(trace), "tandem": _tandem_extension(trace)}

    async def _watch(request: Request, cancel: threading.Event, future) -> None:
        while not future.done():
            if await request.is_disconnected():
                cancel.set()
                return
            await asyncio.sleep(0.25)

    async def _stream(rid, req, request: Request, cancel: threading.Event, chat: bool, queue: asyncio.Queue, future):
        created = int(time.time())

        def chunk(delta_text: str | None, finish=None, extra=None) -> str:
            if chat:
                delta = {} if delta_text is None else {"role": "assistant", "content": delta_text}
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": delta_text or "", "finish_reason": finish}
            body = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
                    "model": req.model, "choices": [choice]}
            return f"data: {json.dumps(body | (extra or {}), ensure_ascii=False)}\n\n"

        try:
            while True:
                if await request.is_disconnected():
                    cancel.set()
                    return
                try:
                    i, step = await asyncio.wait_for(queue.get(), timeout=0.25)
                except asyncio.TimeoutError:
                    if future.done() and queue.empty():
                        break
                    continue
                yield chunk(step.text, extra={"tandem": {"step": _step_dict(i, step) | {"text": None}}})
            try:
                trace = await future
            except Exception as e:  # noqa: BLE001 - the stream reports the failure, never pretends it ended well
                yield f"data: {json.dumps({'error': {'message': f'{type(e).__name__}: {e}', 'type': 'server_error'}})}\n\n"
                return
            if trace is None:
                return
            yield chunk(None, _finish(trace), {"usage": _usage(trace), "tandem": _tandem_extension(trace)})
            yield "data: [DONE]\n\n"
        finally:
            if not future.done():  # the client went away mid-stream: stop the run
                cancel.set()

    return app


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status, headers=headers)
