"""Pipelines on a real Ray cluster started by the test: a head and a worker node, one CPU each, as `ray start`
processes on loopback. Steps run as Ray tasks placed by their declared resources (two steps at once land on the two
nodes), give the same outputs as local kernels, a step asking for a GPU the cluster lacks is refused before anything
runs, and a step whose Ray worker is killed mid-step is retried, or, with no retries left, reported and resumed."""
import os
import secrets
import shutil
import signal
import sys
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from conftest import BIN, free_port
from workbench.pipeline import PipelineError, resume, run_pipeline

SLEEP_S = 4          # how long the two parallel steps overlap


def notebook(path: Path, parameters: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    first = nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})
    nb.cells = [first, *map(nbformat.v4.new_code_cell, cells)]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def cluster():
    "A two-node Ray cluster (head + worker, 1 CPU each, no GPU) for this module: its address."
    port, temp = free_port(), tempfile.mkdtemp(prefix="ray-", dir="/tmp")     # short: Ray's socket paths have a limit
    token = Path(temp) / "token"                 # Ray's token authentication, with a token of this cluster's own
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)                      # this process is the driver: it authenticates the same way
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000", "--disable-usage-stats"]
    head = subprocess.Popen([BIN / "ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--include-dashboard=false", f"--temp-dir={temp}", *common], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    nodes = []
    try:
        import ray
        deadline = time.time() + 180
        worker = None
        while time.time() < deadline:
            if worker is None and subprocess.run([BIN / "ray", "health-check", f"--address={address}"],
                                                 env=env, capture_output=True).returncode == 0:
                worker = subprocess.Popen([BIN / "ray", "start", f"--address={address}", "--node-ip-address=127.0.0.1",
                                           *common], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                nodes.append(worker)
                ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            if worker is not None and sum(n["Alive"] for n in ray.nodes()) == 2:
                break
            assert head.poll() is None, f"ray head exited: {head.stderr.read()[-2000:]}"
            time.sleep(0.5)
        else:
            pytest.fail("the Ray cluster did not come up with two nodes in 180 s")
        yield address
    finally:
        import ray
        ray.shutdown()
        for process in [*nodes, head]:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(temp, ignore_errors=True)
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def toy(tmp_path):
    "Two independent steps that take a while, and a third that joins them."
    body = f"import os, time\ntime.sleep({SLEEP_S})\nfrom workbench.pipeline import record_outputs\n"
    notebook(tmp_path / "a.ipynb", "n = 3\nstep_outputs = ''",
             body + "record_outputs(step_outputs, values=list(range(n)))")
    notebook(tmp_path / "b.ipynb", "n = 3\nstep_outputs = ''", body + "record_outputs(step_outputs, total=n * 10)")
    notebook(tmp_path / "c.ipynb", "values = []\ntotal = 0\nstep_outputs = ''",
             "from workbench.pipeline import record_outputs\nrecord_outputs(step_outputs, answer=sum(values) + total)")
    spec = {"name": "toy", "workers": 2, "steps": {
        "a": {"notebook": "a.ipynb", "outputs": ["values"]},
        "b": {"notebook": "b.ipynb", "outputs": ["total"]},
        "c": {"notebook": "c.ipynb", "inputs": {"values": "a.values", "total": "b.total"}, "outputs": ["answer"]}}}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "toy.yaml"


def test_steps_run_as_ray_tasks_across_nodes_with_the_local_outputs(cluster, toy, tmp_path):
    on_ray = run_pipeline(toy, workspace=tmp_path / "ray-ws", executor="ray", address=cluster)
    local = run_pipeline(toy, workspace=tmp_path / "local-ws")
    assert on_ray["status"] == local["status"] == "succeeded"
    outputs = lambda record: {name: step["outputs"] for name, step in record["steps"].items()}
    assert outputs(on_ray) == outputs(local) == {"a": {"values": [0, 1, 2]}, "b": {"total": 30}, "c": {"answer": 33}}
    placed = {name: step["placed"] for name, step in on_ray["steps"].items()}
    assert placed["a"]["node"] != placed["b"]["node"], "two 1-CPU steps at once fill both 1-CPU nodes"
    assert all(p["pid"] != os.getpid() for p in placed.values())          # in Ray workers, not in the driver
    port = lambda address: address.rsplit(":", 1)[1]                   # Ray names the node by its own IP
    assert on_ray["executor"] == "ray" and port(on_ray["cluster"]) == port(cluster)
    assert (Path(on_ray["folder"]) / "report.html").is_file()
    again = run_pipeline(toy, workspace=tmp_path / "ray-ws", executor="ray", address=cluster)
    assert {s["status"] for s in again["steps"].values()} == {"cached"}     # the same cache as local runs


def test_a_step_needing_a_gpu_the_cluster_lacks_is_refused_before_anything_runs(cluster, toy, tmp_path):
    spec = yaml.safe_load(toy.read_text())
    spec["steps"]["b"]["resources"] = {"gpus": 1}
    toy.write_text(yaml.safe_dump(spec))
    with pytest.raises(PipelineError, match="step 'b' needs 1 CPU and 1 GPU; the largest node of the Ray cluster has "
                                            "1 CPU and 0 GPU"):
        run_pipeline(toy, workspace=tmp_path / "ws", executor="ray", address=cluster)
    assert not (tmp_path / "ws" / "pipelines").exists()


KILLABLE = '''
import os, time
from pathlib import Path
attempt = Path(marks) / f"attempt-{len(list(Path(marks).iterdir()))}"
attempt.write_text(str(os.getppid()))           # the Ray worker running this step (papermill started this kernel)
while Path(marks, "attempt-0").exists() and len(list(Path(marks).iterdir())) == 1:
    time.sleep(0.2)                                # the first attempt waits to be killed
from workbench.pipeline import record_outputs
record_outputs(step_outputs, attempts=len(list(Path(marks).iterdir())))
'''


def killed_worker(marks: Path, timeout: float = 120) -> int:
    "Wait for the step's first attempt, SIGKILL its Ray worker; the pid."
    deadline = time.time() + timeout
    while not (marks / "attempt-0").exists():
        assert time.time() < deadline, "the step never started"
        time.sleep(0.2)
    time.sleep(0.2)
    pid = int((marks / "attempt-0").read_text())
    os.kill(pid, signal.SIGKILL)
    return pid


@pytest.mark.parametrize("retries", [1, 0])
def test_a_step_whose_worker_is_killed_is_retried_or_reported_and_resumed(cluster, tmp_path, retries):
    import threading
    marks = tmp_path / "marks"
    marks.mkdir()
    notebook(tmp_path / "slow.ipynb", f"marks = {str(marks)!r}\nstep_outputs = ''", KILLABLE)
    spec = {"name": "killable", "steps": {"slow": {"notebook": "slow.ipynb", "outputs": ["attempts"],
                                                   "resources": {"retries": retries}}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    killed = []
    killer = threading.Thread(target=lambda: killed.append(killed_worker(marks)))
    killer.start()
    if retries:
        record = run_pipeline(tmp_path / "p.yaml", workspace=tmp_path / "ws", executor="ray", address=cluster)
        killer.join()
        assert record["steps"]["slow"]["outputs"] == {"attempts": 2}           # Ray ran it again on a new worker
        assert record["steps"]["slow"]["placed"]["pid"] != killed[0]
        return
    with pytest.raises(PipelineError, match="step 'slow': its Ray worker died") as failure:
        run_pipeline(tmp_path / "p.yaml", workspace=tmp_path / "ws", executor="ray", address=cluster)
    killer.join()
    run_id = str(failure.value).split(" run ", 1)[1].split()[0]
    record = resume(run_id, tmp_path / "ws")
    assert record["status"] == "succeeded" and record["executor"] == "ray" and record["attempts"] == 2
    assert record["steps"]["slow"]["outputs"] == {"attempts": 2}


class Flat:
    "Digits are 8x8 images; the model reads them flat (a predictor subclass, shipped to the Ray workers by value)."
    def validate(self, inputs):
        return super().validate(np.asarray(inputs).reshape(len(inputs), -1))


def test_batch_scoring_on_ray_equals_local_and_resumes_a_crashed_local_run(cluster, tmp_path):
    import ray.cloudpickle
    import torch

    from workbench.batch import score_dataset
    from workbench.data import DataStore
    from workbench.models import MLP, MLPConfig
    from workbench.registry import Registry
    from workbench.serve import Predictor
    from workbench.sources import ingest_source
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])    # a test module is not importable on workers
    store, registry = DataStore(tmp_path / "data"), Registry(tmp_path / "registry.db")
    digits = ingest_source(store, "digits")
    torch.manual_seed(0)
    registry.register("digits", MLP(MLPConfig(in_features=64, hidden=[16], out_features=10)),
                      {"shape": [None, 64]}, {"shape": [None, 10]})
    FlatPredictor = type("FlatPredictor", (Flat, Predictor), {})

    class Crashing(FlatPredictor):
        def predict(self, x, calls=[]):
            calls.append(1)
            if len(calls) == 4:
                raise RuntimeError("injected crash on the fourth chunk")
            return super().predict(x)

    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="injected crash"):
        score_dataset(store, digits.ref, Crashing(registry, "digits@1"), "crashed", chunk_size=200, work=work)
    assert len(list(work.rglob("chunk-*.npy"))) == 3
    finished = score_dataset(store, digits.ref, FlatPredictor(registry, "digits@1"), "finished", chunk_size=200,
                             work=work, executor="ray", address=cluster)            # the other 6 chunks, on Ray
    on_ray = score_dataset(store, digits.ref, FlatPredictor(registry, "digits@1"), "on-ray", chunk_size=200,
                           executor="ray", address=cluster)
    local = score_dataset(store, digits.ref, FlatPredictor(registry, "digits@1"), "local", chunk_size=200)
    outputs = {c.name: store.arrays(c.name)["outputs"] for c in (finished, on_ray, local)}
    assert outputs["local"].shape == (1797, 10)
    assert np.array_equal(outputs["on-ray"], outputs["local"]) and np.array_equal(outputs["finished"], outputs["local"])
    assert on_ray.parents == [digits.ref] and "model digits@1" in on_ray.source


def test_a_search_by_two_ray_workers_shares_one_study(cluster, tmp_path):
    import optuna
    import ray.cloudpickle

    from workbench.tracking import RunStore, runs
    from workbench.tune import search_on_ray
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    store = RunStore(tmp_path / "runs.db")
    study = search_on_ray(store, quadratic_space, quadratic, "shared", n_trials=8, workers=2, address=cluster,
                          sampler="random")
    assert isinstance(study, optuna.Study) and sorted(t.number for t in study.trials) == list(range(8))
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    tracked = runs(store, study="shared")
    assert len(tracked) == 8 and set(tracked.id) == {t.user_attrs["run_id"] for t in study.trials}
    assert len({t.params["x"] for t in study.trials}) == 8          # two samplers, differently seeded


def quadratic_space(trial):
    return {"x": trial.suggest_float("x", -3, 3)}


def quadratic(config, seed, run, trial):
    run.log({"pid": os.getpid()})
    return -(config["x"] - 1) ** 2


def digits_learner(params, seed):
    import torch
    from sklearn.datasets import load_digits
    from torch.utils.data import DataLoader, TensorDataset

    from workbench.models import MLP, MLPConfig
    from workbench.train import Learner, accuracy
    digits = load_digits()
    X, Y = torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target)
    torch.manual_seed(seed)
    return Learner(MLP(MLPConfig(in_features=64, hidden=[16], out_features=10)),
                   DataLoader(TensorDataset(X[:600], Y[:600]), 64, shuffle=True),
                   DataLoader(TensorDataset(X[1400:], Y[1400:]), 400), lr=params["lr"],
                   metrics={"accuracy": accuracy}, device="cpu", seed=seed)


