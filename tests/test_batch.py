"""Batch scoring survives a real kill -9: the process is killed mid-run, the rerun scores only the chunks that were not
finished, and the result equals a direct prediction over the whole dataset."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCORE = r'''
import sys, time
import numpy as np
from workbench.batch import score_dataset
from workbench.data import DataStore
from workbench.registry import Registry
from workbench.serve import Predictor

class Slow(Predictor):
    calls = 0
    def validate(self, inputs):
        return super().validate(np.asarray(inputs).reshape(len(inputs), -1))
    def predict(self, x):
        Slow.calls += 1
        time.sleep(float(sys.argv[2]))
        return super().predict(x)

root = sys.argv[1]
card = score_dataset(DataStore(f"{root}/data"), "digits@1", Slow(Registry(f"{root}/registry.db"), "digits@1"), "scores",
                     chunk_size=100, work=f"{root}/work")
print("calls", Slow.calls, card.ref, flush=True)
'''

SETUP = r'''
import sys, torch
from workbench.data import DataStore
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
from workbench.sources import ingest_source
root = sys.argv[1]
ingest_source(DataStore(f"{root}/data"), "digits")
torch.manual_seed(0)
Registry(f"{root}/registry.db").register("digits", MLP(MLPConfig(in_features=64, hidden=[16], out_features=10)),
                                         {"shape": [None, 64]}, {"shape": [None, 10]})
'''


def test_scoring_resumes_after_kill_9(tmp_path):
    env = {**os.environ, "WORKBENCH_PROGRESS": "0", "WORKBENCH_HOME": str(tmp_path / "ws")}
    subprocess.run([sys.executable, "-c", SETUP, str(tmp_path)], check=True, env=env, timeout=120)
    victim = subprocess.Popen([sys.executable, "-c", SCORE, str(tmp_path), "0.3"], env=env)
    chunks = lambda: list((tmp_path / "work").rglob("chunk-*.npy"))
    deadline = time.monotonic() + 120
    while len(chunks()) < 5:                                    # 18 chunks in all; kill after 5 are done
        assert victim.poll() is None and time.monotonic() < deadline, "the scoring process ended too early"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done = len(chunks())
    assert 5 <= done < 18
    rerun = subprocess.run([sys.executable, "-c", SCORE, str(tmp_path), "0"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    calls = int(rerun.stdout.split()[1])
    assert calls == 18 - done, (calls, done)                     # finished chunks were not redone
    check = subprocess.run([sys.executable, "-c", f"""
import numpy as np, torch
from workbench.data import DataStore
from workbench.registry import Registry
from workbench.serve import Predictor
store = DataStore({str(tmp_path / 'data')!r})
x = torch.tensor(store.arrays("digits")["x"].reshape(-1, 64))
direct = Predictor(Registry({str(tmp_path / 'registry.db')!r}), "digits@1").predict(x).numpy()
assert np.allclose(store.arrays("scores")["outputs"], direct, atol=1e-5)
assert store.card("scores").parents == ["digits@1"]
print("ok")
"""], env=env, capture_output=True, text=True, timeout=120)
    assert check.stdout.strip() == "ok", check.stderr[-2000:]
