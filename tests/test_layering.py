"""The package layering of DESIGN.md, read from the source: the core imports no package above it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Each package may import only the packages listed for it (and itself); `rounds` is the composition root.
ALLOWED = {
    "workbench": set(),
    "reward": {"workbench"},
    "sampling": {"workbench", "reward"},
    "preference_ui": {"workbench"},
    "experts": {"workbench", "reward", "sampling"},
    "rounds": {"workbench", "reward", "sampling", "preference_ui", "experts"},
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in a file, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def test_packages_import_only_the_packages_below_them():
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for imported, line in imported_packages(path):
                if imported in ALLOWED and imported != package and imported not in allowed:
                    violations.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert not violations, "imports against the layering:\n" + "\n".join(sorted(violations))


def test_the_check_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from rounds.full_config import load_config\n    import sampling.backends\n")
    assert imported_packages(source) == {("rounds", 2), ("sampling", 3)}
