"""Tracking across processes: a run launched in one process is reproduced, exactly, in another that finds the
entry point by import; the default store lives in the workspace."""
import os
import subprocess
import sys
import textwrap

EXPERIMENT = '''
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset
from workbench.models import SmallResNet, ResNetConfig
from workbench.tracking import TrackRun
from workbench.train import Learner, accuracy

def train(config, seed, run):
    digits = load_digits()
    x = torch.tensor(digits.images[:, None] / 16, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(seed)
    model = SmallResNet(ResNetConfig(num_classes=10, widths=config["widths"]))
    Learner(model, DataLoader(TensorDataset(x[:600], y[:600]), 32, shuffle=True),
            DataLoader(TensorDataset(x[1500:], y[1500:]), 300), lr=config["lr"], metrics={"accuracy": accuracy},
            device="cpu", seed=seed, callbacks=[TrackRun(run)]).fit(config["epochs"])
'''


def python(code: str, tmp_path, **env) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(tmp_path),
                                              "WORKBENCH_PROGRESS": "0", **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_a_run_is_reproduced_exactly_in_another_process(tmp_path):
    (tmp_path / "experiment.py").write_text(EXPERIMENT)
    home = str(tmp_path / "ws")
    run_id = python("""
        import experiment
        from workbench.tracking import RunStore, launch
        print(launch(RunStore(), experiment.train, {"lr": 3e-3, "widths": [8, 16], "epochs": 2}, seed=5, name="cnn"))
    """, tmp_path, WORKBENCH_HOME=home)
    assert (tmp_path / "ws" / "runs" / "runs.db").is_file()              # the default store is in the workspace
    report = python(f"""
        from workbench.tracking import RunStore, reproduce, runs
        table = reproduce(RunStore(), {run_id!r})                          # entry point found by import
        assert set(table.index) >= {{"accuracy", "valid_loss", "train_loss"}}, table
        assert table.equal.all(), table
        print(len(runs(RunStore(), tag="reproduces:{run_id}")))
    """, tmp_path, WORKBENCH_HOME=home)
    assert report == "1"


def test_a_missing_entry_point_is_a_clear_error(tmp_path):
    (tmp_path / "experiment.py").write_text(EXPERIMENT)
    run_id = python("""
        import experiment
        from workbench.tracking import RunStore, launch
        print(launch(RunStore("runs.db"), experiment.train, {"lr": 3e-3, "widths": [8], "epochs": 1}, seed=0))
    """, tmp_path)
    (tmp_path / "experiment.py").unlink()
    message = python(f"""
        from workbench.tracking import RunStore, TrackingError, reproduce
        try:
            reproduce(RunStore("runs.db"), {run_id!r})
        except TrackingError as e:
            print(e)
    """, tmp_path)
    assert "cannot find entry point experiment:train" in message and "pass fn=" in message
