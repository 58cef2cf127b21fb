#!/usr/bin/env python3
"""GitLab's REST API v4 as python-gitlab's managers call it, as an OpenAPI 3.0 document.

Every REST manager class in `gitlab.v4.objects` (and the class of the objects it makes)
is read with `inspect` and `ast`: each method, from the mixins it inherits (ListMixin,
GetMixin, CreateMixin, UpdateMixin, DeleteMixin, SetMixin, ...) and the custom actions
written on the manager or the object, is evaluated symbolically until it reaches one of
the connection's `http_get`/`http_list`/`http_post`/`http_put`/`http_patch`/
`http_delete`/`http_head` calls, and the path it passes is rebuilt as a template:

- `self.path` / `self.manager.path` / `self._path` / `self._computed_path` are the
  manager's `_path` (`/projects/{project_id}/issues`), its placeholders spelled as
  python-gitlab spells them (the keys of `_from_parent_attrs`);
- an object's `self.encoded_id` / `self.get_id()` and a manager method's `id` argument
  are `{<_id_attr>}` of the object class (`{iid}`, `{id}`, `{name}`, ...);
- any other argument or object attribute used in a path is `{its name}`;
- `if id is None:` branches (UpdateMixin, DeleteMixin, ...) follow whether the manager's
  objects have an id (`_id_attr`), as python-gitlab's `save()`/`delete()` do; other
  branches are all kept;
- calls to `super()`, to other methods of the manager or the object, and to the mixins
  (`self.manager.update`, `CreateMixin.create(self, ...)`) are followed, with a `path=`
  keyword replacing the callee's `path` (`kwargs.pop("path", self.path)`);
- `UpdateMixin`/`PromoteMixin`'s `_get_update_method()` is PUT, POST or PATCH after the
  class's `_update_method`.

HeadMixin's generic `head()` is left out: GitLab's router answers HEAD for every GET
route, and patrol decides HEAD as GET. Explicit HEAD routes (a `http_head` in a custom
method) are kept. Operations with the same method and path shape (parameter names aside)
are one operation; its `x-python-gitlab` lists every manager/object method that calls it.

Usage:
    python3 tests/gitlab/inventory.py           # write the fixture, print counts
    python3 tests/gitlab/inventory.py --check   # exit 1 when the fixture differs
    python3 tests/gitlab/inventory.py --out F   # write F instead
Unresolved calls are listed on stderr; the run fails (exit 2) if there are any.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests/fixtures/openapi/python-gitlab.openapi3.json"
PINNED = "8.6.0"
BASE = "/api/v4"

HTTP = {
    "http_get": "GET",
    "http_list": "GET",
    "http_post": "POST",
    "http_put": "PUT",
    "http_patch": "PATCH",
    "http_delete": "DELETE",
    "http_head": "HEAD",
}
# Methods whose calls are never REST operations of their own (HEAD of every GET route).
GENERIC_HEAD = "HeadMixin.head"
MAX_DEPTH = 8


class Unknown:
    """A value the evaluator cannot turn into a path template."""

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"<unknown: {self.why}>"


@dataclass(frozen=True)
class HttpMethod:
    """A bound `gl.http_*` function held in a variable."""

    method: str


@dataclass
class Context:
    """Where a function is evaluated: a manager class and the class of its objects."""

    manager: type
    obj: type | None
    on_object: bool  # `self` is an object (else the manager)
    owner: type  # the class whose method this is (for super())
    caller: str  # Manager.method or Object.method, for operationId and messages
    path_override: Any = None
    args: dict[str, Any] = field(default_factory=dict)
    depth: int = 0


@dataclass
class Found:
    ops: list[tuple[str, Any, str]] = field(default_factory=list)  # (method, path, caller)
    unresolved: list[str] = field(default_factory=list)
    head: int = 0
    dead: set[str] = field(default_factory=set)


def id_attr(obj: type | None) -> str | None:
    if obj is None:
        return "id"
    return getattr(obj, "_id_attr", "id")


def has_ids(ctx: Context) -> bool:
    """Whether the manager's objects are addressed by an id (`save()` passes one)."""
    import gitlab.mixins as m

    if ctx.obj is not None and id_attr(ctx.obj) is None:
        return False
    if issubclass(ctx.manager, m.GetWithoutIdMixin) and not issubclass(ctx.manager, m.GetMixin):
        return False
    return True


