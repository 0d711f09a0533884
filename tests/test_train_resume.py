"""Exact resume under a real `kill -9`: a training process is killed at several points, resumed from its last
checkpoint, and must end with the same weights as an uninterrupted run, bit for bit (CPU)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TRAIN = r'''
import sys, time
from pathlib import Path
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from workbench.train import Callback, Checkpoint, Learner, latest_checkpoint, load_checkpoint, warmup_cosine

folder, resume, delay = Path(sys.argv[1]), sys.argv[2] == "resume", float(sys.argv[3])
torch.set_num_threads(1)
digits = load_digits()
ds = TensorDataset(torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target))
torch.manual_seed(3)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))

class Slow(Callback):
    def after_step(self): time.sleep(delay)

learn = Learner(model, DataLoader(ds, 64, shuffle=True), opt="adamw", lr=3e-3, seed=11,
                schedule=warmup_cosine(5, 3 * 29), callbacks=[Checkpoint(folder / "ckpt", every=1, keep=2), Slow()],
                device="cpu")
if resume and latest_checkpoint(folder / "ckpt"):
    load_checkpoint(learn, latest_checkpoint(folder / "ckpt"))
learn.fit(3)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "final.safetensors")
'''


def train(folder: Path, resume: bool = False, delay: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN, str(folder), "resume" if resume else "fresh", str(delay)],
                            env={**os.environ, "WORKBENCH_PROGRESS": "0"})


def latest_step(folder: Path) -> int:
    pointer = folder / "ckpt" / "latest"
    try:
        return int(pointer.read_text().split("-")[1])
    except (FileNotFoundError, IndexError, ValueError):
        return -1


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("straight")
    assert train(folder).wait(timeout=300) == 0
    return load_file(folder / "final.safetensors")


@pytest.mark.parametrize("kill_after_step", [3, 29, 30, 61])  # early, at an epoch's end (29 steps), just after, late
def test_kill_9_and_resume_gives_identical_weights(tmp_path, reference, kill_after_step):
    process = train(tmp_path, delay=0.03)
    deadline = time.monotonic() + 120
    while latest_step(tmp_path) < kill_after_step and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = latest_step(tmp_path)
    assert killed_at >= kill_after_step
    assert train(tmp_path, resume=True).wait(timeout=300) == 0
    resumed = load_file(tmp_path / "final.safetensors")
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), f"{name} differs after a kill at step {killed_at}"


# A kill -9 *inside* the saving code, at twenty random lines: a tracer counts the lines executed in `save_checkpoint`
# and `Checkpoint._save`, and the process kills itself (SIGKILL: no cleanup runs) at a random one. Each attempt is a
# child forked from one process that imported everything once (a fresh interpreter per kill cost ~10 s on 2 cores);
# the next child resumes from whatever `latest` names. After twenty kills a last child finishes, and its weights must
# equal the uninterrupted run's, bit for bit.
KILL_INSIDE_SAVE = r'''
import os, random, signal, sys
from pathlib import Path
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from workbench import train as wt

folder = Path(sys.argv[1])
torch.set_num_threads(1)
digits = load_digits()
ds = TensorDataset(torch.tensor(digits.data / 16, dtype=torch.float32), torch.tensor(digits.target))

def train(kill_at_line):
    "The same run as TRAIN (resumed from the latest checkpoint), killed at the `kill_at_line`-th line of saving code."
    left = kill_at_line
    def count(frame, event, arg):
        nonlocal left
        if event == "line":
            left -= 1
            if left == 0:
                os.kill(os.getpid(), signal.SIGKILL)
        return count
    targets, save = {wt.save_checkpoint.__code__, wt.Checkpoint._save.__code__}, wt.Checkpoint._save
    def traced_save(*args):
        "`Checkpoint._save` (and the `save_checkpoint` it calls) with the line counter on: tracing only saves is cheap."
        sys.settrace(lambda frame, event, arg: count if frame.f_code in targets else None)
        try:
            return save(*args)
        finally:
            sys.settrace(None)
    if kill_at_line:
        wt.Checkpoint._save = traced_save
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.3), nn.Linear(64, 10))
    learn = wt.Learner(model, DataLoader(ds, 64, shuffle=True), opt="adamw", lr=3e-3, seed=11,
                       schedule=wt.warmup_cosine(5, 3 * 29), device="cpu",
                       callbacks=[wt.Checkpoint(folder / "ckpt", every=1, keep=2)])
    if wt.latest_checkpoint(folder / "ckpt"):
        wt.load_checkpoint(learn, wt.latest_checkpoint(folder / "ckpt"))
    learn.fit(3)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "final.safetensors")

import torch._dynamo  # noqa: F401 (the optimizer imports it lazily: once here, not again in every child)
rng = random.Random(0)
for attempt in range(21):
    line = rng.randint(1, 60) if attempt < 20 else 0             # a few saves' worth of lines; the last one finishes
    pid = os.fork()
    if pid == 0:
        train(line)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    expected = signal.SIGKILL if line else 0
    got = os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    assert got == expected, f"attempt {attempt}: expected {expected}, got {got}"
    latest = (folder / "ckpt" / "latest").read_text() if (folder / "ckpt" / "latest").exists() else "-"
    print(attempt, line, latest, flush=True)
'''


def test_twenty_kills_inside_checkpoint_saving_still_resume_bit_exact(tmp_path, reference):
    result = subprocess.run([sys.executable, "-c", KILL_INSIDE_SAVE, str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "WORKBENCH_PROGRESS": "0"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [line.split()[2] for line in result.stdout.splitlines()[:20]]
    assert len(set(steps)) > 5, steps                                   # the kills landed at many different steps
    resumed = load_file(tmp_path / "final.safetensors")
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), f"{name} differs after kills at {steps}"
