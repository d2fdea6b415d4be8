"""DVC internals are reached only through workers/dvcops/dvc_internals.py (its version check and oracle tests).

Read from the source, not by importing: every ``import dvc...`` / ``from dvc... import`` of app/, schema/ and
workers/ outside the adapter must name DVC's public surface.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "workers" / "dvcops" / "dvc_internals.py"
# Repo and its methods, dvc.api, and the exceptions those raise. `import dvc.repo` loads the package for Repo.
PUBLIC = {"dvc.repo", "dvc.api", "dvc.exceptions", "dvc.lock"}
PUBLIC_NAMES = {"dvc.repo": {"Repo"}, "dvc.lock": {"LockError"}}


def dvc_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dvc":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "dvc"]
    return found


def test_no_module_but_the_adapter_imports_dvc_internals() -> None:
    outside: list[str] = []
    for folder in ("app", "schema", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ADAPTER:
                continue
            for line, module, names in dvc_imports(path):
                allowed = PUBLIC_NAMES.get(module)
                if module not in PUBLIC or (allowed is not None and names and not set(names) <= allowed):
                    outside.append(f"{path.relative_to(ROOT)}:{line}: {module} {names}")
    assert outside == [], "DVC internals outside workers/dvcops/dvc_internals.py:\n" + "\n".join(outside)


def test_the_adapter_is_checked_against_the_installed_dvc() -> None:
    from workers.dvcops import dvc_internals

    assert dvc_internals.checked(), dvc_internals.dvc_version()