def placeholder(name: str) -> str:
    return "{" + name + "}"


def function_ast(func: Any) -> ast.FunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def unwrap(func: Any) -> Any:
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return func


def lookup(cls: type, name: str, after: type | None = None) -> tuple[type, Any] | None:
    """The class in `cls`'s MRO (after `after`, for super()) defining `name`, and it."""
    mro = cls.__mro__
    if after is not None and after in mro:
        mro = mro[mro.index(after) + 1 :]
    for klass in mro:
        if name in vars(klass):
            value = vars(klass)[name]
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            return klass, value
    return None


class Evaluator:
    def __init__(self, found: Found) -> None:
        self.found = found

    # -- functions ------------------------------------------------------------------

    def run(self, func: Any, ctx: Context) -> None:
        if ctx.depth > MAX_DEPTH:
            self.found.unresolved.append(f"{ctx.caller}: calls nest too deep")
            return
        node = function_ast(unwrap(func))
        if node is None:
            return
        env: dict[str, list[Any]] = {}
        params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        for name in params[1:]:
            if name in ctx.args:
                env[name] = [ctx.args[name]]
            elif name == "id" and not ctx.on_object:
                attr = id_attr(ctx.obj)
                env[name] = [placeholder(attr or "id")]
            else:
                env[name] = [placeholder(name)]
        self.block(node.body, env, ctx)

    # -- statements -----------------------------------------------------------------

    def block(self, body: list[ast.stmt], env: dict[str, list[Any]], ctx: Context) -> bool:
        """Runs statements; False when the block certainly returned or raised."""
        for stmt in body:
            if not self.statement(stmt, env, ctx):
                return False
        return True

    def statement(self, stmt: ast.stmt, env: dict[str, list[Any]], ctx: Context) -> bool:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return True
        if isinstance(stmt, ast.If):
            choice = self.id_test(stmt.test, env, ctx)
            if choice is not None:
                return self.block(stmt.body if choice else stmt.orelse, env, ctx)
            self.calls(stmt.test, env, ctx)
            left = {k: list(v) for k, v in env.items()}
            right = {k: list(v) for k, v in env.items()}
            go_left = self.block(stmt.body, left, ctx)
            go_right = self.block(stmt.orelse, right, ctx)
            env.clear()
            for branch, goes in ((left, go_left), (right, go_right)):
                if not goes:
                    continue
                for k, values in branch.items():
                    merged = env.setdefault(k, [])
                    for v in values:
                        if v not in merged:
                            merged.append(v)
            if not go_left and not go_right:
                env.update(left)
                return False
            return True
        if isinstance(stmt, (ast.For, ast.While, ast.With, ast.Try)):
            for child in ast.iter_child_nodes(stmt):
                if isinstance(child, ast.expr):
                    self.calls(child, env, ctx)
            bodies = [getattr(stmt, "body", [])]
            bodies += [getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])]
            bodies += [h.body for h in getattr(stmt, "handlers", [])]
            for body in bodies:
                self.block(body, env, ctx)
            return True
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            value = stmt.value
            if value is None:
                return True
            self.calls(value, env, ctx)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            values = self.values(value, env, ctx)
            for target in targets:
                if isinstance(target, ast.Name):
                    env[target.id] = values
            return True
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.calls(stmt.value, env, ctx)
            return False
        if isinstance(stmt, ast.Raise):
            return False
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.expr):
                self.calls(child, env, ctx)
        return True

    def id_test(self, test: ast.expr, env: dict[str, list[Any]], ctx: Context) -> bool | None:
        """Tests decided before running: `TYPE_CHECKING` is false, and in the mixins
        (gitlab.mixins) `id is None`, `self._id_attr` and the like follow whether the
        manager's objects have an id. Custom code keeps both branches (KeyManager.get
        finds a key by id or, without one, by fingerprint)."""
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            return False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self.id_test(test.operand, env, ctx)
            return None if inner is None else not inner
        if ctx.owner.__module__ != "gitlab.mixins":
            return None
        if isinstance(test, (ast.Attribute, ast.Name)) and ast.unparse(test) in (
            "self._id_attr",
            "self.encoded_id",
            "id",
            "obj_id",
        ):
            return has_ids(ctx)
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return None
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if not (isinstance(right, ast.Constant) and right.value is None):
            return None
        if not isinstance(op, (ast.Is, ast.IsNot)):
            return None
        if ast.unparse(left) not in ("id", "obj_id", "self.encoded_id", "self._id_attr"):
            return None
        is_none = not has_ids(ctx)
        return is_none if isinstance(op, ast.Is) else not is_none

    # -- calls ----------------------------------------------------------------------

    def calls(self, expr: ast.expr, env: dict[str, list[Any]], ctx: Context) -> None:
        for node in ast.walk(expr):
            if isinstance(node, ast.Call):
                self.call(node, env, ctx)

    def call(self, node: ast.Call, env: dict[str, list[Any]], ctx: Context) -> None:
        func = node.func
        # gl.http_get(path, ...)
        if isinstance(func, ast.Attribute) and func.attr in HTTP and self.is_gitlab(func.value):
            self.emit(HTTP[func.attr], node, env, ctx)
            return
        # http_method(path, ...) with http_method = self._get_update_method() or gl.http_put
        if isinstance(func, ast.Name) and func.id in env:
            methods = [v for v in env[func.id] if isinstance(v, HttpMethod)]
            for m in methods:
                self.emit(m.method, node, env, ctx)
            if methods:
                return
        if isinstance(func, ast.Call):
            for value in self.values(func, env, ctx):
                if isinstance(value, HttpMethod):
                    self.emit(value.method, node, env, ctx)
            return
        target = self.callee(func, ctx)
        if target is None:
            return
        klass, function, on_object, owner_cls = target
        if f"{klass.__name__}.{func.attr}" == GENERIC_HEAD:
            return
        override = None
        for kw in node.keywords:
            if kw.arg == "path":
                values = self.values(kw.value, env, ctx)
                override = values
        args: dict[str, Any] = {}
        callee_node = function_ast(unwrap(function))
        if callee_node is not None:
            params = [a.arg for a in callee_node.args.posonlyargs + callee_node.args.args]
            # `Mixin.method(self, ...)` passes self explicitly; `self.method(...)` does not
            explicit = (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in {c.__name__ for c in owner_cls.__mro__}
            )
            offset = 0 if explicit else 1
            for i, arg in enumerate(node.args):
                index = i + offset
                if index < len(params) and not isinstance(arg, ast.Starred):
                    values = self.values(arg, env, ctx)
                    if len(values) == 1 and isinstance(values[0], str):
                        args[params[index]] = values[0]
            for kw in node.keywords:
                if kw.arg and kw.arg != "path":
                    values = self.values(kw.value, env, ctx)
                    if len(values) == 1 and isinstance(values[0], str):
                        args[kw.arg] = values[0]
        # the id passed to a manager's method keeps the manager's naming of it
        args.pop("id", None)
        args.pop("obj_id", None)
        self.run(
            function,
            Context(
                manager=ctx.manager,
                obj=ctx.obj,
                on_object=on_object,
                owner=klass,
                caller=ctx.caller,
                path_override=override,
                args=args,
                depth=ctx.depth + 1,
            ),
        )

    def callee(self, func: ast.expr, ctx: Context) -> tuple[type, Any, bool, type] | None:
        """A method call that is followed: super().m, self.m, self.manager.m, Mixin.m."""
        if not isinstance(func, ast.Attribute):
            return None
        name = func.attr
        value = func.value
        this = ctx.obj if ctx.on_object else ctx.manager
        if this is None:
            return None
        # super().m(...)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
            hit = lookup(this, name, after=ctx.owner)
            return (hit[0], hit[1], ctx.on_object, this) if hit and callable(hit[1]) else None
        # self.m(...)
        if isinstance(value, ast.Name) and value.id == "self":
            hit = lookup(this, name)
            return (hit[0], hit[1], ctx.on_object, this) if hit and inspect.isfunction(unwrap(hit[1])) else None
        # self.manager.m(...)
        if (
            ctx.on_object
            and isinstance(value, ast.Attribute)
            and value.attr == "manager"
            and isinstance(value.value, ast.Name)
            and value.value.id == "self"
        ):
            hit = lookup(ctx.manager, name)
            if hit is None:
                # An object class shared by several managers (User, DeployToken, ...):
                # this manager cannot do it, python-gitlab would raise AttributeError.
                self.found.dead.add(f"{ctx.caller} on {ctx.manager.__name__}")
                return None
            return (hit[0], hit[1], False, ctx.manager) if inspect.isfunction(unwrap(hit[1])) else None
        # CreateMixin.create(self, ...)
        if isinstance(value, ast.Name):
            for klass in this.__mro__:
                if klass.__name__ == value.id and name in vars(klass):
                    return klass, vars(klass)[name], ctx.on_object, this
        return None

    def is_gitlab(self, expr: ast.expr) -> bool:
        text = ast.unparse(expr)
        return text in ("self.gitlab", "self.manager.gitlab", "gl", "self._gl")

    def emit(self, method: str, node: ast.Call, env: dict[str, list[Any]], ctx: Context) -> None:
        if not node.args:
            path_kw = [kw.value for kw in node.keywords if kw.arg == "path"]
            if not path_kw:
                self.found.unresolved.append(f"{ctx.caller}: {method} without a path")
                return
            expr = path_kw[0]
        else:
            expr = node.args[0]
        for value in self.values(expr, env, ctx):
            self.found.ops.append((method, value, ctx.caller))

    # -- expressions ----------------------------------------------------------------

    def values(self, expr: ast.expr, env: dict[str, list[Any]], ctx: Context) -> list[Any]:
        """The possible values of an expression (strings are path templates)."""
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else [Unknown(repr(expr.value))]
        if isinstance(expr, ast.Name):
            if expr.id in env:
                return list(env[expr.id])
            return [Unknown(f"name {expr.id}")]
        if isinstance(expr, ast.JoinedStr):
            results = [""]
            for part in expr.values:
                if isinstance(part, ast.Constant):
                    parts = [str(part.value)]
                elif isinstance(part, ast.FormattedValue):
                    parts = self.values(part.value, env, ctx)
                else:
                    parts = [Unknown(ast.unparse(part))]
                results = [self.concat(a, b) for a in results for b in parts]
            return results
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            return [
                self.concat(a, b)
                for a in self.values(expr.left, env, ctx)
                for b in self.values(expr.right, env, ctx)
            ]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
            templates = self.values(expr.left, env, ctx)
            items = expr.right.elts if isinstance(expr.right, ast.Tuple) else [expr.right]
            args = [self.values(i, env, ctx)[0] for i in items]
            out = []
            for t in templates:
                if not isinstance(t, str) or any(not isinstance(a, str) for a in args):
                    out.append(Unknown(ast.unparse(expr)))
                    continue
                try:
                    out.append(t % tuple(args))
                except (TypeError, ValueError):
                    out.append(Unknown(ast.unparse(expr)))
            return out
        if isinstance(expr, ast.IfExp):
            choice = self.id_test(expr.test, env, ctx)
            if choice is not None:
                return self.values(expr.body if choice else expr.orelse, env, ctx)
            return self.values(expr.body, env, ctx) + self.values(expr.orelse, env, ctx)
        if isinstance(expr, ast.Attribute):
            return [self.attribute(expr, env, ctx)]
        if isinstance(expr, ast.Subscript):
            return self.subscript(expr, env, ctx)
        if isinstance(expr, ast.Call):
            return self.call_value(expr, env, ctx)
        return [Unknown(ast.unparse(expr))]

    def concat(self, a: Any, b: Any) -> Any:
        if isinstance(a, Unknown):
            return a
        if isinstance(b, Unknown):
            return b
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        return Unknown(f"{a!r} + {b!r}")

    def manager_path(self, ctx: Context) -> Any:
        path = getattr(ctx.manager, "_path", None)
        return path if isinstance(path, str) else Unknown(f"{ctx.manager.__name__} has no _path")

    def attribute(self, expr: ast.Attribute, env: dict[str, list[Any]], ctx: Context) -> Any:
        text = ast.unparse(expr)
        if not ctx.on_object and text in ("self.path", "self._path", "self._computed_path"):
            return self.manager_path(ctx)
        if ctx.on_object and text in (
            "self.manager.path",
            "self.manager._path",
            "self.manager._computed_path",
        ):
            return self.manager_path(ctx)
        if ctx.on_object and text == "self.encoded_id":
            return placeholder(id_attr(ctx.obj) or "id")
        if ctx.on_object and text == "self._id_attr":
            return Unknown(text)
        if not ctx.on_object and text == "self._parent.id":
            names = [k for k, v in getattr(ctx.manager, "_from_parent_attrs", {}).items() if v == "id"]
            return placeholder(names[0]) if names else Unknown(text)
        if ctx.on_object and isinstance(expr.value, ast.Name) and expr.value.id == "self":
            if expr.attr.startswith("_") or expr.attr == "manager":
                return Unknown(text)
            return placeholder(expr.attr)
        if text in ("self.gitlab.http_put", "self.manager.gitlab.http_put"):
            return HttpMethod("PUT")
        if text in ("self.gitlab.http_post", "self.manager.gitlab.http_post"):
            return HttpMethod("POST")
        return Unknown(text)

    def subscript(self, expr: ast.Subscript, env: dict[str, list[Any]], ctx: Context) -> list[Any]:
        text = ast.unparse(expr.value)
        key = expr.slice
        if text in (
            "self._from_parent_attrs",
            "self._parent_attrs",
            "self.parent_attrs",
            "self.manager._parent_attrs",
            "self.manager.parent_attrs",
        ) and isinstance(key, ast.Constant):
            return [placeholder(str(key.value))]
        if isinstance(key, ast.Slice):
            out = []
            for value in self.values(expr.value, env, ctx):
                if not isinstance(value, str):
                    out.append(value)
                    continue
                bounds = []
                for b in (key.lower, key.upper):
                    if b is None:
                        bounds.append(None)
                    else:
                        try:
                            bounds.append(ast.literal_eval(b))
                        except ValueError:
                            bounds.append(Unknown(ast.unparse(b)))
                if any(isinstance(b, Unknown) for b in bounds):
                    out.append(Unknown(ast.unparse(expr)))
                else:
                    out.append(value[bounds[0] : bounds[1]])
            return out
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return [placeholder(key.value)]
        return [Unknown(ast.unparse(expr))]

    def call_value(self, expr: ast.Call, env: dict[str, list[Any]], ctx: Context) -> list[Any]:
        func = expr.func
        name = ast.unparse(func)
        # utils.EncodedId(x), str(x): the value of x
        if name in ("utils.EncodedId", "EncodedId", "gitlab.utils.EncodedId", "str") and expr.args:
            return self.values(expr.args[0], env, ctx)
        if name in ("self._compute_path", "self.manager._compute_path"):
            if expr.args:
                return self.values(expr.args[0], env, ctx)
            return [self.manager_path(ctx)]
        if name in ("self._get_update_method", "self.manager._get_update_method"):
            owner = ctx.obj if (ctx.on_object and name == "self._get_update_method") else ctx.manager
            update = getattr(owner, "_update_method", None)
            label = getattr(update, "name", "PUT")
            return [HttpMethod(label)]
        if name in ("self.get_id", "self.manager.get_id") and ctx.on_object:
            return [placeholder(id_attr(ctx.obj) or "id")]
        # x.pop("path", default) / x.get("path", default): the caller's path= or default
        if isinstance(func, ast.Attribute) and func.attr in ("pop", "get") and expr.args:
            key = expr.args[0]
            if isinstance(key, ast.Constant) and key.value == "path":
                if ctx.path_override is not None:
                    return list(ctx.path_override)
                if len(expr.args) > 1:
                    return self.values(expr.args[1], env, ctx)
                return [Unknown("path= without a default")]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                return [placeholder(key.value)]
        # template.format(**data): the template, its placeholders kept
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "format"
            and not expr.args
            and all(kw.arg is None for kw in expr.keywords)
        ):
            return self.values(func.value, env, ctx)
        # UploadMixin: `_upload_path.format(**data)` of the object class
        if name == "self._get_upload_path" and ctx.on_object:
            upload = getattr(ctx.obj, "_upload_path", None)
            return [upload] if isinstance(upload, str) else [Unknown(name)]
        # s.replace(...), s.lower(): rarely used on paths
        return [Unknown(ast.unparse(expr))]


