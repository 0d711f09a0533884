"""Run every benchmark in this folder, print one table, write the results as JSON under the workspace.

A benchmark is a file `bench_*.py` with a function `run() -> list[dict]`. Each dict is one row:
`name`, `ours` and `baseline` (seconds, or another unit given as `unit`, lower is better), and
`baseline_name` (what we compare with: a raw PyTorch loop, pandas, the peer library...), and where the
project has one, `goal`: a bound on the ratio ("<= 1.03", ">= 4"). The runner adds `ratio = ours / baseline`,
measured in the same run, so machines of different speed agree, marks each goal met (✓) or missed (✗), and
ends with the count of misses: the table says at a glance what is behind.
Usage: python benchmarks/run.py [--workspace DIR] [--only PATTERN] [--dir DIR]
"""
import argparse
import datetime as dt
import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

from workbench.core import Workspace, atomic_write


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise TypeError(f"{path.name} has no run() function returning a list of result rows")
    return module


def run_one(path: Path) -> list[dict]:
    "The rows of one benchmark, each with its ratio; a failing benchmark gives one row with its error."
    start = time.perf_counter()
    try:
        rows = load(path).run()
    except Exception:
        return [{"benchmark": path.stem, "name": "-", "error": traceback.format_exc(limit=3)}]
    for row in rows:
        row.setdefault("unit", "s")
        row["benchmark"] = path.stem
        row["ratio"] = row["ours"] / row["baseline"] if row.get("baseline") else None
        row["wall_seconds"] = round(time.perf_counter() - start, 3)
    return rows


def goal_met(row: dict) -> bool | None:
    "Whether the row's ratio meets its `goal` ('<= x' or '>= x'); None without a goal or a ratio."
    goal, ratio = row.get("goal"), row.get("ratio")
    if not goal or ratio is None:
        return None
    op, _, bound = goal.partition(" ")
    if op not in ("<=", ">=") or not bound:
        raise ValueError(f"{row['benchmark']} {row['name']!r}: goal {goal!r} is not '<= number' or '>= number'")
    return ratio <= float(bound) if op == "<=" else ratio >= float(bound)


def table(rows: list[dict]) -> str:
    head = ("benchmark", "case", "ours", "baseline", "vs", "ratio", "goal", "met")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append((r["benchmark"], "ERROR", "-", "-", "-", r["error"].strip().splitlines()[-1], "-", "-"))
            continue
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        met = {True: "✓", False: "✗", None: "-"}[goal_met(r)]
        lines.append((r["benchmark"], r["name"], f"{r['ours']:.4g} {r['unit']}", f"{r['baseline']:.4g} {r['unit']}",
                      r.get("baseline_name", "-"), ratio, r.get("goal", "-"), met))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    fmt = lambda line: "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths))
    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths), *map(fmt, lines[1:])])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default=None, help="workspace root (default: $WORKBENCH_HOME or ./workspace)")
    p.add_argument("--only", default="", help="run only benchmarks whose file name contains this")
    p.add_argument("--dir", default=Path(__file__).parent, type=Path, help="folder of bench_*.py files")
    args = p.parse_args(argv)
    paths = sorted(path for path in args.dir.glob("bench_*.py") if args.only in path.name)
    rows = [row for path in paths for row in run_one(path)]
    print(table(rows) if rows else f"no benchmarks found in {args.dir} (files named bench_*.py)")
    for row in rows:
        if "error" not in row:
            row["goal_met"] = goal_met(row)
    missed = [f"{r['benchmark']}: {r['name']}" for r in rows if r.get("goal_met") is False]
    print(f"goals: {sum(r.get('goal_met') is True for r in rows)} met, {len(missed)} missed"
          + "".join(f"\n  ✗ {m}" for m in missed))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"created": stamp, "python": platform.python_version(), "machine": platform.machine(),
              "benchmarks": [path.stem for path in paths], "results": rows}
    folder = Workspace(args.workspace).path("benchmarks")
    for name in (f"{stamp}.json", "latest.json"):
        atomic_write(folder / name, json.dumps(report, indent=2))
    print(f"results: {folder / 'latest.json'}")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
