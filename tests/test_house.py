"""The house rule "modules hold no mutable globals" (README "Architecture"), checked on the product code's AST.

State that lives longer than a call (opened videos, feature cache, track cache, loaded models) belongs to one
runtime object (``tools.runtime.Runtime``) that the CLI or the service's lifespan builds and passes down. A
module-level name is flagged when it holds mutable state:

- it is assigned a cache or container type that exists to be mutated (``OrderedDict``, ``defaultdict``,
  ``deque``, ``Counter``, the ``WeakKeyDictionary`` family, ``LRUCache``, ``threading.Lock``: a lock guards
  shared state), whatever the module does with it;
- or it is assigned a plain ``dict`` / ``list`` / ``set`` (a literal, a comprehension or a call) **and** the
  module mutates it (item assignment or deletion, an augmented assignment, a mutating method such as
  ``append`` / ``update`` / ``setdefault`` / ``pop`` / ``clear``) -- an ALL_CAPS table that is only read is a
  constant, not state;
- or a function rebinds it with a ``global`` statement;
- or, in a class body, it is a class attribute that a method rebinds through ``cls.`` / ``ClassName.`` (a
  process-wide singleton);
- or it is a module-level function memoised with ``functools.cache`` / ``lru_cache`` (a hidden cache of what it
  returned, e.g. a backend holding weights), unless :data:`PURE_MEMOS` lists it.

Registries, where backends are added by name, are the one allowed kind of module state: :data:`ALLOWED`.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("artemis_model", "tools", "agent", "training", "evals", "synth", "cli")
ALLOWED = {
    ("artemis_model/tracking/backends.py", "_BACKENDS"): "the tracker backend registry (register_backend)",
    ("tools/grounding/backends.py", "_BACKENDS"): "the grounding backend registry (register_backend)",
    ("evals/tasks.py", "_TASKS"): "the evaluation task registry (register_task)",
}
PURE_MEMOS = {
    ("artemis_model/tiny.py", "tiny_tokenizer_json"): "a pure function of constants (a JSON string)",
    ("artemis_model/tiny.py", "_tiny_vocab"): "a pure function of constants",
    ("tools/registry.py", "default_tools"): "an immutable registry of the shipped tools",
    ("evals/metrics.py", "get_scorer"): "one METEOR JVM per evaluation process (never the service)",
}
STATEFUL_TYPES = {
    "OrderedDict",
    "defaultdict",
    "deque",
    "Counter",
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "WeakSet",
    "LRUCache",
    "Lock",
    "RLock",
}
CONTAINER_CALLS = {"dict", "list", "set"}
MUTATORS = {
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "clear",
    "add",
    "discard",
    "remove",
    "appendleft",
    "move_to_end",
    "put",
    "get_or_compute",
    "pop_where",
    "__setitem__",
}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Subscript):  # OrderedDict[str, int]()
            func = func.value
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _kind(value: ast.AST | None) -> str | None:
    """'stateful' (a type that exists to be mutated), 'container' (dict/list/set) or None."""
    if value is None:
        return None
    name = _call_name(value)
    if name in STATEFUL_TYPES:
        return "stateful"
    if name in CONTAINER_CALLS or isinstance(
        value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
    ):
        return "container"
    return None


def _module_bindings(tree: ast.Module) -> dict[str, tuple[int, str | None]]:
    """Module-level names (also inside module-level ``if`` / ``try``) -> (line, kind of their value)."""
    out: dict[str, tuple[int, str | None]] = {}

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        out[target.id] = (stmt.lineno, _kind(stmt.value))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                out[stmt.target.id] = (stmt.lineno, _kind(stmt.value))
            elif isinstance(stmt, ast.If):
                visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                visit(stmt.body)
                for handler in stmt.handlers:
                    visit(handler.body)

    visit(tree.body)
    return out


def _local_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names a function binds itself (arguments, assignments, loop and ``with`` targets): they shadow globals."""
    names = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    names |= {a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None}
    declared_global = {n for node in ast.walk(fn) if isinstance(node, ast.Global) for n in node.names}
    for node in ast.walk(fn):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.For, ast.AsyncFor)):
            targets = [node.target]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets = [node.optional_vars]
        for target in targets:
            names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names - declared_global


