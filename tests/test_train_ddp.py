"""Data parallelism under torchrun: 2 CPU processes (gloo) with per-rank batch 16 reach the same weights as
1 process with batch 32, on the same data and seed (DDP averages gradients across ranks)."""
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

SCRIPT = r'''
import sys
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from safetensors.torch import save_file
from sklearn.datasets import load_digits
from workbench.train import Checkpoint, Learner, init_distributed, unwrap

rank, world = init_distributed()
out, batch = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
digits = load_digits()
ds = TensorDataset(torch.tensor(digits.data[:512] / 16, dtype=torch.float32), torch.tensor(digits.target[:512]))
torch.manual_seed(5)
model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
learn = Learner(model, DataLoader(ds, batch), opt="sgd", lr=0.05, seed=1, device="cpu",
                callbacks=[Checkpoint(out + "/ckpt")])
learn.fit(2)
if learn.is_main:
    save_file({k: v.contiguous() for k, v in unwrap(learn.model).state_dict().items()}, out + "/final.safetensors")
print(f"rank {rank}/{world} steps {learn.step} callbacks {len(learn.callbacks)}")
'''


def test_two_cpu_ranks_match_one_process_with_the_global_batch(tmp_path):
    env = {**os.environ, "WORKBENCH_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    single = subprocess.run([sys.executable, script, tmp_path / "one", "32"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          script, tmp_path / "two", "16"], env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "rank 0/2 steps 32 callbacks 1" in ddp.stdout, ddp.stdout   # rank 0 checkpoints…
    assert "rank 1/2 steps 32 callbacks 0" in ddp.stdout, ddp.stdout   # …rank 1 runs no main-only callback
    assert "rank 0/1 steps 32" in single.stdout
    one, two = load_file(tmp_path / "one" / "final.safetensors"), load_file(tmp_path / "two" / "final.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6)
    assert (tmp_path / "two" / "ckpt" / "latest").exists()
