"""The serving API as a real process on 127.0.0.1, started by `workbench serve`: readiness, load (thousands of
requests from 64 concurrent clients: no errors, every response matched to its request, bounded memory growth)."""
import asyncio
import collections
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from conftest import workbench_serve

SETUP = '''
import sys, torch
from workbench.governance import Governance
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
registry = Registry(sys.argv[1])
gov = Governance(registry)
admin = gov.bootstrap("root")
reviewer = gov.add_user(admin, "rev", ["reviewer"])
gov.policies.mkdir(parents=True, exist_ok=True)
(gov.policies / "echo.yaml").write_text("require_lineage: false\\n")
torch.manual_seed(0)
v = gov.register(admin, "echo", MLP(MLPConfig(in_features=8, hidden=[16], out_features=3)),
                 {"shape": [None, 8]}, {"shape": [None, 3]}, metrics={"accuracy": 1.0})
gov.promote(admin, "echo", v, "staging")
gov.approve(reviewer, gov.request(admin, "echo", v, "production"))
gov.promote(admin, "echo", v, "production")
'''

REQUESTS, CLIENTS = 10_000, 64
FUZZ_CASES = 100                                # per operation


def rss_kb(pid: int) -> int:
    return int(next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if l.startswith("VmRSS")).split()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp / "ws"), "WORKBENCH_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", SETUP, str(tmp / "registry.db")], check=True, env=env, timeout=120)
    with workbench_serve("echo@production", tmp / "registry.db", env, "--max-delay-ms", "2") as (url, proc):
        yield url, proc


def test_metadata_and_a_prediction(server):
    url, _ = server
    meta = httpx.get(f"{url}/v1/models/echo").json()
    assert meta["version"] == 1 and meta["stage"] == "production"
    answer = httpx.post(f"{url}/v1/models/echo/predict", json={"inputs": [[0.1] * 8]}).json()
    assert answer["model"] == "echo" and len(answer["outputs"][0]) == 3


def test_load_many_concurrent_clients(server):
    url, proc = server
    inputs = [[(i % 997) / 997.0 + j for j in range(8)] for i in range(REQUESTS)]

    async def run() -> list:
        # idle connections expire on the client (2 s) well before the server closes them (15 s): otherwise a request
        # can race the server's close of an idle connection and fail with ReadError
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS, keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            gate = asyncio.Semaphore(CLIENTS)

            async def one(i):
                async with gate:
                    r = await client.post("/v1/models/echo/predict", json={"inputs": [inputs[i]]})
                    return i, r.status_code, r.json()

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(REQUESTS))), timeout=600)

    asyncio.run(_warm(url))
    before = rss_kb(proc.pid)
    start = time.monotonic()
    results = asyncio.run(run())
    seconds = time.monotonic() - start
    after = rss_kb(proc.pid)
    errors = [r for r in results if r[1] != 200]
    assert not errors, errors[:3]
    # every response is the one for its own request: equal inputs give equal outputs, and the cache's answer
    # (inputs repeat every 997 requests) equals the model's
    by_input = {}
    for i, _, body in results:
        by_input.setdefault(i % 997, []).append(body["outputs"][0])
    assert all(all(abs(a - b) < 1e-5 for o in outs for a, b in zip(o, outs[0])) for outs in by_input.values())
    stats = httpx.get(f"{url}/v1/stats").json()
    print(f"{REQUESTS} requests, {CLIENTS} clients: {REQUESTS / seconds:.0f} req/s; RSS {before} -> {after} kB; "
          f"cache hit rate {stats['cache_hit_rate']:.2f}; batch sizes {stats['batch_sizes']}")
    assert after < before * 1.10, f"memory grew from {before} kB to {after} kB"


async def _warm(url):
    async with httpx.AsyncClient(base_url=url) as client:
        await asyncio.gather(*(client.post("/v1/models/echo/predict",
                                           json={"inputs": [[0.5] * 8]}) for _ in range(200)))


# Fuzzing from the API's own OpenAPI document: schemathesis generates valid and invalid requests for every operation
# (a bounded number per operation) against the real server; no request may cause a server error (5xx). Its hypothesis
# strategies are driven directly: its pytest plugin (`from_fixture`) breaks on pytest 9.
def test_fuzz_from_openapi(server):
    url, _ = server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/models/{name}/predict", "/health", "/ready"}
    statuses = collections.defaultdict(collections.Counter)
    def cases(operation):
        "Valid and invalid requests, to the served model's name and to random ones."
        served = {"name": "echo"} if "{name}" in operation.path else None
        return st.one_of(*(operation.as_strategy(mode, path_parameters=parameters)
                           for mode in GenerationMode for parameters in (served, None)))

    for operation in operations:
        @given(case=cases(operation))
        @settings(max_examples=FUZZ_CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            response = case.call_and_validate(base_url=url, checks=[not_a_server_error])
            statuses[operation.path][response.status_code] += 1
        no_server_error()
    predict = statuses["/v1/models/{name}/predict"]
    assert {200, 404, 422} <= set(predict), statuses           # answers, refused names, refused inputs: all reached
