# The two commands (see README): `make run` and `make test`. Both set up .venv first (tools/venv.sh),
# which installs nothing when the environment already matches settings.ini.
SHELL := /bin/bash
BIN := .venv/bin
WORKSPACE ?= $(or $(WORKBENCH_HOME),workspace)
WS := $(abspath $(WORKSPACE))

.PHONY: run test venv docs bench lab
run: venv  ## the main job: the reference pipeline, ingest → … → serve → monitor → retrain, into the workspace
	$(BIN)/workbench pipeline run pipelines/reference/pipeline.yaml --profile cpu-small --workspace $(WS)

test: venv  ## every check, in order: export sync, clean notebooks, nbdev_test, pytest tests/
	@bash tools/check.sh

venv:
	@bash tools/venv.sh

docs: venv  ## the offline docs site, into _docs/
	@bash tools/docs.sh _docs

bench: venv  ## every benchmark in benchmarks/: a table, and JSON in the workspace
	$(BIN)/python benchmarks/run.py --workspace $(WS)

lab: venv  ## JupyterLab on the project, with the workbench kernel
	$(BIN)/jupyter lab
