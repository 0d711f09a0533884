"""Logging overhead: a small CNN trained by the Learner with and without TrackRun logging every step to SQLite.

Same model, data, batch size, optimizer and seed; TrackRun logs train_loss at every optimizer step and the epoch's
loss each epoch, with a flush per epoch, into a SQLite run store in a temporary folder. Goal (issue 7): the logging
in the training loop costs < 2 % of a small CNN's step time on CPU, i.e. a time ratio <= 1.02. The run is opened
before the clock starts (opening one records the environment and the git state: a one-off cost, reported apart).
Single-threaded, interleaved, 9 times each, medians compared. Also reported: one `Run.log` call in microseconds,
batched (the default) and unbatched (a transaction per call).
"""
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bench_train import BATCH, EPOCHS, cnn, data
from workbench.tracking import RunStore, TrackRun
from workbench.train import Learner


def fit(ds, callbacks=()) -> float:
    learn = Learner(cnn(), DataLoader(ds, BATCH, shuffle=True), opt="adam", lr=1e-3, device="cpu", callbacks=callbacks)
    start = time.perf_counter()
    learn.fit(EPOCHS)
    return time.perf_counter() - start


def per_call(store: RunStore, flush_every: float, n: int) -> float:
    run = store.start_run("calls")
    run.flush_every = flush_every
    start = time.perf_counter()
    for step in range(n):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.finish()
    return (time.perf_counter() - start) / n * 1e6


def run() -> list[dict]:
    ds = data()
    steps = EPOCHS * len(DataLoader(ds, BATCH))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = RunStore(Path(tmp) / "runs.db")
            plain, tracked, opening = [], [], []
            for _ in range(9):
                plain.append(fit(ds))
                start = time.perf_counter()
                run = store.start_run("bench")
                opening.append(time.perf_counter() - start)
                tracked.append(fit(ds, [TrackRun(run)]))
                run.finish()
            batched_us, unbatched_us = per_call(store, 1.0, 20_000), per_call(store, 0.0, 500)
    finally:
        torch.set_num_threads(threads)
    t_tracked, t_plain = statistics.median(tracked), statistics.median(plain)
    return [{"name": f"small CNN, {EPOCHS} epochs x {steps // EPOCHS} steps, log every step (median of 9)",
             "ours": t_tracked, "baseline": t_plain, "baseline_name": "no logging", "unit": "s", "goal": "<= 1.02",
             "overhead_percent": (t_tracked / t_plain - 1) * 100, "step_ms": t_plain / steps * 1e3,
             "start_run_ms": statistics.median(opening) * 1e3,
             "log_call_us_batched": batched_us, "log_call_us_unbatched": unbatched_us}]
