"""Plugin discovery and the registry of every kind plugins register: datasets, models, trainers, trackers,
executors, layouts, decoders, face detectors, and the kinds plugins declare themselves.

Built-in plugins are registered through the same door as third-party ones: they
are modules of hook implementations, like any entry point of the group ``fvc``.
A plugin that fails to import or to register is recorded with a one-line error
and everything else keeps working.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import traceback
import types
import typing
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from fvc_core import hookspecs
from fvc_core.errors import ConfigError, PluginError, one_line

ENTRY_POINT_GROUP = "fvc"
BUILTIN_PLUGINS = ("fvc_core.builtin.console", "fvc_core.builtin.supervised", "fvc_core.builtin.local_executor")
KINDS = ("datasets", "models", "trainers", "trackers", "executors")
"""The kinds the core's config selects (a section's ``name``); every kind is in ``Registry.kinds``."""
KIND_NOUN = {"datasets": "dataset", "models": "model", "trainers": "trainer", "trackers": "tracker",
             "executors": "executor", "layouts": "layout", "decoders": "decoder", "face_detectors": "face detector"}
REGISTER = "register_"
"""A hookspec ``register_<kind>(register)`` declares a kind: the core's in hookspecs.py, a plugin's own
in its ``fvc_addhooks``. Each is collected the same way, by ``_Loader._collect``."""


def kind_noun(kind: str) -> str:
    """``face detector`` for ``face_detectors``: how an error line names one thing of a kind."""
    return KIND_NOUN.get(kind) or kind.removesuffix("s").replace("_", " ")


def declared_kinds(hook: Any) -> list[str]:
    """Every kind a hookspec declares (``register_<kind>(register)``), the core's first, in a stable order."""
    found = []
    for name in dir(hook):
        caller = getattr(hook, name)
        spec = getattr(caller, "spec", None)
        if name.startswith(REGISTER) and spec is not None and tuple(spec.argnames) == ("register",):
            found.append(name[len(REGISTER):])
    order = list(KIND_NOUN)
    return sorted(found, key=lambda k: (order.index(k) if k in order else len(order), k))
# Set by `fvc -p no:NAME` style options through the environment too, so subprocesses
# (DataLoader workers, `fvc` called from tests) see the same plugin set.
DISABLE_ENV = "FVC_DISABLE_PLUGINS"
M = TypeVar("M", bound=BaseModel)


class EmptyConfig(BaseModel):
    """The config of a plugin that has no keys of its own."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str
    version: str
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    """The full traceback of ``error``, for a plugin author (``fvc plugins --traceback``)."""


@dataclass
class Registration:
    kind: str
    name: str
    factory: Callable[..., Any]
    config: type[BaseModel]
    plugin: PluginInfo
    description: str = ""


@dataclass
class Command:
    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any], int | None]
    plugin: PluginInfo


def closest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean ...?)' for the nearest valid names, or the list of valid names."""
    candidates = sorted(candidates)
    near = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if near:
        return " (did you mean " + " or ".join(repr(n) for n in near) + "?)"
    if candidates:
        return " (valid: " + ", ".join(candidates) + ")"
    return ""


