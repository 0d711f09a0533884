"""Concurrent promotions: four processes each promote a different approved version of one model to production at
the same moment. Exactly one version ends in production, every other one is archived, each transition is recorded,
and the audit trail's hash chain is intact with one entry per promotion. Every test runs twice: on SQLite (the
embedded default) and on a real PostgreSQL server started for the session (`conftest.database`)."""
import os
import subprocess
import sys
import textwrap


SETUP = '''
import sys, torch
from workbench.governance import Governance
from workbench.models import MLP, MLPConfig
from workbench.registry import Registry
gov = Governance(Registry(sys.argv[1]))
admin = gov.bootstrap("root")
roles = [("ana", "data-scientist"), ("raj", "reviewer"), ("ops", "release-manager")]
keys = {n: gov.add_user(admin, n, [r]) for n, r in roles}
(gov.policies).mkdir(parents=True, exist_ok=True)
(gov.policies / "m.yaml").write_text("require_lineage: false\\n")
schema = ({"shape": [None, 4]}, {"shape": [None, 2]})
for _ in range(4):
    v = gov.register(keys["ana"], "m", MLP(MLPConfig(in_features=4, hidden=[3], out_features=2)), *schema,
                     metrics={"accuracy": 1.0})
    gov.promote(keys["ops"], "m", v, "staging")
    gov.approve(keys["raj"], gov.request(keys["ana"], "m", v, "production"))
print(keys["ops"])
'''

PROMOTE = '''
import sys, time
from workbench.governance import Governance
from workbench.registry import Registry
gov = Governance(Registry(sys.argv[1]))
while time.time() < float(sys.argv[4]):          # start together
    time.sleep(0.001)
print(gov.promote(sys.argv[2], "m", int(sys.argv[3]), "production"))
'''


def python(code, *args, timeout=120):
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "WORKBENCH_PROGRESS": "0"})


def test_four_concurrent_promotions_leave_one_production_version(database):
    setup = python(SETUP, database)
    out, err = setup.communicate(timeout=120)
    assert setup.returncode == 0, err[-3000:]
    ops_key = out.strip().splitlines()[-1]
    import time
    start = time.time() + 3
    workers = [python(PROMOTE, database, ops_key, v, start) for v in (1, 2, 3, 4)]
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err[-3000:]
    check = python(f'''
        from workbench.governance import Governance
        from workbench.registry import Registry
        registry = Registry({database!r})
        gov = Governance(registry)
        table = registry.versions("m")
        assert (table.stage == "production").sum() == 1, table
        assert sorted(table.stage) == ["archived"] * 3 + ["production"], table
        promotions = [e for e in gov.audit.entries()
                      if e["action"] == "promote" and e["details"]["stage"] == "production"
                      and e["outcome"] != "intent"]
        assert len(promotions) == 4 and all(e["outcome"] == "ok" for e in promotions), promotions
        assert gov.audit.unfinished() == []              # every intent has its outcome
        gov.audit.verify()
        moves = registry.transitions("m")
        assert (moves.to_stage == "production").sum() == 4 and (moves.to_stage == "archived").sum() == 3, moves
        print("ok")
    ''')
    out, err = check.communicate(timeout=120)
    assert out.strip() == "ok", err[-3000:]


# No state change without its audit record: a promotion killed (SIGKILL) right after the registry moved the version, or
# right before it did, leaves an intent entry that `unfinished()` lists and `verify()` warns about; never a change with
# no trace. The kill is exact: the registry's internal `_move` is wrapped to kill the process before or after it runs.
KILLED_PROMOTION = '''
import os, signal, sys
from workbench.governance import Governance
from workbench.registry import Registry
registry = Registry(sys.argv[1])
move, when = registry._move, sys.argv[4]
def dying_move(*args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    changes = move(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
registry._move = dying_move
Governance(registry).promote(sys.argv[2], "m", int(sys.argv[3]), "production")
'''


def test_a_promotion_killed_between_change_and_record_leaves_an_unfinished_intent(database):
    import warnings

    from workbench.governance import Governance
    from workbench.registry import Registry
    setup = python(SETUP, database)
    out, err = setup.communicate(timeout=120)
    assert setup.returncode == 0, err
    ops = out.strip().splitlines()[-1]
    for version, when in ((1, "before"), (2, "after")):
        killed = python(KILLED_PROMOTION, database, ops, version, when)
        killed.communicate(timeout=120)
        assert killed.returncode == -9
    registry = Registry(database)
    gov = Governance(registry)
    stages = dict(zip(registry.versions("m").version, registry.versions("m").stage))
    assert stages[1] == "staging" and stages[2] == "production"         # killed before the move / after it
    unfinished = gov.audit.unfinished()
    assert [(e["action"], e["target"]) for e in unfinished] == [("promote", "m@1"), ("promote", "m@2")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gov.audit.verify()                                              # the chain is whole, and it says what is open
    assert "2 change(s) began and never recorded an outcome" in str(caught[0].message)
