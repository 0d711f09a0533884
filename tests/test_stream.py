"""The stream consumer under a real kill -9: killed mid-stream, restarted, it loses no event; duplicates are at most
one micro-batch and vanish by id; every result is the model's answer for its event."""
import os
import signal
import subprocess
import sys
import time

SETUP = r'''
import sys, torch
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
from workbench.stream import EventLog
root = sys.argv[1]
torch.manual_seed(0)
Registry(f"{root}/registry.db").register("scorer", MLP(MLPConfig(in_features=4, hidden=[8], out_features=2)),
                                         {"shape": [None, 4]}, {"shape": [None, 2]})
g = torch.Generator().manual_seed(1)
EventLog(f"{root}/events.jsonl").append([{"id": f"e{i}", "inputs": torch.rand(4, generator=g).tolist()} for i in range(2000)])
'''

CONSUME = r'''
import sys, time
from workbench.registry import Registry
from workbench.serve import Predictor
from workbench.stream import EventLog, consume
root, delay = sys.argv[1], float(sys.argv[2])

class Slow(Predictor):
    def predict(self, x):
        time.sleep(delay)
        return super().predict(x)

print(consume(EventLog(f"{root}/events.jsonl"), EventLog(f"{root}/scores.jsonl"), Slow(Registry(f"{root}/registry.db"), "scorer@1"),
              batch_size=50), flush=True)
'''

CHECK = r'''
import sys, torch
from workbench.registry import Registry
from workbench.serve import Predictor
from workbench.stream import EventLog, latest_by_id
root = sys.argv[1]
events, _ = EventLog(f"{root}/events.jsonl").read(0, 10_000)
results, _ = EventLog(f"{root}/scores.jsonl").read(0, 10_000)
unique = latest_by_id(results)
assert len(events) == 2000 and len(unique) == 2000, (len(events), len(unique))
assert len(results) - 2000 <= 50, len(results)                 # at most one micro-batch scored twice
expected = Predictor(Registry(f"{root}/registry.db"), "scorer@1").predict(torch.tensor([e["inputs"] for e in events]))
got = torch.tensor([unique[e["id"]]["outputs"] for e in events])
assert torch.allclose(got, expected, atol=1e-5)
print(len(results) - 2000)
'''


def test_consumer_survives_kill_9(tmp_path):
    env = {**os.environ, "WORKBENCH_PROGRESS": "0", "WORKBENCH_HOME": str(tmp_path / "ws")}
    run = lambda code, *args, **kw: subprocess.run([sys.executable, "-c", code, str(tmp_path), *args], env=env,
                                                   capture_output=True, text=True, timeout=120, **kw)
    assert run(SETUP).returncode == 0
    victim = subprocess.Popen([sys.executable, "-c", CONSUME, str(tmp_path), "0.1"], env=env)
    offsets = tmp_path / "events.jsonl.offsets.json"
    deadline = time.monotonic() + 120
    while not (offsets.exists() and '"scorer"' in offsets.read_text() and (tmp_path / "scores.jsonl").stat().st_size > 20_000):
        assert victim.poll() is None and time.monotonic() < deadline, "the consumer ended before it could be killed"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    rest = run(CONSUME, "0")
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert 0 < int(rest.stdout) < 2000                          # it resumed, it did not start over
    check = run(CHECK)
    assert check.returncode == 0, check.stderr[-2000:]
