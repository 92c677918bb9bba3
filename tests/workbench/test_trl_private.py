"""TRL's private API is used in one module only, which checks the TRL release it was written for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import trl

from workbench import trl_private

REPO = Path(__file__).resolve().parents[2]
PRIVATE_TRL_NAMES = re.compile(r"\._(prepare_dataset|compute_loss|set_signature_columns_if_needed|metrics|"
                               r"total_train_tokens|signature_columns)\b")


def test_it_was_written_for_the_installed_trl():
    assert trl.__version__.startswith(trl_private.TRL_VERSION)


def test_no_other_module_imports_trl_internals_or_touches_trainer_private_state():
    offenders = []
    for package in ("workbench", "reward", "sampling", "experts", "rounds", "preference_ui"):
        for path in (REPO / package).rglob("*.py"):
            if path.name == "trl_private.py":
                continue
            text = path.read_text(encoding="utf-8")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trl.trainer"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {node.module}")
            offenders += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in PRIVATE_TRL_NAMES.finditer(text)]
    assert not offenders, "\n".join(offenders)
