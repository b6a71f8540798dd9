"""Stage scripts import only what they need: data stages no torch, evaluation stages no Trainer (issue 18).

Importing torch + transformers costs seconds per process and the Trainer more; the pipeline starts
~48 stage processes. Each check imports the scripts one after another in one fresh interpreter and
names the first script after which a forbidden module is loaded (imports accumulate, so the first
one to show it is the one that pulled it in).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

DATA_STAGES = ["check_params", "install_punkt", "ilm_sample", "ilm_split", "ilm_mask", "ilm_writeup", "ens_sample",
               "ens_split", "wl_sample", "wl_data", "mono_sample", "mono_split", "tokenizer", "report"]
EVALUATION_STAGES = ["ilm_eval", "ilm_infill_eval", "ens_compare", "wl_eval", "mono_eval", "mono_attack"]


def _first_importer(scripts: list[str], forbidden: list[str]) -> dict[str, str]:
    """``{forbidden module: the first script after whose import it is loaded}``."""
    probe = f"""
import importlib, json, sys
found = {{}}
for script in {scripts!r}:
    importlib.import_module("stages." + script)
    for name in {forbidden!r}:
        if name in sys.modules and name not in found:
            found[name] = script
print(json.dumps(found))
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_data_stages_import_no_torch_or_transformers() -> None:
    assert _first_importer(DATA_STAGES, ["torch", "transformers", "datasets"]) == {}


@pytest.mark.slow  # imports torch and transformers: ~10 s on a 2-core machine
def test_evaluation_stages_import_no_trainer() -> None:
    assert _first_importer(EVALUATION_STAGES, ["transformers.trainer", "datasets"]) == {}


def test_the_probe_sees_a_heavy_import() -> None:
    assert _first_importer(["wl_data", "ilm_sample", "ilm_split"], ["pandas"]) == {"pandas": "ilm_sample"}