def managers() -> list[type]:
    import gitlab.base
    import gitlab.v4.objects as objects

    found = {}
    for _, klass in inspect.getmembers(objects, inspect.isclass):
        if not issubclass(klass, gitlab.base.RESTManager) or klass is gitlab.base.RESTManager:
            continue
        if not klass.__module__.startswith("gitlab.v4.objects"):
            continue
        found[klass.__name__] = klass
    return [found[k] for k in sorted(found)]


def methods(klass: type) -> list[tuple[str, type, Any]]:
    """Every function `klass` has (its own and inherited), with the class defining it."""
    out = []
    for name in sorted(dir(klass)):
        if name.startswith("__"):
            continue
        hit = lookup(klass, name)
        if hit is None:
            continue
        owner, value = hit
        if not inspect.isfunction(unwrap(value)):
            continue
        if not owner.__module__.startswith("gitlab."):
            continue
        out.append((name, owner, value))
    return out


PARAM = re.compile(r"\{([^{}]*)\}")


def shape(path: str) -> str:
    return "/".join("{}" if PARAM.fullmatch(s) else s for s in path.split("/"))


def well_formed(path: str) -> bool:
    """Each segment is a literal or one `{name}` placeholder, nothing else braced."""
    for segment in path.split("/")[1:]:
        if not segment:
            return False
        if PARAM.fullmatch(segment) and PARAM.fullmatch(segment).group(1):
            continue
        if "{" in segment or "}" in segment:
            return False
    return True


