"""Two worker processes search one Optuna study through the run store's database: no trial is lost or duplicated,
and every trial is a tracked run of that study. On SQLite and on a real PostgreSQL server (`conftest.database`)."""
import os
import subprocess
import sys
import textwrap

WORKER = '''
import sys
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset
from workbench.models import MLP, MLPConfig
from workbench.tracking import RunStore, TrackRun
from workbench.train import Learner, accuracy
from workbench.tune import PruneTrial, search

digits = load_digits()
X, Y = torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target)

def space(trial):
    return {"lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True)}

def train(config, seed, run, trial):
    torch.manual_seed(seed)
    learn = Learner(MLP(MLPConfig(in_features=64, hidden=[16], out_features=10)),
                    DataLoader(TensorDataset(X[:800], Y[:800]), 64, shuffle=True),
                    DataLoader(TensorDataset(X[1400:], Y[1400:]), 400),
                    lr=config["lr"], metrics={"accuracy": accuracy}, device="cpu", seed=seed,
                    callbacks=[TrackRun(run), PruneTrial(trial, "accuracy")])
    return learn.fit(2)[-1]["accuracy"]

search(RunStore(sys.argv[1]), space, train, "shared", n_trials=4, seed=int(sys.argv[2]))
'''


def test_two_processes_search_one_study(database):
    db = database
    env = {**os.environ, "WORKBENCH_PROGRESS": "0"}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(db), str(seed)], env=env,
                                stderr=subprocess.PIPE, text=True)
               for seed in (1, 2)]
    for w in workers:
        assert w.wait(timeout=300) == 0, w.stderr.read()[-3000:]
    check = textwrap.dedent(f"""
        import optuna
        from workbench.tracking import RunStore, runs
        store = RunStore({str(db)!r})
        study = optuna.load_study(study_name="shared", storage=store.url)
        numbers = sorted(t.number for t in study.trials)
        assert numbers == list(range(8)), numbers
        assert all(t.state.name == "COMPLETE" for t in study.trials)
        tracked = runs(store, study="shared")
        assert len(tracked) == 8 and set(tracked.status) == {{"finished"}}, tracked
        assert set(tracked.id) == {{t.user_attrs["run_id"] for t in study.trials}}
        assert tracked["metric.objective"].max() > 0.5
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-3000:]