def test_population_based_training_on_ray_equals_the_local_schedule(cluster, tmp_path):
    "A round's members train in parallel as Ray tasks; checkpoints resume exactly: the schedule equals the local one."
    import pandas as pd
    import ray.cloudpickle

    from workbench.tracking import RunStore, runs
    from workbench.tune import pbt
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    settings = dict(space={"lr": (1e-3, 3e-1)}, metric="accuracy", population=4, rounds=2, study="pbt", seed=3)
    local = pbt(RunStore(tmp_path / "local.db"), digits_learner, folder=tmp_path / "local", **settings)
    store = RunStore(tmp_path / "ray.db")
    on_ray = pbt(store, digits_learner, folder=tmp_path / "ray", executor="ray", address=cluster, **settings)
    pd.testing.assert_frame_equal(on_ray, local)
    assert on_ray.copied_from.notna().sum() == 1                       # one member replaced, after round 0
    tracked = runs(store, study="pbt")
    assert len(tracked) == 4 and set(tracked.status) == {"finished"}
    assert (tracked["metric.epoch"] == 2).all()                       # every round's epochs logged by the workers


def test_a_process_in_one_cluster_is_refused_another(cluster, toy, tmp_path):
    from workbench.core import connect_ray
    joined = connect_ray(cluster)
    assert joined.rsplit(":", 1)[1] == cluster.rsplit(":", 1)[1]       # the same cluster, named by the node's IP
    other = f"127.0.0.1:{int(cluster.rsplit(':', 1)[1]) + 1}"
    with pytest.raises(RuntimeError, match=f"already works with the Ray cluster at {joined}, not {other}"):
        run_pipeline(toy, workspace=tmp_path / "ws", executor="ray", address=other)