def inventory() -> tuple[dict[str, Any], dict[str, int], list[str]]:
    import gitlab

    found = Found()
    evaluator = Evaluator(found)
    manager_classes = managers()
    object_classes = set()
    for manager in manager_classes:
        obj = getattr(manager, "_obj_cls", None)
        if not isinstance(obj, type):
            obj = None
        targets = [(manager, False)]
        if obj is not None:
            targets.append((obj, True))
            object_classes.add(obj)
        for klass, on_object in targets:
            for name, owner, function in methods(klass):
                if f"{owner.__name__}.{name}" == GENERIC_HEAD:
                    found.head += 1
                    continue
                evaluator.run(
                    function,
                    Context(
                        manager=manager,
                        obj=obj,
                        on_object=on_object,
                        owner=owner,
                        caller=f"{klass.__name__}.{name}",
                    ),
                )

    unresolved = list(found.unresolved)
    by_shape: dict[tuple[str, str], dict[str, Any]] = {}
    for method, path, caller in found.ops:
        if isinstance(path, str):
            # GitLab's router squeezes slashes and drops a trailing one (`/features/`).
            path = "/" + "/".join(s for s in path.split("/") if s)
        if not isinstance(path, str):
            unresolved.append(f"{caller}: {method} {path!r}")
            continue
        if not path.startswith("/") or not well_formed(path):
            unresolved.append(f"{caller}: {method} {path!r}")
            continue
        key = (method, shape(path))
        entry = by_shape.setdefault(key, {"paths": set(), "callers": set()})
        entry["paths"].add(path)
        entry["callers"].add(caller)

    paths: dict[str, dict[str, Any]] = {}
    # one path template per shape: the first of the spellings, sorted
    spelled: dict[str, str] = {}
    for (method, shp), entry in sorted(by_shape.items()):
        chosen = spelled.get(shp) or sorted(entry["paths"])[0]
        spelled[shp] = chosen
    operation_ids: set[str] = set()
    for (method, shp), entry in sorted(by_shape.items()):
        path = spelled[shp]
        relative = path
        item = paths.setdefault(relative, {})
        names = PARAM.findall(path)
        if names and "parameters" not in item:
            item["parameters"] = [
                {"in": "path", "name": n, "required": True, "schema": {"type": "string"}}
                for n in names
            ]
        callers = sorted(entry["callers"])
        # named after a manager's method when one calls it, else an object's
        operation_id = min(callers, key=lambda c: ("Manager." not in c, c))
        first = operation_id
        n = 2
        while operation_id in operation_ids:
            operation_id = f"{first}_{n}"
            n += 1
        operation_ids.add(operation_id)
        item[method.lower()] = {
            "operationId": operation_id,
            "responses": {"default": {"description": "GitLab's answer"}},
            "x-python-gitlab": callers,
        }
    spec = {
        "openapi": "3.0.3",
        "info": {
            "title": "GitLab REST API v4 as python-gitlab calls it",
            "version": gitlab.__version__,
            "description": (
                "Generated by tests/gitlab/inventory.py from the REST managers of "
                f"python-gitlab {gitlab.__version__} (gitlab.v4.objects): every operation "
                "their mixins and custom actions send. Do not edit; regenerate."
            ),
        },
        "servers": [{"url": BASE}],
        "paths": paths,
    }
    counts = {
        "managers": len(manager_classes),
        "object classes": len(object_classes),
        "calls found": len(found.ops),
        "operations": sum(1 for item in paths.values() for k in item if k != "parameters"),
        "paths": len(paths),
        "generic head() left out (HEAD of a GET route)": found.head,
        "object methods left out (the manager lacks the method they call)": len(found.dead),
        "unresolved": len(unresolved),
    }
    return spec, counts, sorted(set(unresolved))


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the fixture, write nothing")
    parser.add_argument("--out", type=Path, default=FIXTURE)
    options = parser.parse_args()
    try:
        import gitlab
    except ImportError:
        print(
            f"python-gitlab is not installed: python3 -m pip install python-gitlab=={PINNED}",
            file=sys.stderr,
        )
        return 2
    if gitlab.__version__ != PINNED:
        print(
            f"python-gitlab {gitlab.__version__} is installed; the fixture is of {PINNED}: "
            f"python3 -m pip install python-gitlab=={PINNED}",
            file=sys.stderr,
        )
        return 2
    spec, counts, unresolved = inventory()
    for line in unresolved:
        print(f"unresolved: {line}", file=sys.stderr)
    text = render(spec)
    if options.check:
        current = options.out.read_text() if options.out.exists() else ""
        if current != text:
            print(
                f"{options.out.relative_to(REPO) if options.out.is_relative_to(REPO) else options.out} "
                "is not what tests/gitlab/inventory.py generates; run "
                "`python3 tests/gitlab/inventory.py` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{counts['operations']} operations, as generated")
        return 0 if not unresolved else 2
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text)
    for key, value in counts.items():
        print(f"{key}: {value}")
    return 0 if not unresolved else 2


if __name__ == "__main__":
    sys.exit(main())