class Registry:
    """What the installed plugins provide, by kind and name."""

    def __init__(self, plugins: list[PluginInfo], *, installed: Iterable[str] = (),
                 disabled: Iterable[str] = ()):
        self.plugins = plugins
        self.installed = sorted(set(installed) | {p.name for p in plugins})
        """Every plugin name fvc can load, disabled ones included."""
        self.disabled = sorted(disabled)
        self._items: dict[str, dict[str, Registration]] = {k: {} for k in KINDS}
        self.kinds: list[str] = list(KINDS)
        """Every declared kind (set by the loader): the core's and those plugins declare."""
        # name -> every registration of it, when two plugins claim the same name
        self.conflicts: dict[tuple[str, str], list[Registration]] = {}
        self.commands: dict[str, Command] = {}
        self.hook: pluggy.HookRelay = pluggy.PluginManager(ENTRY_POINT_GROUP).hook
        """The enabled plugins' hooks (set by the loader), for hooks a plugin calls itself."""

    def add(self, reg: Registration) -> None:
        existing = self._items.setdefault(reg.kind, {}).get(reg.name)
        if existing is not None and existing.plugin is not reg.plugin:
            self.conflicts.setdefault((reg.kind, reg.name), [existing]).append(reg)
            return
        self._items[reg.kind][reg.name] = reg
        reg.plugin.provides.setdefault(reg.kind, []).append(reg.name)

    def names(self, kind: str) -> list[str]:
        return sorted(self._items.get(kind, {}))

    def registrations(self, kind: str) -> dict[str, Registration]:
        """Every registration of ``kind`` by name (a name two plugins claim: the first, see ``conflicts``)."""
        return dict(self._items.get(kind, {}))

    def get(self, kind: str, name: str, *, where: str | None = None) -> Registration:
        """The registration of ``name``; a PluginError naming the key, the close names or both providers."""
        noun = kind_noun(kind)
        at = f"{where}: " if where else ""
        if (kind, name) in self.conflicts:
            dists = " and ".join(
                f"{r.plugin.distribution} (plugin {r.plugin.name!r})" for r in self.conflicts[(kind, name)]
            )
            raise PluginError(f"{at}{noun} {name!r} is provided by both {dists}; uninstall or disable one")
        try:
            return self._items.get(kind, {})[name]
        except KeyError:
            broken = [p for p in self.plugins if p.error]
            hint = ""
            if broken:
                hint = "; plugins that failed to load: " + ", ".join(f"{p.name} ({p.error})" for p in broken)
            off = self.disabled_provider(kind, name)
            if off is not None:
                raise PluginError(f"{at}{noun} {name!r} is disabled: it comes with the plugin {off.name!r} "
                                  f"({off.distribution}), left out by -p no:{off.name} or plugins.disable"
                                  ) from None
            raise PluginError(f"{at}unknown {noun} {name!r}{closest(name, self._items.get(kind, {}))}{hint}") from None

    def not_installed(self, name: str) -> str | None:
        """Why ``name`` cannot be disabled (no installed plugin has it, with the closest names), or None."""
        if name in self.installed:
            return None
        return f"no installed plugin is named {name!r}{closest(name, self.installed)}"

    def disabled_provider(self, kind: str, name: str) -> PluginInfo | None:
        """The disabled plugin that would provide ``name``; only looked up for a name not found, so the
        disabled plugins are imported (by a registry of their own) only to explain a miss."""
        if not self.disabled:
            return None
        everything = _Loader(set()).load()
        reg = everything._items.get(kind, {}).get(name)
        if reg is not None and reg.plugin.name in self.disabled:
            return reg.plugin
        return None

    def validate(self, kind: str, name: str, config: Any, *, where: str | None = None) -> BaseModel:
        """The plugin's own config model instance from a mapping, a model, an object or None."""
        reg = self.get(kind, name, where=where)
        model = reg.config
        if isinstance(config, model):
            return config
        if config is None:
            data: Mapping[str, Any] = {}
        elif isinstance(config, Mapping):
            data = {k: v for k, v in config.items() if k != "name"}
        elif isinstance(config, BaseModel):
            data = config.model_dump(exclude={"name"})
        else:
            # An object such as the seed notebook's RunConfig: take the attributes the plugin knows.
            data = {k: getattr(config, k) for k in model.model_fields if hasattr(config, k)}
        return validate_model(model, data, where or f"{kind_noun(kind)} {name!r}")

    def validate_without_invalid(self, kind: str, name: str, config: Mapping[str, Any]
                                 ) -> tuple[BaseModel, list[str]] | None:
        """The plugin's config model from ``config`` with the keys validation refuses left out (at
        their defaults), and those of them given a value the plugin does not take (unknown keys are
        not listed: they never count anyway); None when the section is invalid as a whole (a
        validator over several keys) or the plugin is unknown. A config that already failed is still
        compared with the other sections this way, so its problems and theirs are listed at once."""
        try:
            model = self.get(kind, name).config
        except PluginError:
            return None
        data = {k: v for k, v in config.items() if k != "name"}
        refused: set[str] = {str(loc[0]) for loc in _booleans_for_numbers(model, data) if loc}
        unknown: set[str] = set()
        try:
            model.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                if not err["loc"]:
                    return None
                (unknown if err["type"] == "extra_forbidden" and len(err["loc"]) == 1 else refused).add(
                    str(err["loc"][0]))
        try:
            instance = model.model_validate({k: v for k, v in data.items() if k not in refused | unknown})
        except ValidationError:
            return None
        return instance, sorted(refused - unknown)

    def create(self, kind: str, name: str, config: Any = None) -> Any:
        """Validate ``config`` against the plugin's model and call its factory."""
        reg = self.get(kind, name)
        return reg.factory(self.validate(kind, name, config))


