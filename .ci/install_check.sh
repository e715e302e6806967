#!/usr/bin/env bash
# CI: the package as a user gets it. A fresh virtual environment, a regular (non-editable)
# `pip install .`, then, from a directory outside the clone so that nothing is imported from the
# working tree: `blt --help`, `blt generate` with the shipped model, `import blt_model`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.ci-install-venv
rm -rf "$venv"
python3 -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q torch==2.13.0  # the CPU build, from local disk
"$py" -m pip install -q "$root"       # not -e: the files are copied into site-packages
away=$(mktemp -d)
trap 'rm -rf "$away"' EXIT
cd "$away"
export PATH=$venv/bin:$PATH
blt --help > help.txt
grep -q "generate" help.txt
# the shipped model, found in the installed package (a missing one would fall back to random
# weights with a warning on stderr, so the warning's absence is checked too)
blt generate "The " --max-bytes 8 --seed 0 --temperature 0 > out.txt 2> err.txt
grep -q "^The " out.txt
if grep -q RANDOM err.txt; then echo "install check: the shipped model was not installed" >&2; exit 1; fi
"$py" - <<'PY'
import pathlib
import blt_model, blt_chat, blt_assets
from blt_model import shipped_model_path
venv = pathlib.Path(__import__("sys").prefix)
for mod in (blt_model, blt_chat):
    assert venv in pathlib.Path(mod.__file__).resolve().parents, f"{mod.__name__} imported from {mod.__file__}"
assert shipped_model_path() is not None and venv in shipped_model_path().resolve().parents, shipped_model_path()
print("install check: ok (blt --help, blt generate with the shipped model, import blt_model)")
PY
