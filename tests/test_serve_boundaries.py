"""The serving API's boundaries under hostile input and load, each against a real uvicorn server on 127.0.0.1:
a chunked body over the limit, a model that fails on one input, a full queue, a storm of refused admin calls, and
reloads that fail half-way (issue 16)."""
import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from workbench.governance import Governance
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
from workbench.serve import BackgroundServer, Fallback, Predictor, ReloadError, create_app

ROW = [[0.25] * 8]


def register(registry: Registry, seed: int, name: str = "echo") -> int:
    "A new version of a small MLP (8 inputs, 3 outputs), in staging."
    torch.manual_seed(seed)
    version = registry.register(name, MLP(MLPConfig(in_features=8, hidden=[16], out_features=3)), {"shape": [None, 8]},
                                {"shape": [None, 3]})
    registry.transition(name, version, "staging")
    return version


@pytest.fixture
def registry(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    register(registry, 0)
    return registry


def raw_post(url: str, path: str, chunks, pause: float = 0.0) -> bytes:
    """POST a chunked body over a raw socket, chunk by chunk; return whatever the server answered, without ever ending
    the body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        try:
            for chunk in chunks:
                s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass                                          # the server stopped reading: its answer is waiting
        return s.recv(65536)


def test_chunked_body_over_the_limit_is_refused_before_it_ends(registry):
    "No Content-Length to check: the limit counts bytes received, and the answer comes while the body is still open."
    with BackgroundServer(create_app(Predictor(registry, "echo@staging"), max_body_bytes=10_000)) as url:
        answer = raw_post(url, "/v1/models/echo/predict", [b" " * 4_000] * 10)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"exceeds the limit of 10000 bytes" in answer
        small = raw_post(url, "/v1/models/echo/predict",
                         [b'{"inputs": [[0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]]}', b""])
        assert small.startswith(b"HTTP/1.1 200"), small[:300]     # a chunked body under the limit is served
        assert httpx.get(f"{url}/v1/stats").json()["outcomes"]["too_large"] == 1


class Poisoned(Predictor):
    "A model that raises whenever its batch holds the value 0.13 (one poisoned input); it notes its batch sizes."
    calls: list = []

    def predict(self, x):
        self.calls.append(len(x))
        if (x == torch.tensor(0.13)).any():
            raise ValueError("cannot take 0.13")
        return super().predict(x)


def test_a_model_failing_on_one_input_fails_only_that_request(registry):
    app = create_app(Poisoned(registry, "echo@staging"), max_batch_size=32, max_delay_ms=20)
    with BackgroundServer(app) as url:
        async def burst():
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                async def one(i):
                    row = [[0.13] * 8] if i == 7 else [[(i + 20) / 100] * 8]
                    return await client.post("/v1/models/echo/predict", json={"inputs": row})
                return await asyncio.gather(*(one(i) for i in range(30)))
        replies = asyncio.run(burst())
        statuses = [r.status_code for r in replies]
        assert statuses[7] == 500 and statuses.count(200) == 29, statuses
        failed = replies[7].json()["detail"]
        assert len(failed["request_id"]) == 32 and "ValueError" in failed["msg"]
        assert httpx.post(f"{url}/v1/models/echo/predict", json={"inputs": ROW}).status_code == 200   # the loop goes on
    assert max(Poisoned.calls) > 1, Poisoned.calls          # the poisoned request really shared a batch with others


class Slow(Predictor):
    def predict(self, x):
        time.sleep(0.02)
        return super().predict(x)


def test_full_queue_sheds_load_with_retry_after_and_loses_nothing(registry):
    app = create_app(Slow(registry, "echo@staging"), max_batch_size=1, max_delay_ms=0, max_queue=4, queue_timeout_s=30)
    expected = Predictor(registry, "echo@staging")
    with BackgroundServer(app) as url:
        async def flood():
            limits = httpx.Limits(max_connections=60)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                return await asyncio.gather(*(client.post("/v1/models/echo/predict", json={"inputs": [[i / 60] * 8]})
                                              for i in range(60)))
        replies = asyncio.run(flood())
        statuses = [r.status_code for r in replies]
        assert set(statuses) == {200, 503}, statuses
        for i, reply in enumerate(replies):
            if reply.status_code == 503:
                assert reply.headers["retry-after"] == "1" and "max_queue" in reply.json()["detail"]
            else:                                         # every accepted request got its own answer
                assert torch.allclose(torch.tensor(reply.json()["outputs"]),
                                      expected.predict(torch.full((1, 8), i / 60)),
                                      atol=1e-5)
        outcomes = httpx.get(f"{url}/v1/stats").json()["outcomes"]
        assert outcomes["ok"] == statuses.count(200) and outcomes["overloaded"] == statuses.count(503)


def test_admin_work_runs_off_the_event_loop(registry, monkeypatch):
    "Refused admin calls are authorized and audited on the admin thread, never on the event loop's thread."
    governance = Governance(registry)
    governance.bootstrap("root")
    threads, authorize = set(), governance.authorize
    def recording(*args):
        threads.add(threading.current_thread().name)
        return authorize(*args)
    monkeypatch.setattr(governance, "authorize", recording)
    with BackgroundServer(create_app(Predictor(registry, "echo@staging"), governance=governance)) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            refused = [client.post("/v1/models/echo/reload",
                                   headers={"X-API-Key": "guess"}).status_code for _ in range(20)]
            assert client.post("/v1/models/echo/predict", json={"inputs": ROW}).status_code == 200
    assert set(refused) == {403}
    assert threads and all(name.startswith("serve-admin") for name in threads), threads
    refusals = [e for e in governance.audit.entries() if e["outcome"] == "refused"]
    assert len(refusals) == 20                           # every refusal is in the audit trail


def test_a_failed_reload_keeps_serving_and_is_audited(registry):
    governance = Governance(registry)
    admin = governance.bootstrap("root")
    with BackgroundServer(create_app(Predictor(registry, "echo@staging"), governance=governance)) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            before = client.post("/v1/models/echo/predict", json={"inputs": ROW}).json()
            damaged = register(registry, 1)
            Path(registry.resolve(f"echo@{damaged}")["path"]).write_bytes(b"not safetensors")
            reply = client.post("/v1/models/echo/reload", headers={"X-API-Key": admin})
            assert reply.status_code == 409 and "still serving echo v1" in reply.json()["detail"]
            after = client.post("/v1/models/echo/predict", json={"inputs": [[0.26] * 8]}).json()
            assert after["version"] == 1 and before["version"] == 1
            assert client.get("/v1/models/echo").json()["version"] == 1
    failed = [e for e in governance.audit.entries() if e["action"] == "reload"][-1]
    assert failed["outcome"] == "failed" and "still serving" in failed["details"]["reason"]


def test_fallback_reloads_both_models_or_neither(tmp_path):
    registry = Registry(tmp_path / "registry.db")
    register(registry, 0, "light"), register(registry, 1, "heavy")
    fallback = Fallback(Predictor(registry, "light@staging"), Predictor(registry, "heavy@staging"))
    register(registry, 2, "light")
    bad = register(registry, 3, "heavy")
    Path(registry.resolve(f"heavy@{bad}")["path"]).unlink()
    with pytest.raises(ReloadError, match="still serving light v1, heavy v1"):
        fallback.reload()
    assert (fallback.light.version, fallback.heavy.version) == (1, 1)         # the light model did not move alone
    register(registry, 4, "heavy")
    assert fallback.reload() == 2 and fallback.heavy.version == 3
    assert fallback.names == ("light@2", "heavy@3", "cache")
