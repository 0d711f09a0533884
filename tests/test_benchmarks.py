"benchmarks/run.py: finds bench_*.py files, prints ratios against the baseline, writes JSON to the workspace."
import json

from conftest import BIN, ROOT, run

FAST = '''
def run():
    return [{"name": "sum", "ours": 2.0, "baseline": 4.0, "baseline_name": "python loop", "goal": "<= 0.6"},
            {"name": "product", "ours": 3.0, "baseline": 2.0, "baseline_name": "numpy", "goal": ">= 2"},
            {"name": "no goal", "ours": 1.0, "baseline": 1.0}]
'''
BROKEN = '''
def run():
    raise RuntimeError("benchmark exploded")
'''


def test_runner_reports_ratios_and_writes_json(tmp_path):
    bench = tmp_path / "benches"
    bench.mkdir()
    (bench / "bench_fast.py").write_text(FAST)
    out = run([BIN / "python", ROOT / "benchmarks" / "run.py", "--dir", bench, "--workspace", tmp_path / "ws"]).stdout
    assert "bench_fast" in out and "0.50x" in out and "python loop" in out
    assert "goals: 1 met, 1 missed\n  ✗ bench_fast: product" in out       # 1.5x is short of its >= 2 goal
    report = json.loads((tmp_path / "ws" / "benchmarks" / "latest.json").read_text())
    assert report["results"][0]["ratio"] == 0.5
    assert [r["goal_met"] for r in report["results"]] == [True, False, None]


def test_a_failing_benchmark_is_reported_and_fails_the_run(tmp_path):
    bench = tmp_path / "benches"
    bench.mkdir()
    (bench / "bench_broken.py").write_text(BROKEN)
    result = run([BIN / "python", ROOT / "benchmarks" / "run.py", "--dir", bench, "--workspace", tmp_path / "ws"],
                 check=False)
    assert result.returncode == 1
    assert "ERROR" in result.stdout and "benchmark exploded" in result.stdout


def test_no_benchmarks_is_not_an_error(tmp_path):
    result = run([BIN / "python", ROOT / "benchmarks" / "run.py", "--dir", tmp_path, "--workspace", tmp_path / "ws"])
    assert "no benchmarks found" in result.stdout
    assert json.loads((tmp_path / "ws" / "benchmarks" / "latest.json").read_text())["results"] == []
