"""`tandem serve` on tiny random models: the official openai client, streaming, errors, queueing,
disconnects, concurrency, and the page in headless chromium. Real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import uvicorn

from tandem.config import RunConfig, Settings
from tandem.engine import Engine
from tandem.server.app import TandemServer, create_app
from tests_helpers import ensure_alternate, vector_file  # noqa: F401 - registers "test-alternate" (both writers in one run)

QUESTIONS = ["What is 2 + 3?", "How many legs do 3 cats have?", "What is 10 - 7?", "A baker sells 48 cookies."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    def __init__(self, pair, workers=1, queue_size=32, max_tokens=24, steer_dir=None):
        self.engine = Engine(*pair)
        self.base = RunConfig(method="rankguide", max_tokens=max_tokens, settings=Settings(window=2, max_step_tokens=6))
        self.ts = TandemServer(self.engine, self.base, workers, queue_size, steer_dir)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.ts), host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)

    def expected(self, question: str, **kw) -> str:
        cfg = self.base.model_copy(update=kw)
        return self.engine.solve(question, cfg).text


@pytest.fixture(scope="module")
def srv(tiny_pair):
    r = Running(tiny_pair)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def client(srv):
    import openai

    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_chat_and_completion_match_the_engine(srv, client):
    want = srv.expected(QUESTIONS[0])
    r = client.chat.completions.create(model="tandem", messages=[{"role": "user", "content": QUESTIONS[0]}])
    assert r.choices[0].message.content == want
    ext = r.model_extra["tandem"]
    assert ext["method"] == "rankguide" and ext["steps"] and set(ext["usage"]) == {"srm", "lrm"}
    assert r.usage.completion_tokens == sum(s["tokens"] for s in ext["steps"])
    # per-request method and settings through extra_body
    r2 = client.chat.completions.create(model="tandem", messages=[{"role": "user", "content": QUESTIONS[0]}],
                                        extra_body={"method": "glimprouter", "settings": {"te": 0.0}})
    assert r2.model_extra["tandem"]["method"] == "glimprouter"
    assert {s["writer"] for s in r2.model_extra["tandem"]["steps"]} == {"lrm"}
    c = client.completions.create(model="tandem", prompt=QUESTIONS[1])
    assert c.choices[0].text == srv.expected(QUESTIONS[1])


def test_streaming_sends_one_chunk_per_step_then_usage(srv, client):
    want = srv.expected(QUESTIONS[2])
    chunks = list(client.chat.completions.create(model="tandem", stream=True, messages=[{"role": "user", "content": QUESTIONS[2]}]))
    steps = [c for c in chunks if c.model_extra.get("tandem", {}).get("step")]
    assert "".join(c.choices[0].delta.content for c in steps) == want
    assert [c.model_extra["tandem"]["step"]["index"] for c in steps] == list(range(len(steps)))
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length") and last.model_extra["tandem"]["usage"]


def test_models_health_metrics(srv, client):
    assert [m.id for m in client.models.list().data] == ["tandem"]
    assert httpx.get(f"{srv.url}/health").json()["status"] == "ok"
    text = httpx.get(f"{srv.url}/metrics").text
    assert 'tandem_requests_total{method="rankguide",status="ok"}' in text
    assert "tandem_generated_tokens_total" in text and "tandem_queue_depth" in text
    page = httpx.get(f"{srv.url}/")
    assert page.status_code == 200 and "<svg" in page.text


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"model": "tandem"}, 422, "messages"),
        ({"messages": [{"role": "user", "content": "   "}]}, 422, "non-empty user message"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 422, "role"),
        ({"messages": [{"role": "user", "content": "hi"}], "method": "nope"}, 400, "unknown method"),
        ({"messages": [{"role": "user", "content": "hi"}], "settings": {"tee": 1}}, 400, "unknown setting 'tee'"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50_000}, 400, "exceeds the context length"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 422, "max_tokens"),
        ({"messages": [{"role": "user", "content": "hi"}], "steer": "/no/such.pt"}, 400, "takes no steering vector from requests"),
    ],
)
def test_bad_requests_get_clear_4xx(srv, body, status, words):
    r = httpx.post(f"{srv.url}/v1/chat/completions", json=body)
    assert r.status_code == status and words in r.json()["error"]["message"]


def test_requests_name_steering_vectors_in_the_servers_folder_only(tiny_pair, tmp_path):
    """A request's `steer` is a file name in --steer-dir: that vector steers the SRM; a path, or a name the
    folder lacks, is refused before any work, naming the vectors there (and no other file of the server)."""
    folder = tmp_path / "vectors"
    folder.mkdir()
    vector_file(folder / "v.pt", tiny_pair[0])
    vector_file(tmp_path / "outside.pt", tiny_pair[0])
    r = Running(tiny_pair, steer_dir=folder)
    try:
        assert httpx.get(f"{r.url}/v1/models").json()["data"][0]["steer_vectors"] == ["v.pt"]
        question = "A baker makes 48 cookies and sells them for 2 dollars each. How many dollars does he earn?"
        ask = {"messages": [{"role": "user", "content": question}], "max_tokens": 40, "method": "srm",
               "settings": {"steer_kind": "seal", "alpha": 8.0, "delimiter": " ", "max_step_tokens": 8}}
        ok = httpx.post(f"{r.url}/v1/chat/completions", json=ask | {"steer": "v.pt"}, timeout=120)
        assert ok.status_code == 200
        ext = ok.json()["tandem"]
        assert ext["meta"]["steer"]["kind"] == "seal" and ext["meta"]["steer"]["file"] == str(folder.resolve() / "v.pt")
        assert 0 < ext["usage"]["srm"]["steered_positions"] == ext["usage"]["srm"]["boundary_positions"]
        steered = r.base.model_copy(update={"steer": str(folder.resolve() / "v.pt"), "max_tokens": 40, "method": "srm",
                                            "settings": r.base.settings.model_copy(update=ask["settings"])})
        assert ok.json()["choices"][0]["message"]["content"] == r.engine.solve(question, steered).text
        for name, words in [("../outside.pt", "'../outside.pt' is not a file name; name one of the server's vectors: v.pt"),
                            (str(tmp_path / "outside.pt"), "is not a file name"), ("..", "is not a file name"),
                            ("w.pt", "no vector 'w.pt' on this server; it has: v.pt")]:
            bad = httpx.post(f"{r.url}/v1/chat/completions", json=ask | {"steer": name})
            assert bad.status_code == 400 and words in bad.json()["error"]["message"], name
            assert str(folder) not in bad.json()["error"]["message"]  # the server's own paths stay its own
    finally:
        r.stop()


def test_sixteen_concurrent_requests_get_their_own_answers(srv, client):
    want = {q: srv.expected(q) for q in QUESTIONS}

    def ask(i):
        q = QUESTIONS[i % len(QUESTIONS)]
        r = client.chat.completions.create(model="tandem", messages=[{"role": "user", "content": q}])
        return q, r.choices[0].message.content

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(ask, range(16)))
    assert all(text == want[q] for q, text in results)
    assert srv.ts.inflight == 0


def test_full_queue_answers_503_and_disconnect_cancels(tiny_pair):
    r = Running(tiny_pair, workers=1, queue_size=0, max_tokens=400)
    try:
        body = {"messages": [{"role": "user", "content": QUESTIONS[3]}], "stream": True}
        with httpx.Client(timeout=60) as h, h.stream("POST", f"{r.url}/v1/chat/completions", json=body) as first:
            lines = first.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))  # the first step arrived
            busy = httpx.post(f"{r.url}/v1/chat/completions", json={"messages": body["messages"], "max_tokens": 5})
            assert busy.status_code == 503 and busy.headers["Retry-After"] and "busy" in busy.json()["error"]["message"]
        # the client closed the stream mid-run: the run is cancelled and the slot freed
        deadline = time.time() + 30
        while time.time() < deadline and 'tandem_cancelled_total 1.0' not in httpx.get(f"{r.url}/metrics").text:
            time.sleep(0.2)
        assert 'tandem_cancelled_total 1.0' in httpx.get(f"{r.url}/metrics").text
        ok = httpx.post(f"{r.url}/v1/chat/completions", json={"messages": body["messages"], "max_tokens": 5}, timeout=60)
        assert ok.status_code == 200
    finally:
        r.stop()


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="Debian chromium + chromium-driver not installed (setup.sh installs them)")
def test_page_streams_steps_in_headless_chromium(srv, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(f"{srv.url}/?method=test-alternate&max=30&q=What%20is%202%2B3%3F")
        WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "method").get_attribute("value") == "test-alternate")
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 120).until(lambda d: "answer:" in d.find_element(By.ID, "summary").text)
        srm_steps = driver.find_elements(By.CSS_SELECTOR, ".step.srm")
        lrm_steps = driver.find_elements(By.CSS_SELECTOR, ".step.lrm")
        assert srm_steps and lrm_steps  # steps coloured by the model that wrote them
        assert "H=" in srm_steps[0].text and "SRM" in srm_steps[0].text
        markers = driver.find_elements(By.CSS_SELECTOR, "#chart rect.writer")
        assert len(markers) == len(srm_steps) + len(lrm_steps)  # one marker per step on the signal chart
        assert "LRM token share" in driver.find_element(By.ID, "summary").text
        shot = tmp_path / "page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        driver.quit()