def _mutated_names(tree: ast.Module) -> dict[str, int]:
    """Names mutated anywhere in the module (not where a function's own local shadows them) -> first line."""
    out: dict[str, int] = {}
    scopes: list[tuple[ast.AST, set[str]]] = [(tree, set())]
    scopes += [
        (fn, _local_names(fn))
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    for scope, local in scopes:
        nodes = ast.walk(scope) if scope is not tree else _walk_module_level(tree)
        for node in nodes:
            name = None
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        name = target.value.id
                    elif (
                        isinstance(node, ast.AugAssign) and isinstance(target, ast.Name) and scope is not tree
                    ):
                        name = target.id
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and isinstance(node.func.value, ast.Name)
            ):
                name = node.func.value.id
            if name is not None and name not in local:
                out.setdefault(name, node.lineno)
    return out


def _walk_module_level(tree: ast.Module):
    """Every node of the module outside function bodies (those are walked as their own scopes)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.append(child)


def _globals_rebound(tree: ast.Module) -> dict[str, int]:
    return {n: node.lineno for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}


def _class_singletons(tree: ast.Module) -> list[tuple[str, int]]:
    """``Class.attr`` rebound by a method through ``cls.attr = ...`` or ``ClassName.attr = ...``."""
    out = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        attrs = set()
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign):
                attrs |= {t.id for t in stmt.targets if isinstance(t, ast.Name)}
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                attrs.add(stmt.target.id)
        for node in ast.walk(cls):
            if not isinstance(node, (ast.Assign, ast.AugAssign)):
                continue
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in ("cls", cls.name)
                    and target.attr in attrs
                ):
                    out.append((f"{cls.name}.{target.attr}", node.lineno))
    return out


def _memoised_functions(tree: ast.Module) -> list[tuple[str, int]]:
    """Module-level functions decorated with ``functools.cache`` / ``lru_cache`` (called or not)."""
    out = []
    for fn in tree.body:
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in fn.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                if name in ("cache", "lru_cache"):
                    out.append((fn.name, fn.lineno))
    return out


def mutable_globals(path: Path, rel: str | None = None) -> list[str]:
    """``rel:line name (why)`` for each piece of module-level mutable state in ``path`` (``rel``: its path in the
    repository, default the real one)."""
    rel = rel or path.relative_to(REPO).as_posix()
    tree = ast.parse(path.read_text(), filename=rel)
    bindings = _module_bindings(tree)
    mutated = _mutated_names(tree)
    rebound = _globals_rebound(tree)
    found = []
    for name, (line, kind) in bindings.items():
        if (rel, name) in ALLOWED:
            continue
        if kind == "stateful":
            found.append(f"{rel}:{line} {name} (a cache or lock at module level)")
        elif kind == "container" and name in mutated:
            found.append(f"{rel}:{line} {name} (a module-level container mutated on line {mutated[name]})")
    for name, line in rebound.items():
        if (rel, name) not in ALLOWED:
            found.append(f"{rel}:{line} {name} (rebound through a `global` statement)")
    found += [f"{rel}:{line} {name} (a class-level singleton)" for name, line in _class_singletons(tree)]
    found += [
        f"{rel}:{line} {name} (a memoised function: its cache is module state)"
        for name, line in _memoised_functions(tree)
        if (rel, name) not in PURE_MEMOS
    ]
    return found


def product_files() -> list[Path]:
    return sorted(p for top in PRODUCT for p in (REPO / top).rglob("*.py"))


def test_product_modules_hold_no_mutable_globals():
    found = [f for path in product_files() for f in mutable_globals(path)]
    assert not found, "module-level mutable state (give it to the runtime object instead):\n" + "\n".join(
        found
    )


def test_the_allowed_registries_exist():
    """An allowance for a registry or a memo that moved or was renamed must not linger."""
    for rel, name in ALLOWED:
        assert name in _module_bindings(ast.parse((REPO / rel).read_text())), (rel, name)
    for rel, name in PURE_MEMOS:
        assert name in {n for n, _ in _memoised_functions(ast.parse((REPO / rel).read_text()))}, (rel, name)


def test_the_rule_flags_what_it_should(tmp_path):
    """A cache, a mutated table, a ``global`` and a class singleton are found; read-only tables are not."""
    code = """
