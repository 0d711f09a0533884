"The `workbench` console script, as a user runs it from a terminal."
import json

from conftest import BIN, run


def test_help_lists_the_commands():
    out = run([BIN / "workbench", "--help"]).stdout
    assert "info" in out and "Usage" in out


def test_info_json_reports_stack_device_and_workspace(tmp_path):
    env = {"WORKBENCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    info = json.loads(run([BIN / "workbench", "info", "--json"], env=env).stdout)
    assert info["workspace"] == str(tmp_path.resolve())
    assert info["device"] in ("cpu", "mps") or info["device"].startswith("cuda")
    assert info["packages"]["papermill"] == "2.7.0"


def test_unknown_command_is_a_usage_error():
    result = run([BIN / "workbench", "nope"], check=False)
    assert result.returncode == 2
    assert "No such command" in result.stderr
