"""A census of the run path: modules, lines, classes, and private uses of DVC / arq / Strawberry / CPython.

Usage: ``python scripts/run_path_census.py [--details] [ROOT]`` (ROOT defaults to the checkout holding this script).
Plain Python, standard library only, so it runs on any checkout, old or new, before ``make venv``.

The run path is listed by hand below (RUN_PATH): from the GraphQL mutations and subscription of runs to the stage
process and back. A glob (``dir/*``) takes every ``.py`` and ``.c`` file of that directory; a listed file that does not
exist in the checkout is skipped (and named with ``--details``), so the same list counts old and new layouts.

What counts as a private use (each occurrence once):
- an import of, or an attribute reached through, a name starting with ``_`` (not a dunder) from dvc, arq, strawberry
  or a CPython standard-library module (``atexit._clear``, ``from dvc.cli import _log_exceptions``);
- an import of a DVC module outside its public surface, which is ``dvc.api``, ``dvc.repo.Repo`` and the CLI entry
  ``dvc.cli.main`` (``dvc.repo.reproduce``, ``dvc.lock``, ``dvc.dvcfile``... are internals);
- a method starting with ``_`` defined in a class deriving from one of those packages' classes (an override of a
  private method: arq's ``Worker._poll_iteration``, Strawberry's ``MaskErrors._process_result``);
- a write to one of arq's own Redis keys: a Redis write method called with one of ``arq.constants``' key prefixes
  (``in_progress_key_prefix``...), or on an arq queue (a first argument named ``*queue_name``).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RUN_PATH = [
    # API: the GraphQL surface of runs
    "schema/runs/mutations.py",
    "schema/runs/subscriptions.py",
    "schema/runs/types.py",
    "schema/masking.py",
    "schema/shared_results.py",
    # API: services, events, jobs
    "app/lifespan.py",
    "app/state.py",
    "app/services/runs.py",
    "app/services/run_updates.py",
    "app/services/run_settlement.py",
    "app/events/*",
    "app/jobs.py",
    "app/jobs_protocol.py",
    "app/workspace_lock.py",
    "app/domain/runs.py",
    "app/repositories/runs.py",
    "app/repositories/events.py",
    # Worker: process, arq configuration, the run job, stage execution
    "workers/__main__.py",
    "workers/settings.py",
    "workers/context.py",
    "workers/locks.py",
    "workers/runs/*",
    "workers/execution/*",
    # The adapter of DVC internals the stage server loads (the one place private DVC uses may be)
    "workers/dvcops/dvc_internals.py",
]

PACKAGES = ("dvc", "arq", "strawberry")
CPYTHON = "cpython"
COLUMNS = ("dvc", "arq", "strawberry", CPYTHON)
DVC_PUBLIC_MODULES = {"dvc", "dvc.api", "dvc.repo", "dvc.cli", "dvc.__main__"}
# Underscore names CPython documents as public API.
CPYTHON_DOCUMENTED = {"os._exit", "sys._getframe"}
DVC_PUBLIC_NAMES = {"dvc.repo": {"Repo"}, "dvc.cli": {"main"}}
REDIS_WRITES = {"delete", "set", "setex", "psetex", "expire", "pexpire", "zadd", "zrem", "hset", "unlink", "lpush"}
STDLIB = set(sys.stdlib_module_names)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top in PACKAGES:
        return top
    if top in STDLIB:
        return CPYTHON
    return None


@dataclass
class ModuleCensus:
    path: str
    lines: int
    classes: int
    private: list[tuple[str, int, str]] = field(default_factory=list)  # (package, line, what)


class _PrivateUses(ast.NodeVisitor):
    def __init__(self) -> None:
        self.bound: dict[str, str] = {}  # local name -> dotted origin ("dvc", "arq.worker.Worker", "atexit")
        self.arq_constants: set[str] = set()
        self.found: list[tuple[str, int, str]] = []

    def _add(self, package: str, node: ast.AST, what: str) -> None:
        self.found.append((package, getattr(node, "lineno", 0), what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            package = _package_of(alias.name)
            if package is None:
                continue
            local = alias.asname or alias.name.split(".")[0]
            self.bound[local] = alias.name if alias.asname else alias.name.split(".")[0]
            if any(_private(p) for p in alias.name.split(".")):
                self._add(package, node, f"import {alias.name}")
            elif package == "dvc" and alias.name not in DVC_PUBLIC_MODULES:
                self._add(package, node, f"import {alias.name} (DVC internal module)")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        package = _package_of(module) if node.level == 0 else None
        if package is None:
            return
        for alias in node.names:
            self.bound[alias.asname or alias.name] = f"{module}.{alias.name}"
            if module == "arq.constants":
                self.arq_constants.add(alias.asname or alias.name)
            if any(_private(p) for p in module.split(".")) or _private(alias.name):
                self._add(package, node, f"from {module} import {alias.name}")
            elif package == "dvc" and not self._dvc_public(module, alias.name):
                self._add(package, node, f"from {module} import {alias.name} (DVC internal)")

    @staticmethod
    def _dvc_public(module: str, name: str) -> bool:
        if module == "dvc":
            return f"dvc.{name}" in DVC_PUBLIC_MODULES or name == "__version__"
        if module == "dvc.api":
            return True
        return name in DVC_PUBLIC_NAMES.get(module, set())

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            chain.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name) and current.id in self.bound:
            origin = self.bound[current.id]
            package = _package_of(origin)
            # Only the outermost attribute of a chain is reported, for the whole chain.
            if package is not None and not getattr(node, "_census_inner", False):
                dotted = [origin, *reversed(chain)]
                if any(_private(p) for p in chain) and ".".join(dotted) not in CPYTHON_DOCUMENTED:
                    self._add(package, node, ".".join(dotted))
                elif package == "dvc" and origin == "dvc" and ".".join(dotted[:2]) not in DVC_PUBLIC_MODULES:
                    self._add(package, node, ".".join(dotted) + " (DVC internal module)")
        inner = node.value
        while isinstance(inner, ast.Attribute):
            inner._census_inner = True  # type: ignore[attr-defined]
            inner = inner.value
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        origins = [self._origin(b) for b in node.bases]
        foreign = [o for o in origins if o is not None and _package_of(o) is not None]
        if foreign:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _private(item.name):
                    base = foreign[0]
                    if _defines(base, item.name) is not False:
                        self._add(_package_of(base) or "", item, f"override {base}.{item.name}")
        self.generic_visit(node)

    def _origin(self, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):
            return self.bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = self._origin(expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in REDIS_WRITES and node.args:
            names = {n.id for a in node.args for n in ast.walk(a) if isinstance(n, ast.Name)}
            names |= {n.attr for a in node.args[:1] for n in ast.walk(a) if isinstance(n, ast.Attribute)}
            if names & self.arq_constants:
                self._add("arq", node, f"{func.attr}() of arq's key {sorted(names & self.arq_constants)[0]}")
            elif any(n == "queue_name" or n.endswith("_queue_name") for n in names) and func.attr.startswith("z"):
                self._add("arq", node, f"{func.attr}() on an arq queue")
        self.generic_visit(node)


def _defines(dotted: str, attribute: str) -> bool | None:
    """Whether the class ``dotted`` has ``attribute`` (an override, not a private method of the subclass's own);
    None when its package is not importable here (then a private method is taken for an override)."""
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception:
        return None
    return hasattr(cls, attribute)


def census_of(root: Path, relative: str) -> ModuleCensus:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    if path.suffix != ".py":
        return ModuleCensus(relative, lines, 0)
    tree = ast.parse(text, filename=str(path))
    classes = sum(isinstance(n, ast.ClassDef) for n in ast.walk(tree))
    visitor = _PrivateUses()
    visitor.visit(tree)
    return ModuleCensus(relative, lines, classes, visitor.found)


def run_path_files(root: Path) -> tuple[list[str], list[str]]:
    found: list[str] = []
    missing: list[str] = []
    for entry in RUN_PATH:
        if entry.endswith("/*"):
            folder = root / entry[:-2]
            matches = sorted(p for p in folder.glob("*") if p.suffix in (".py", ".c")) if folder.is_dir() else []
            found += [str(p.relative_to(root)) for p in matches]
            if not matches:
                missing.append(entry)
        elif (root / entry).is_file():
            found.append(entry)
        else:
            missing.append(entry)
    return found, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--details", action="store_true", help="list every module and every private use")
    args = parser.parse_args()
    root: Path = args.root.resolve()
    files, missing = run_path_files(root)
    modules = [census_of(root, f) for f in files]
    totals: Counter[str] = Counter()
    for module in modules:
        totals.update(p for p, _, _ in module.private)
    rows = [
        ("modules on the run path", str(len(modules))),
        ("lines", str(sum(m.lines for m in modules))),
        ("classes", str(sum(m.classes for m in modules))),
        *((f"private uses: {c}", str(totals[c])) for c in COLUMNS),
        ("private uses: total", str(sum(totals.values()))),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'run path census':<{width}} | count |")
    print(f"|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key:<{width}} | {value:>5} |")
    if args.details:
        print()
        for module in modules:
            print(f"{module.path}: {module.lines} lines, {module.classes} classes")
            for package, line, what in module.private:
                print(f"    {package:<10} line {line:<5} {what}")
        for entry in missing:
            print(f"(not in this checkout: {entry})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
