"""Explanation overhead: `workbench.explain.explain` with integrated gradients vs the same bare Captum call.

64 images 3×64×64, a small CNN (SmallResNet, widths 16 and 32, untrained: the cost does not depend on the weights),
IntegratedGradients with 50 steps from a zero baseline, a batch of 64 at a time, convergence delta on. Ours is
called as a user calls it: no target (so it first predicts the classes, one forward pass), returning an `Explanation`;
the baseline is Captum called on the same inputs with the classes already known. Goal (issue 18): overhead <= 5 %, a
time ratio <= 1.05.
Single-threaded, interleaved, 3 times each, medians compared.
"""
import statistics
import time

import torch
from captum.attr import IntegratedGradients

from workbench.explain import explain
from workbench.models import ResNetConfig, SmallResNet


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = SmallResNet(ResNetConfig(in_channels=3, num_classes=10, widths=[16, 32])).eval()
        x = torch.rand(64, 3, 64, 64)
        with torch.no_grad():
            targets = model(x).argmax(-1).tolist()
        bare = lambda: IntegratedGradients(model).attribute(x, torch.zeros_like(x), target=targets, n_steps=50,
                                                            internal_batch_size=len(x), return_convergence_delta=True)
        ours = lambda: explain(model, x, "integrated_gradients")
        timed(bare), timed(ours)                                   # warm-up: allocator, lazy imports
        times = {"ours": [], "bare": []}
        for _ in range(3):
            times["bare"].append(timed(bare))
            times["ours"].append(timed(ours))
    finally:
        torch.set_num_threads(threads)
    t_ours, t_bare = statistics.median(times["ours"]), statistics.median(times["bare"])
    return [{"name": "integrated gradients, 50 steps, 64 images 3x64x64 (median of 3)", "ours": t_ours,
             "baseline": t_bare, "baseline_name": "bare Captum call", "unit": "s", "goal": "<= 1.05",
             "overhead_percent": (t_ours / t_bare - 1) * 100}]


if __name__ == "__main__":
    print(run())