import functools
import threading
from collections import OrderedDict
from artemis_model.lru import LRUCache

_CACHE = OrderedDict()
_LRU: LRUCache[str, int] = LRUCache(4)
_LOCK = threading.Lock()
_SEEN = {}
_LOG = []
COLOURS = {"red": 1}
NAMES = [k for k in COLOURS]
_COUNT = 0


def remember(key, value):
    _SEEN[key] = value
    _LOG.append(key)
    return COLOURS.get(key), NAMES[0]


def bump():
    global _COUNT
    _COUNT += 1


def local_only():
    table = {}
    table["a"] = 1
    COLOURS_COPY = dict(COLOURS)
    COLOURS_COPY.update(x=1)


@functools.lru_cache(maxsize=4)
def backend_for(settings):
    return object()


class Model:
    _shared = None

    @classmethod
    def shared(cls):
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared
"""
    path = tmp_path / "probe.py"
    path.write_text(code)
    found = {line.split(" ")[1] for line in mutable_globals(path, "tools/probe.py")}
    assert found == {"_CACHE", "_LRU", "_LOCK", "_SEEN", "_LOG", "_COUNT", "Model._shared", "backend_for"}


# ---- imports: one direction, nothing from tests/, scripts/, research/ or benchmarks/, no sys.path edits ----------
#: What each top-level folder may import of ours (the README's "Architecture"; layout.md's arrows).
MAY_IMPORT = {
    "artemis_model": set(),
    "synth": set(),
    "tools": {"artemis_model"},
    "agent": {"tools", "artemis_model"},
    "training": {"artemis_model", "synth"},
    "evals": {"artemis_model", "agent", "tools", "synth"},
    "cli": {"agent", "tools", "artemis_model", "training", "evals", "synth"},
    "benchmarks": {"agent", "tools", "artemis_model", "training", "evals", "synth"},
    "research": {"artemis_model", "tools", "training", "evals", "synth"},  # probes of the agent's inputs too
}
OURS = set(MAY_IMPORT) | {"tests", "scripts"}
#: agent/api (the service) may be imported by cli only; agent/ itself never imports it.
SERVICE = "agent.api"


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def import_violations(root: Path = REPO) -> list[str]:
    bad = []
    for folder, allowed in MAY_IMPORT.items():
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            in_service = rel.startswith("agent/api/")
            for line, module in _imported_modules(path):
                top = module.split(".")[0]
                if top not in OURS or top == folder:
                    if top == "agent" and folder == "agent" and module.startswith(SERVICE) and not in_service:
                        bad.append(f"{rel}:{line} imports {module} (agent/ never imports its service)")
                    continue
                if top not in allowed:
                    bad.append(
                        f"{rel}:{line} imports {module} ({folder}/ may import: {sorted(allowed) or 'nothing'})"
                    )
                elif module.startswith(SERVICE) and folder not in ("cli", "benchmarks"):
                    bad.append(f"{rel}:{line} imports {module} (only cli/ builds the service)")
    return bad


def test_imports_point_one_way():
    assert import_violations() == []


def test_no_sys_path_edits_anywhere():
    edits = []
    for folder in [*MAY_IMPORT, "tests", "scripts"]:
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if "sys.path.insert" in text or "sys.path.append" in text or "sys.path[" in text:
                if path.resolve() != Path(__file__).resolve():
                    edits.append(path.relative_to(REPO).as_posix())
    assert edits == []


def test_the_import_rule_flags_what_it_should(tmp_path):
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "bad.py").write_text(
        "import agent.graph\nfrom tests.clipgen import x\nimport torch\n"
    )
    for folder in MAY_IMPORT:
        (tmp_path / folder).mkdir(exist_ok=True)
    found = import_violations(tmp_path)
    assert [f.split(" (")[0] for f in found] == [
        "tools/bad.py:1 imports agent.graph",
        "tools/bad.py:2 imports tests.clipgen",
    ]
