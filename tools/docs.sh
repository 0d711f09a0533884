#!/usr/bin/env bash
# Build the docs site offline into $1 (default _docs/), without Quarto:
#   1. execute the notebooks (in a scratch copy) so pages show fresh outputs, while nbs/ stays clean
#      ($DOCS_EXECUTE, a file-name glob, limits which: the docs test executes one, nbdev_test runs them all);
#   2. nbdev_proc_nbs -> _proc/ (show_doc rendered, hidden/export cells handled, Quarto metadata);
#   3. tools/docs_prepare.py turns nbdev's Quarto conventions into myst-nb ones;
#   4. sphinx-build (myst-nb + furo) renders the HTML site.
# nbdev's Quarto files (nbs/_quarto.yml, nbdev.yml, sidebar.yml) stay valid, so `nbdev_docs` works
# for anyone who has Quarto.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/_docs}")
bin=$root/.venv/bin
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cp -r "$root/nbs" "$root/pipelines" "$root/settings.ini" "$scratch/"   # nbs/ reads ../pipelines/
rm -rf "$scratch"/pipelines/*/workspace
export WORKBENCH_HOME="$scratch/workspace" WORKBENCH_PROGRESS=0
# two notebooks execute at a time on two cores: one math thread each (a thread per core in every kernel made the
# spinning OpenMP threads fight: the chat and safety chapters alone ran over 7 minutes each)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
export MPLBACKEND=module://matplotlib_inline.backend_inline  # figures as outputs, whatever the caller set
cd "$scratch"
# Executed notebooks are cached by content (the notebook's bytes and the environment's lock): a build after one
# notebook changed executes that one only. A change to the library that alters another notebook's output shows once
# that notebook changes, or with DOCS_FRESH=1 (execute everything). Measured on two cores: a cold build (DOCS_FRESH=1)
# 20 min 23 s, of which executing the 57 notebooks about 19 min; with one notebook changed, 84 s.
cache=${WORKBENCH_CACHE:-$HOME/.cache/workbench}/docs-executed
mkdir -p "$cache"
lock=$(sha256sum "$root/tools/requirements.lock" | cut -c1-16)
execute() {  # notebook: the cached executed copy when there is one, else execute it and keep a copy
  key=$(cat "$1" | sha256sum | cut -c1-32)-$lock
  if [ -z "${DOCS_FRESH:-}" ] && [ -f "$cache/$key.ipynb" ]; then cp "$cache/$key.ipynb" "$1"; return; fi
  local started=$SECONDS
  (cd "$(dirname "$1")" && "$bin/jupyter" nbconvert --to notebook --execute --inplace --log-level=ERROR \
     --ExecutePreprocessor.kernel_name=workbench --ExecutePreprocessor.timeout=600 \
     '--ExecutePreprocessor.extra_arguments=["--IPKernelApp.log_level=ERROR"]' "$(basename "$1")") &&
    cp "$1" "$cache/.$key.tmp" && mv "$cache/.$key.tmp" "$cache/$key.ipynb" &&
    echo "  executed ${1#nbs/} in $((SECONDS - started)) s"
}
export -f execute && export bin root cache lock
echo "docs: executing notebooks (cached in $cache)"
find nbs -name "${DOCS_EXECUTE:-*.ipynb}" -not -path '*/.ipynb_checkpoints/*' -not -name '_*' -print0 |
  xargs -0 -P 2 -I{} bash -c 'execute "$1"' _ {}

echo "docs: nbdev_proc_nbs"
mkdir -p stub && printf '#!/bin/sh\nexit 0\n' > stub/quarto && chmod +x stub/quarto  # nbdev would try to install Quarto
PATH="$scratch/stub:$PATH" "$bin/nbdev_proc_nbs" --file_glob '*.ipynb' --n_workers 0 >/dev/null 2>proc.log ||
  { cat proc.log; exit 1; }

# MathJax, vendored so that math renders offline (from a CDN, with a note, where npm cannot fetch it)
mj=${WORKBENCH_CACHE:-$HOME/.cache/workbench}/mathjax-3.2.2/node_modules/mathjax/es5
if [ ! -f "$mj/tex-chtml.js" ] && command -v npm >/dev/null; then
  npm install --prefix "${mj%/node_modules/*}" mathjax@3.2.2 --no-audit --no-fund --silent >/dev/null 2>&1 || true
fi
if [ -f "$mj/tex-chtml.js" ]; then
  mkdir -p static/mathjax/output/chtml
  cp "$mj/tex-chtml.js" static/mathjax/ && cp -r "$mj/output/chtml/fonts" static/mathjax/output/chtml/
  export WORKBENCH_DOCS_STATIC="$scratch/static"
else
  echo "docs: MathJax not vendored (npm could not fetch mathjax@3.2.2): math will load from a CDN"
fi

echo "docs: sphinx"
"$bin/python" "$root/tools/docs_prepare.py" _proc site
"$bin/sphinx-build" -q -b html -c "$root/tools/docs" site "$out"
rm -rf "$out/.doctrees" "$out/jupyter_execute"
echo "docs: $out/index.html"
