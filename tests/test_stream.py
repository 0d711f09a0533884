"""The stream consumer under a real kill -9, on both back ends (the embedded log and Redis Streams on a private
redis-server): killed mid-stream, restarted, it loses no event; duplicates are at most one micro-batch and vanish by
id; every result is the model's answer for its event."""
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.stream import EventLog, RedisLog, RedisServer

# `log(name)` opens a stream of the back end under test: argv[1] is the scratch folder, argv[2] the Redis URL or "file"
PRELUDE = r'''
import sys
from workbench.stream import EventLog, RedisLog
root, url = sys.argv[1], sys.argv[2]
log = lambda name: EventLog(f"{root}/{name}.jsonl") if url == "file" else RedisLog(url, name)
'''

SETUP = PRELUDE + r'''
import torch
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
torch.manual_seed(0)
Registry(f"{root}/registry.db").register("scorer", MLP(MLPConfig(in_features=4, hidden=[8], out_features=2)),
                                         {"shape": [None, 4]}, {"shape": [None, 2]})
g = torch.Generator().manual_seed(1)
log("events").append([{"id": f"e{i}", "inputs": torch.rand(4, generator=g).tolist()} for i in range(2000)])
'''

CONSUME = PRELUDE + r'''
import time
from workbench.registry import Registry
from workbench.serve import Predictor
from workbench.stream import consume
delay = float(sys.argv[3])

class Slow(Predictor):
    def predict(self, x):
        time.sleep(delay)
        return super().predict(x)

scorer = Slow(Registry(f"{root}/registry.db"), "scorer@1")
print(consume(log("events"), log("scores"), scorer, batch_size=50), flush=True)
'''

CHECK = PRELUDE + r'''
import torch
from workbench.registry import Registry
from workbench.serve import Predictor
from workbench.stream import latest_by_id
events, _ = log("events").read(max_events=10_000)
results, _ = log("scores").read(max_events=10_000)
unique = latest_by_id(results)
assert len(events) == 2000 and len(unique) == 2000, (len(events), len(unique))
assert len(results) - 2000 <= 50, len(results)                 # at most one micro-batch scored twice
expected = Predictor(Registry(f"{root}/registry.db"), "scorer@1").predict(torch.tensor([e["inputs"] for e in events]))
got = torch.tensor([unique[e["id"]]["outputs"] for e in events])
assert torch.allclose(got, expected, atol=1e-5)
print(len(results) - 2000)
'''


@pytest.fixture(params=["file", "redis"])
def backend(request, tmp_path):
    "The back end's address for the scripts: 'file', or the URL of a redis-server started for this test."
    if request.param == "file":
        yield "file"
    else:
        with RedisServer(tmp_path / "redis") as url:
            yield url


def test_consumer_survives_kill_9(tmp_path, backend):
    env = {**os.environ, "WORKBENCH_PROGRESS": "0", "WORKBENCH_HOME": str(tmp_path / "ws")}
    run = lambda code, *args: subprocess.run([sys.executable, "-c", code, str(tmp_path), backend, *args], env=env,
                                             capture_output=True, text=True, timeout=120)
    scores = EventLog(tmp_path / "scores.jsonl") if backend == "file" else RedisLog(backend, "scores")
    setup = run(SETUP)
    assert setup.returncode == 0, setup.stderr[-2000:]
    victim = subprocess.Popen([sys.executable, "-c", CONSUME, str(tmp_path), backend, "0.1"], env=env)
    deadline = time.monotonic() + 120
    while len(scores.read(max_events=10_000)[0]) < 300:           # a few micro-batches written (and committed)
        assert victim.poll() is None and time.monotonic() < deadline, "the consumer ended before it could be killed"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rest = run(CONSUME, "0")
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert 0 < int(rest.stdout) <= 2000 - 250                   # it resumed: 300 written, so at least 250 committed
    check = run(CHECK)
    assert check.returncode == 0, check.stderr[-2000:]
