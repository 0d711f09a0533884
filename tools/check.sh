#!/usr/bin/env bash
# The test command's checks, in order; stops at the first failure and says which check failed.
#   1. nbdev_export leaves workbench/ unchanged   (package and notebooks in sync)
#   2. nbdev_clean leaves nbs/, pipelines/ unchanged (notebooks committed clean)
#   3. nbdev_test passes                          (the unit tests in the library notebooks, in parallel)
#   4. pytest tests/ passes                       (cross-module, end-to-end, lessons, docs-site tests)
# Checks 1 and 2 run on a scratch copy, so they never overwrite work in progress.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.venv/bin
cd "$root"
fail() { printf '\nFAILED check %s\n' "$*" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r nbs pipelines case_studies workbench settings.ini "$scratch/"
[ -f pyproject.toml ] && cp pyproject.toml "$scratch/"
find "$scratch" -name __pycache__ -prune -exec rm -rf {} +

echo "== 1/4 notebooks and package in sync (nbdev_export)"
(cd "$scratch" && "$bin/nbdev_export") || fail "1/4: nbdev_export itself failed"
if ! diff -ru -x __pycache__ workbench "$scratch/workbench"; then
  fail "1/4 (sync): nbdev_export changes workbench/ as shown above: a module was edited by hand or a
notebook was not exported. Edit the notebook in nbs/, run .venv/bin/nbdev_export, commit both."
fi

echo "== 2/4 notebooks committed clean (nbdev_clean)"
(cd "$scratch" && "$bin/nbdev_clean" && "$bin/nbdev_clean" --fname pipelines && "$bin/nbdev_clean" --fname case_studies) ||
  fail "2/4: nbdev_clean itself failed"
if ! diff -rq -x .ipynb_checkpoints -x __pycache__ nbs "$scratch/nbs" || ! diff -rq -x __pycache__ pipelines "$scratch/pipelines" ||
   ! diff -rq -x __pycache__ case_studies "$scratch/case_studies"; then
  fail "2/4 (clean): nbdev_clean changes the notebooks listed above (execution counts or stray metadata).
Run .venv/bin/nbdev_clean (and --fname pipelines, --fname case_studies) and commit."
fi

export WORKBENCH_HOME="$scratch/workspace" WORKBENCH_PROGRESS=0 MPLBACKEND=agg
# Two workers share two cores: one math thread each. With the default (a thread per core in every worker) the
# spinning OpenMP threads fight over the cores and the notebook tests took 7 minutes instead of under 2.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Debian packages the tests need: chromium (docs-site browser tests), redis-server (the streaming broker),
# postgresql (the stores on a server database)
bash tools/apt.sh chromium redis-server postgresql || fail "3/4: could not install the Debian packages the tests need"
echo "== 3/4 notebook tests (nbdev_test)"
# the library notebooks, the case studies' and pipelines' aside; the lessons run in step 4 as an instructor runs them,
# in batch with papermill (tests/test_lessons.py)
"$bin/nbdev_test" --n_workers 2 --timing --skip_folder_re '^(lessons|[_.].*)$' ||
  fail "3/4 (nbdev_test): a notebook's tests failed, see above"

echo "== 4/4 tests/ (pytest)"
"$bin/python" -m pytest tests -n 2 -q -p no:cacheprovider --durations=30 || fail "4/4 (pytest tests/): see above"
# the green run's record, which workbench.readiness reads for its `ci` item (the commit, and whether it had edits)
dirty=false; [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=true
printf '{"commit": "%s", "dirty": %s, "finished": "%s"}\n' "$(git rev-parse HEAD 2>/dev/null)" "$dirty" \
  "$(date -u +%FT%TZ)" > .ci/passed.json.tmp && mv .ci/passed.json.tmp .ci/passed.json
echo "all checks passed"