def validate_model(model: type[M], data: Any, prefix: str) -> M:
    """``model.model_validate(data)`` with every problem at once, one line each (ConfigError), a
    boolean where a number is expected included (bool_problems)."""
    booleans = _booleans_for_numbers(model, data)
    problems = _bool_lines(booleans, prefix)
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + validation_problems(exc, prefix, model, skip=set(booleans))) from None
    if problems:
        raise ConfigError(problems)
    return instance


def bool_problems(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """One line per boolean given where ``model`` expects a number.

    Pydantic's lax mode reads ``true`` as 1 and ``false`` as 0 for an int or a float field, so
    ``data.clip_len=true`` silently became a one-frame window. YAML reads ``yes``, ``on`` and ``true``
    as booleans, so this is an easy slip. Strict mode cannot be switched on instead: it would refuse
    the text a config gives for a path, a tuple or an enum. Checked against the annotations before
    validation, so it is reported with the section's other problems, in every plugin's section alike.
    """
    return _bool_lines(_booleans_for_numbers(model, data), prefix)


def _bool_lines(booleans: dict[tuple[Any, ...], bool], prefix: str) -> list[str]:
    return [f"{_dotted(prefix, loc)}: expected a number, got the boolean {str(value).lower()}"
            for loc, value in booleans.items()]


def _dotted(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else (f"{path}.{part}" if path else str(part))
    return path


def _booleans_for_numbers(model: type[BaseModel], data: Any) -> dict[tuple[Any, ...], bool]:
    """Where (pydantic's loc) a boolean stands for a number in ``data``, and the boolean."""
    found: dict[tuple[Any, ...], bool] = {}

    def walk(annotation: Any, value: Any, loc: tuple[Any, ...]) -> None:
        annotation = _unwrap(annotation)
        if isinstance(value, bool):
            if _takes_number(annotation) and not _takes_bool(annotation):
                found[loc] = value
            return
        for member in _members(annotation):
            origin, args = typing.get_origin(member), typing.get_args(member)
            if isinstance(value, Mapping):
                if isinstance(member, type) and issubclass(member, BaseModel):
                    for key, item in value.items():
                        field_info = member.model_fields.get(key) if isinstance(key, str) else None
                        if field_info is not None:
                            walk(field_info.annotation, item, (*loc, key))
                elif origin in (dict, abc.Mapping) and len(args) == 2:
                    for key, item in value.items():
                        walk(args[1], item, (*loc, key))
            elif isinstance(value, (list, tuple)):
                if origin is tuple and args and args[-1] is not Ellipsis:
                    pairs = list(zip(args, value, strict=False))  # a wrong length is pydantic's to report
                elif origin in (list, tuple, set, frozenset, abc.Sequence) and args:
                    pairs = [(args[0], item) for item in value]
                else:
                    pairs = []
                for i, (item_type, item) in enumerate(pairs):
                    walk(item_type, item, (*loc, i))

    walk(model, data, ())
    return found


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    """The types a union allows (the type itself when it is no union), Annotated unwrapped."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(annotation)]
    return [annotation]


def _takes_bool(annotation: Any) -> bool:
    for member in _members(annotation):
        if member in (bool, Any, object):
            return True
        if typing.get_origin(member) is typing.Literal and any(isinstance(v, bool) for v in typing.get_args(member)):
            return True
    return False


def _takes_number(annotation: Any) -> bool:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, (int, float)) and member is not bool:
            return True
        if typing.get_origin(member) is typing.Literal and any(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in typing.get_args(member)):
            return True
    return False


def validation_problems(exc: ValidationError, prefix: str, model: type[BaseModel] | None = None,
                        skip: set[tuple[Any, ...]] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """One line per pydantic error: the dotted key path, what was expected, the closest valid keys;
    none for the keys in ``skip`` (already reported)."""
    problems = []
    for err in exc.errors():
        if tuple(err["loc"]) in skip:
            continue
        loc = ".".join(str(p) for p in err["loc"])
        path = ".".join(part for part in (prefix, loc) if part)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, err["loc"][:-1])
            hint = closest(str(err["loc"][-1]), valid) if valid else ""
            problems.append(f"{path}: unknown key{hint}")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) or err["type"] == "missing" else f" (got {got!r})"
            # pydantic prefixes a validator's own message with its exception type: the user needs the message.
            message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            problems.append(f"{path}: {message}{shown}")
    return problems


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the (nested) model at ``loc``, for "did you mean" hints."""
    for part in loc:
        if model is None:
            return []
        field_info = model.model_fields.get(str(part))
        ann = field_info.annotation if field_info else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return list(model.model_fields) if model is not None else []


class _Loader:
    def __init__(self, disabled: set[str]):
        self.disabled = disabled
        self.pm = pluggy.PluginManager("fvc")
        self.pm.add_hookspecs(hookspecs)
        # Every plugin registered from here on is asked for hooks of its own as it arrives.
        self.pm.hook.fvc_addhooks.call_historic(kwargs={"pluginmanager": self.pm})
        self.infos: list[PluginInfo] = []
        self.names: set[str] = set()

    def load(self) -> Registry:
        for module_name in BUILTIN_PLUGINS:
            name = module_name.rsplit(".", 1)[-1]
            info = PluginInfo(name, module_name, "fvc-core", _version("fvc-core"), builtin=True)
            self._import(info, lambda m=module_name: importlib.import_module(m))
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            info = PluginInfo(ep.name, ep.value, dist, version)
            self._import(info, ep.load)
        registry = Registry(self.infos, installed=self.names, disabled=self.disabled & set(self.names))
        registry.hook = self.pm.hook
        registry.kinds = declared_kinds(self.pm.hook)
        for info in self.infos:
            if info.error is None:
                self._collect(info, registry)
        return registry

    def _import(self, info: PluginInfo, load: Callable[[], Any]) -> None:
        self.names.add(info.name)
        if info.name in self.disabled:
            return
        self.infos.append(info)
        try:
            module = load()
            self.pm.register(module, name=info.name)
        except Exception as exc:  # a broken third-party plugin must not take fvc down
            if self.pm.has_plugin(info.name):  # its fvc_addhooks failed: none of its hooks are called
                self.pm.unregister(name=info.name)
            info.error = one_line(exc)
            info.traceback = traceback.format_exc()
            return
        info.hooks = sorted(
            impl_name for impl_name in dir(self.pm.hook)
            if not impl_name.startswith("_")
            and any(i.plugin_name == info.name for i in getattr(self.pm.hook, impl_name).get_hookimpls())
        )

    def _collect(self, info: PluginInfo, registry: Registry) -> None:
        def register(kind: str) -> Callable[..., None]:
            def _register(name: str, factory: Callable[..., Any], config: type[BaseModel] | None = None,
                          description: str = "") -> None:
                registry.add(Registration(kind, name, factory, config or EmptyConfig, info, description))
            return _register

        def add_command(name: str, help: str, configure: Callable[[Any], None],
                        run: Callable[[Any], int | None]) -> None:
            if name not in registry.commands:
                registry.commands[name] = Command(name, help, configure, run, info)

        try:
            # One code path for every kind, the core's and the plugins' own (fvc_addhooks) alike.
            for kind in registry.kinds:
                for impl in getattr(self.pm.hook, f"{REGISTER}{kind}").get_hookimpls():
                    if impl.plugin_name == info.name:
                        impl.function(register=register(kind))
            for impl in self.pm.hook.register_commands.get_hookimpls():
                if impl.plugin_name == info.name:
                    impl.function(add_command=add_command)
        except Exception as exc:
            info.error = one_line(exc)
            info.traceback = traceback.format_exc()


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    eps = []
    # The same distribution can appear twice on sys.path (editable + build dir); keep the first.
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            eps.append(ep)
    return eps


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def disabled_from_env() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


_cache: dict[frozenset[str], Registry] = {}


def get_registry(disabled: Iterable[str] = ()) -> Registry:
    """The registry for the installed plugins less ``disabled`` (and $FVC_DISABLE_PLUGINS); cached."""
    key = frozenset(set(disabled) | disabled_from_env())
    if key not in _cache:
        _cache[key] = _Loader(set(key)).load()
    return _cache[key]


def clear_cache() -> None:
    """Forget discovered plugins (tests that install or register plugins call this)."""
    _cache.clear()
