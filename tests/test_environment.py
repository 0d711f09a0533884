"settings.ini is the single source of versions: environment.yml and the installed venv must agree with it."
import hashlib
import re
from configparser import ConfigParser
from importlib.metadata import version

import yaml

from conftest import ROOT


def pins() -> list[str]:
    cfg = ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    d = cfg["DEFAULT"]
    return d["requirements"].split() + d["dev_requirements"].split()


def test_every_requirement_is_pinned_exactly():
    loose = [req for req in pins() if "==" not in req]
    assert not loose, f"settings.ini requirements without an exact == pin: {loose}"


def test_environment_yml_matches_settings_ini():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps, f"environment.yml must ask for python=3.11; has {deps}"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    listed = sorted(req for req in pip_section if not req.startswith("-e"))
    assert listed == sorted(pins()), (
        f"environment.yml and settings.ini disagree:\n only in environment.yml: {sorted(set(listed) - set(pins()))}"
        f"\n only in settings.ini: {sorted(set(pins()) - set(listed))}")


def test_installed_versions_match_the_pins():
    wrong = {}
    for req in pins():
        name, want = req.split("==")
        have = version(name).split("+")[0]
        if have != want:
            wrong[name] = (want, have)
    assert not wrong, f"installed versions differ from settings.ini (pinned, installed): {wrong}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_is_fresh_and_holds_every_pin():
    "tools/requirements.lock was made from today's pins (else venv.sh ignores it) and locks each at its pinned version."
    lock = (ROOT / "tools" / "requirements.lock").read_text().splitlines()
    made_from = next(line.split(": ", 1)[1] for line in lock if line.startswith("# pins: "))
    assert made_from == hashlib.sha256(("\n".join(pins()) + "\n").encode()).hexdigest()[:16], \
        "settings.ini's pins changed since tools/requirements.lock was written: run tools/lock.sh and commit the lock"
    locked = {canonical(name): pinned for name, pinned in
              (line.split("==") for line in lock if line and not line.startswith("#"))}
    off = {req: locked.get(canonical(req.split("==")[0])) for req in pins()
           if locked.get(canonical(req.split("==")[0])) != req.split("==")[1]}
    assert not off, f"pins missing from the lock or locked at another version (pin: locked): {off}"
