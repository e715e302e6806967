"""Package-level rules: blt_model never pulls in the UI, and the model code never prints."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import blt_model
import blt_model.io.shipped

# the one package whose job is talking to a person (tests/test_layout.py checks the same boundary
# for sys.stdout/sys.stderr and rich/textual imports)
CONSOLE_PACKAGE = "cli"


def test_importing_blt_model_never_imports_textual():
    names = [m.name for m in pkgutil.walk_packages(blt_model.__path__, "blt_model.")
             if not m.name.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for n in {names!r}:\n"
            "    importlib.import_module(n)\n"
            "print('textual' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_code_does_not_print():
    root = Path(blt_model.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).parts[0] == CONSOLE_PACKAGE:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_generation_on_cuda_in_half_precision(dtype):
    from blt_model.inference.generation import greedy_ids
    from tests.helpers import tiny_model

    model = tiny_model().to("cuda", dtype)
    out = greedy_ids(model, "Hello, GPU", 64)
    assert len(out) == 64
    ref = greedy_ids(model, "Hello, GPU", 16, engine="reference")
    assert out[:8] == ref[:8]  # half precision: the first bytes agree with the reference path


def test_shipped_model_is_packaged():
    """`pip install .` (not only editable) carries every package and assets/models/* as package data."""
    from distutils.core import run_setup

    root = Path(blt_model.__file__).resolve().parent.parent
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        dist = run_setup(str(root / "setup.py"), stop_after="config")
    on_disk = {".".join(p.parent.relative_to(root).parts) for top in ("blt_model", "blt_chat")
               for p in (root / top).rglob("__init__.py")}
    assert on_disk <= set(dist.packages), sorted(on_disk - set(dist.packages))
    assert "blt_assets" in dist.packages and dist.package_dir["blt_assets"] == "assets"
    assert "models/*/*" in dist.package_data["blt_assets"]
    models = root / "assets" / "models"
    # every model shipped, together, stays under the 25 MB budget, and the default one is found
    assert sum(p.stat().st_size for p in models.rglob("*") if p.is_file()) < 25e6
    assert blt_model.io.shipped.shipped_model_path() == models / blt_model.io.shipped.SHIPPED_MODEL_NAME
