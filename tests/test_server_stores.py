"""The registry on a real PostgreSQL server (started by `conftest.postgres`) under real concurrency: four processes
registering at once lose no version and break no audit chain. Concurrent promotions, a killed promotion
(test_governance.py) and a study shared by two processes (test_tune.py) run on PostgreSQL too."""
import os
import subprocess
import sys
import textwrap
import time

SETUP = '''
import sys
from workbench.governance import Governance
from workbench.registry import Registry
gov = Governance(Registry(sys.argv[1]))
admin = gov.bootstrap("root")
(gov.policies).mkdir(parents=True, exist_ok=True)
(gov.policies / "m.yaml").write_text("require_lineage: false\\n")
print(gov.add_user(admin, "ana", ["data-scientist"]))
'''

REGISTER = '''
import sys, time
from workbench.governance import Governance
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
url, key, start, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
gov = Governance(Registry(url))
model = MLP(MLPConfig(in_features=4, hidden=[], out_features=2))
while time.time() < start:                      # all four begin together
    time.sleep(0.001)
print(" ".join(str(gov.register(key, "m", model, {"shape": [None, 4]}, {"shape": [None, 2]}, metrics={"accuracy": 1.0}))
               for _ in range(n)))
'''


def python(code, *args):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "WORKBENCH_PROGRESS": "0"})


def finished(process, timeout=300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def test_four_processes_register_400_versions_and_lose_none(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "workspace"))
    url = postgres()
    key = finished(python(SETUP, url)).strip().splitlines()[-1]
    start = time.time() + 5
    workers = [python(REGISTER, url, key, start, 100) for _ in range(4)]
    returned = [int(v) for w in workers for v in finished(w).split()]
    assert sorted(returned) == list(range(1, 401)), "each registration got its own version number"

    from workbench.governance import Governance
    from workbench.registry import Registry
    registry = Registry(url)
    table = registry.versions("m")
    assert sorted(table.version) == list(range(1, 401))
    weights = [registry.resolve(f"m@{v}")["path"] for v in table.version]
    assert len(set(weights)) == 400 and all(map(os.path.isfile, weights)), "every version has its own weights on disk"
    gov = Governance(registry)
    gov.audit.verify()                                                   # the chain is whole
    registered = [e for e in gov.audit.entries() if e["action"] == "register" and e["outcome"] == "ok"]
    assert len(registered) == 400 and gov.audit.unfinished() == []

