"""Learner throughput vs a hand-written PyTorch loop: same model, data, batch size and optimizer, one process.

Models: an MLP and a small CNN on scikit-learn's digits (1,797 samples, batch 64, Adam), on the CPU.
The raw loop is the minimum a person writes: zero_grad, forward, loss, backward, step (plus loss.item(), which
any loop that reports a loss pays too). Goal (issue 5): Learner throughput >= 0.97x the raw loop's, i.e. a time
ratio <= 1.03. The per-step overhead in microseconds is reported as well.
Both run single-threaded (torch.set_num_threads(1)) and interleaved, 9 times each; the medians are compared,
because on a 2-core machine run-to-run noise (+-3%) is larger than the effect being measured.
"""
import statistics
import time

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workbench.train import Learner

EPOCHS, BATCH = 10, 64


def data():
    digits = load_digits()
    return TensorDataset(torch.tensor(digits.images[:, None] / 16, dtype=torch.float32), torch.tensor(digits.target))


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def raw_loop(model, ds) -> float:
    dl = DataLoader(ds, BATCH, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(EPOCHS):
        for xb, yb in dl:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss.item()
    return time.perf_counter() - start


def learner(model, ds) -> float:
    learn = Learner(model, DataLoader(ds, BATCH, shuffle=True), opt="adam", lr=1e-3, device="cpu")
    start = time.perf_counter()
    learn.fit(EPOCHS)
    return time.perf_counter() - start


def run() -> list[dict]:
    ds = data()
    steps = EPOCHS * len(DataLoader(ds, BATCH))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for name, make in (("MLP", mlp), ("small CNN", cnn)):
            ours, raw = [], []
            for _ in range(9):  # interleaved: the machine's noise hits both alike
                raw.append(raw_loop(make(), ds))
                ours.append(learner(make(), ds))
            t_ours, t_raw = statistics.median(ours), statistics.median(raw)
            rows.append({"name": f"{name}, {EPOCHS} epochs x {steps // EPOCHS} steps (median of 9)", "ours": t_ours,
                         "baseline": t_raw, "baseline_name": "raw PyTorch loop", "unit": "s", "goal": "<= 1.03",
                         "samples_per_s": EPOCHS * len(ds) / t_ours, "raw_samples_per_s": EPOCHS * len(ds) / t_raw,
                         "throughput_ratio": t_raw / t_ours, "overhead_us_per_step": (t_ours - t_raw) / steps * 1e6})
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
