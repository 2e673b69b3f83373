"""Lifting the library's own source into a standalone file: "lift, don't restate".

`lift(roots, allowed)` collects the source of every top-level definition (function, class, constant) that `roots`
reach through the global names their code reads, across vitnas modules, in define-before-use order, together with
the import lines their modules use for those names. Exported code is therefore the library's code by construction.

How a name read by a definition resolves, in the definition's own module:
- a top-level def, class or assignment there, or an import of one from another vitnas module: lifted as well;
- an import of anything else: that import line, if its top-level package is in `allowed`;
- a builtin or a local: nothing.
Anything else (a vitnas module object, a package not allowed, two different things under one name) is a LiftError:
the library code is not liftable, a bug for its author to fix, and the message names the definition and the name.
Annotations are never followed: the files start with `from __future__ import annotations`, so they stay text.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

LIBRARY = "vitnas."


class LiftError(Exception):
    """Library code that cannot be lifted (an internal error, not a user's mistake)."""


@dataclass(frozen=True)
class Lifted:
    imports: tuple[str, ...]  # import statements (`import x`, `from x import y`), each once
    definitions: tuple[str, ...]  # source blocks, each defined before anything that uses it
    names: tuple[str, ...]  # the top-level names the definitions bind


@dataclass(frozen=True)
class _Definition:
    module: str
    name: str
    source: str
    reads: tuple[str, ...]  # global names its code reads, in order of first appearance
    annotation_reads: tuple[str, ...]  # global names only its annotations read


@dataclass(frozen=True)
class _Module:
    definitions: dict[str, _Definition]
    imports: dict[str, ast.stmt]  # bound name -> the import statement binding it


def lift(roots: Iterable[object], allowed: frozenset[str], reserved: Iterable[str] = ()) -> Lifted:
    """The definitions of `roots` (top-level functions and classes of vitnas modules) and all they read.

    `allowed`: top-level packages imports may come from; `reserved`: names the caller defines beside the lifted code.
    """
    lifter = _Lifter(allowed, set(reserved))
    for root in roots:
        module, name = getattr(root, "__module__", ""), getattr(root, "__qualname__", "")
        if not module.startswith(LIBRARY) or getattr(sys.modules.get(module), name, None) is not root:
            raise LiftError(f"{root!r} is not a top-level function or class of a vitnas module")
        lifter.visit(module, name)
    imports = tuple(dict.fromkeys(line for line, _ in lifter.imports.values()))
    return Lifted(imports, tuple(d.source for d in lifter.order), tuple(d.name for d in lifter.order))


def module_head(docstring: str, imports: Iterable[str]) -> str:
    """The top of a generated file: its docstring (our own fixed text), the future import that keeps every lifted
    annotation text, and the imports."""
    return f'"""{docstring}"""\nfrom __future__ import annotations\n\n{import_block(imports)}\n'


def import_block(lines: Iterable[str]) -> str:
    """Import lines as people write them: the standard library, then other packages; in each, `import x` lines,
    then `from x import a, b` with one line per module."""
    plain: set[str] = set()
    names: dict[str, set[str]] = {}
    for line in lines:
        if line.startswith("from "):
            module, _, name = line[len("from "):].partition(" import ")
            names.setdefault(module, set()).add(name)
        else:
            plain.add(line)
    merged = list(plain) + [f"from {module} import {', '.join(sorted(group))}" for module, group in names.items()]

    def third_party(line: str) -> bool:
        return line.split()[1].split(".")[0] not in sys.stdlib_module_names

    def order(line: str) -> tuple:
        return third_party(line), line.startswith("from "), line.split()[1].lower()

    ordered = sorted(merged, key=order)
    groups = [[line for line in ordered if third_party(line) == group] for group in (False, True)]
    return "\n\n".join("\n".join(group) for group in groups if group)


class _Lifter:
    def __init__(self, allowed: frozenset[str], reserved: set[str]):
        self.allowed, self.reserved = allowed, reserved
        self.imports: dict[str, tuple[str, object]] = {}  # bound name -> (import line, what it binds)
        self.owners: dict[str, tuple[str, str]] = {}  # lifted name -> (module, name) it came from
        self.order: list[_Definition] = []
        self.visiting: set[tuple[str, str]] = set()

    def visit(self, module: str, name: str) -> None:
        key = (module, name)
        if key in self.visiting or self.owners.get(name) == key:
            return  # a cycle (recursion) or already lifted: Python resolves these names at call time
        if name in self.reserved or (name in self.owners and self.owners[name] != key) or name in self.imports:
            raise LiftError(f"{module}.{name}: the name {name!r} is already taken in the lifted file; rename one")
        definition = _index(module).definitions.get(name)
        if definition is None:
            raise LiftError(f"{module}.{name}: not a top-level def, class or assignment of its module")
        self.visiting.add(key)
        for read in definition.reads:
            self._resolve(definition, read)
        for read in definition.annotation_reads:
            self._annotation_import(definition, read)
        self.visiting.discard(key)
        self.owners[name] = key
        self.order.append(definition)

    def _resolve(self, user: _Definition, name: str) -> None:
        index = _index(user.module)
        if name in index.definitions:
            self.visit(user.module, name)
        elif name in index.imports:
            self._resolve_import(user, name, index.imports[name])
        elif not hasattr(builtins, name) and name in vars(sys.modules[user.module]):
            raise LiftError(f"{user.module}.{user.name} reads {name!r}, which its module binds in a way the lifter "
                            "does not follow (only top-level defs, classes, assignments and imports)")

    def _resolve_import(self, user: _Definition, name: str, statement: ast.stmt, annotation: bool = False) -> None:
        where = f"{user.module}.{user.name} reads {name!r}"
        value = vars(sys.modules[user.module])[name]
        if isinstance(statement, ast.ImportFrom):
            alias = next(a for a in statement.names if (a.asname or a.name) == name)
            source = _absolute(statement, user.module)
            line = f"from {source} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        else:
            alias = next(a for a in statement.names if (a.asname or a.name.split(".")[0]) == name)
            source = alias.name
            line = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        if (source + ".").startswith(LIBRARY):
            if annotation:
                return  # lifting a definition only for an annotation would add code nothing runs
            if inspect.ismodule(value):
                raise LiftError(f"{where}, a vitnas module: import the definitions it uses instead")
            if alias.asname not in (None, alias.name):
                raise LiftError(f"{where}, a vitnas definition imported under another name; import it as is")
            self.visit(*_home(source, alias.name))
            return
        if source.split(".")[0] not in self.allowed:
            raise LiftError(f"{where} from {source}; exported code may import only {_describe(self.allowed)}")
        known = self.imports.get(name)
        if (known is not None and known[1] is not value) or name in self.owners or name in self.reserved:
            raise LiftError(f"{where}, but {name!r} already means something else in the lifted file")
        self.imports.setdefault(name, (line, value))


    def _annotation_import(self, user: _Definition, name: str) -> None:
        """An annotation's name: imported when it is a plain import from an allowed package (so the lifted file reads
        as well as its source), left as text otherwise."""
        statement = _index(user.module).imports.get(name)
        if statement is None or name in self.owners or name in self.reserved:
            return
        try:
            self._resolve_import(user, name, statement, annotation=True)
        except LiftError:
            pass  # a package not allowed, or a clash: the annotation stays unresolved text, which is harmless


def _describe(allowed: frozenset[str]) -> str:
    if allowed >= sys.stdlib_module_names:
        return ", ".join(["the standard library", *sorted(allowed - sys.stdlib_module_names)])
    return ", ".join(sorted(allowed))


def _home(module: str, name: str) -> tuple[str, str]:
    """Where a vitnas name is defined, following re-exports (`from vitnas.nas.data import Normalize`)."""
    value = getattr(importlib.import_module(module), name)
    if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__.startswith(LIBRARY):
        return value.__module__, value.__qualname__
    index = _index(module)
    if name in index.definitions:
        return module, name
    statement = index.imports.get(name)
    if isinstance(statement, ast.ImportFrom):
        return _home(_absolute(statement, module), name)
    raise LiftError(f"{module}.{name}: not a top-level def, class or assignment of a vitnas module")


def _absolute(statement: ast.ImportFrom, module: str) -> str:
    if not statement.level:
        return statement.module or ""
    package = module.rsplit(".", statement.level)[0]
    return f"{package}.{statement.module}" if statement.module else package


@lru_cache(maxsize=None)
def _index(module_name: str) -> _Module:
    module = importlib.import_module(module_name)
    text = inspect.getsource(module)
    lines = text.splitlines()
    definitions: dict[str, _Definition] = {}
    imports: dict[str, ast.stmt] = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                for alias in node.names:
                    imports[alias.asname or alias.name.split(".")[0]] = node
            continue
        for name in _bound_names(node):
            code, annotations = _reads(node)
            definitions[name] = _Definition(module_name, name, _segment(lines, node), tuple(code), tuple(annotations))
    return _Module(definitions, imports)


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return [node.target.id]
    return []


def _segment(lines: list[str], node: ast.stmt) -> str:
    """The statement's lines, decorators and the comment lines directly above it included (they say why)."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return "\n".join(lines[start:node.end_lineno])


class _Reads(ast.NodeVisitor):
    """Names a definition reads and binds; names read only in annotations (never evaluated in a lifted file, which
    starts with `from __future__ import annotations`) are kept apart."""

    def __init__(self):
        self.read: dict[str, tuple[int, int]] = {}
        self.annotations: dict[str, tuple[int, int]] = {}
        self.bound: set[str] = set()
        self._target = self.read

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._target.setdefault(node.id, (node.lineno, node.col_offset))
        else:
            self.bound.add(node.id)

    def _annotation(self, node: ast.expr | None) -> None:
        if node is not None:
            self._target = self.annotations
            self.visit(node)
            self._target = self.read

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)
        self._annotation(node.annotation)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotation(node.annotation)
        for child in (node.target, node.value):
            if child is not None:
                self.visit(child)

    def _visit_def(self, node) -> None:
        self.bound.add(node.name)
        self._annotation(getattr(node, "returns", None))
        for child in ast.iter_child_nodes(node):
            if child is not getattr(node, "returns", None):
                self.visit(child)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _visit_def

    def visit_alias(self, node: ast.alias) -> None:
        self.bound.add(node.asname or node.name.split(".")[0])

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)


def _reads(node: ast.stmt) -> tuple[list[str], list[str]]:
    """(names read by the code, names read only by its annotations), each in order of first appearance."""
    reads = _Reads()
    reads.visit(node)
    code = {name: at for name, at in reads.read.items() if name not in reads.bound}
    annotations = {name: at for name, at in reads.annotations.items() if name not in reads.bound and name not in code}
    return sorted(code, key=code.get), sorted(annotations, key=annotations.get)
