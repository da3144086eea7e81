"""The plugin host: loads built-ins and third parties through one path, and indexes their classes.

Sources are the ``ehrbench`` entry-point group (built-ins included) and ``--plugin FILE``
modules. A source that fails to import, or whose hook raises or returns something
invalid, is recorded as broken with its error; the others keep working. Two sources
that register the same name are an error naming both.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from ehrbench import hookspecs
from ehrbench.api import CATEGORIES, Dataset, Generator, Metric
from ehrbench.errors import PluginError, UnknownNameError, suggest

ENTRY_POINT_GROUP = "ehrbench"
KINDS: dict[str, tuple[str, type, str]] = {
    # kind: (hook name, base class, name pattern)
    "generators": ("ehrbench_generators", Generator, r"[a-z0-9]+(-[a-z0-9]+)*"),
    "metrics": ("ehrbench_metrics", Metric, r"[a-z0-9]+(_[a-z0-9]+)*"),
    "datasets": ("ehrbench_datasets", Dataset, r"[a-z0-9]+(-[a-z0-9]+)*"),
}
SINGULAR = {"generators": "generator", "metrics": "metric", "datasets": "dataset"}
# Command groups plugins add to: the hook that fills each, keyed by the command line's group name.
COMMAND_GROUPS: dict[str, str] = {"ehrbench": "ehrbench_commands", "prepare": "ehrbench_prepare_commands"}
# Module names of --plugin files start with this; job workers re-import them by path.
FILE_PLUGIN_PREFIX = "ehrbench_file_plugin_"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin source that could not be used, with the reason shown by ``ehrbench list``."""

    source: str
    error: str


@dataclass(frozen=True)
class Entry:
    """One registered class, the source that registered it, and why it cannot run (if so)."""

    kind: str
    name: str
    cls: Any
    source: str
    unavailable: str | None = None
    distribution: str | None = None  # the installed distribution that provides it (None: a --plugin file)


@dataclass
class Registry:
    """Every loaded generator, metric and dataset by registry name."""

    entries: dict[str, dict[str, Entry]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    broken: list[BrokenPlugin] = field(default_factory=list)
    # Plugin commands by group (:data:`COMMAND_GROUPS`) and name; ``cls`` holds the click command.
    commands: dict[str, dict[str, Entry]] = field(default_factory=lambda: {group: {} for group in COMMAND_GROUPS})

    def names(self, kind: str, available_only: bool = False) -> list[str]:
        return sorted(
            n for n, e in self.entries[kind].items() if not (available_only and e.unavailable)
        )

    def defaults(self, kind: str) -> list[str]:
        """Names a run uses when the user names none: available classes marked ``default``."""
        return [
            n
            for n in self.names(kind, available_only=True)
            if getattr(self.entries[kind][n].cls, "default", True)
        ]

    def entry(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; unknown or unavailable names raise a user-facing error."""
        found = self.entries[kind].get(name)
        what = SINGULAR[kind]
        if found is None:
            known = ", ".join(self.names(kind)) or "none"
            hint = ""
            if self.broken:
                hint = f" {len(self.broken)} plugin(s) failed to load; `ehrbench list` shows why."
            raise UnknownNameError(
                f"unknown {what} '{name}'{suggest(name, self.names(kind))}. Known {kind}: {known}.{hint}"
            )
        if found.unavailable:
            raise UnknownNameError(f"{what} '{name}' is not available: {found.unavailable}")
        return found

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).cls

    def add(self, kind: str, cls: Any, source: str) -> Entry:
        """Register a class handed over directly (``ehrbench.run(generators=[MyGAN])``), checked as a
        hook's are. The same class again is a no-op; another class under a taken name is an error."""
        problem = _check_class(kind, cls)
        if problem:
            raise PluginError(f"{source}: {problem}")
        name = cls.__dict__.get("name", getattr(cls, "name", None))
        existing = self.entries[kind].get(name)
        if existing is not None:
            if existing.cls is cls:
                return existing
            raise _duplicate(SINGULAR[kind], name, existing.source, source)
        entry = Entry(kind, name, cls, source, _missing_requirement(cls))
        self.entries[kind][name] = entry
        return entry


def _describe_exception(exc: BaseException, path: Path | None = None) -> str:
    """``Type: message`` plus the line in the plugin file where it happened, when known."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SystemExit):
        text = f"SystemExit: the plugin called sys.exit({exc.code!r}) while loading"
    if path is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
        if frames:
            text += f" (line {frames[-1].lineno})"
    return text


def _entry_point_sources() -> list[tuple[str, Any]]:
    seen: set[tuple[str, str]] = set()
    sources = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
        sources.append((f"entry point '{ep.name}' ({ep.value}, {dist})", ep))
    return sources


def _distribution(ep: Any) -> str | None:
    return ep.dist.name if ep.dist is not None else None


def load_plugin_file(path: Path) -> ModuleType:
    """Import a single-file plugin under a private, collision-free module name."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"{FILE_PLUGIN_PREFIX}{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def _missing_requirement(cls: Any) -> str | None:
    for module in getattr(cls, "requires", ()):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            hint = getattr(cls, "install_hint", "") or f"pip install {module}"
            return f"needs the '{module}' package ({hint})"
    return None


def _check_class(kind: str, cls: Any) -> str | None:
    """Why ``cls`` cannot be registered as a ``kind``, or None when it can."""
    _, base, pattern = KINDS[kind]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} is not a subclass of ehrbench.{base.__name__}"
    name = cls.__dict__.get("name", getattr(cls, "name", None))
    # Exactly str (a subclass could print or compare as something else) and matched whole; the
    # runner re-checks every name where it becomes part of a path (errors.path_component).
    if type(name) is not str or not re.fullmatch(pattern, name, flags=re.ASCII):
        style = "snake_case" if kind == "metrics" else "kebab-case"
        return f"{cls.__name__}.name must be a {style} string, got {name!r}"
    if inspect.isabstract(cls):
        missing = ", ".join(f"{m}()" for m in sorted(cls.__abstractmethods__))
        return f"{cls.__name__} ({name}) does not implement {missing}, which every {SINGULAR[kind]} must"
    if kind == "metrics":
        if getattr(cls, "category", None) not in CATEGORIES:
            return f"{cls.__name__}.category must be one of {', '.join(CATEGORIES)}"
        if not isinstance(getattr(cls, "higher_is_better", None), bool):
            return f"{cls.__name__}.higher_is_better must be True or False"
    return None


def load_registry(plugin_files: list[Path] | tuple[Path, ...] = (), entry_points: bool = True) -> Registry:
    """Load every plugin source and index what they register.

    A missing ``--plugin`` file is a :class:`PluginError`; a source that fails is kept in
    ``Registry.broken``. Two sources registering one name raise :class:`PluginError`.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()

    modules: list[tuple[str, Any, Path | None]] = []
    distributions: dict[str, str | None] = {}
    if entry_points:
        for label, ep in _entry_point_sources():
            distributions[label] = _distribution(ep)
            try:
                modules.append((label, ep.load(), None))
            except BaseException as exc:  # any import failure of a third party (sys.exit too) is reported
                if isinstance(exc, KeyboardInterrupt):
                    raise
                registry.broken.append(BrokenPlugin(label, _describe_exception(exc)))
    for raw in plugin_files:
        path = Path(raw).expanduser().resolve()
        if not path.is_file():
            raise PluginError(f"plugin file not found: {raw}")
        label = f"file {path}"
        try:
            modules.append((label, load_plugin_file(path), path))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            registry.broken.append(BrokenPlugin(label, _describe_exception(exc, path)))

    for label, module, path in modules:
        try:
            pm.register(module, name=label)
        except (pluggy.PluginValidationError, ValueError) as exc:
            registry.broken.append(BrokenPlugin(label, _describe_exception(exc, path)))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        registry.broken.append(BrokenPlugin(str(exc.plugin_name), f"unknown hook: {exc}"))
        pm.unregister(name=exc.plugin_name)

    for kind, (hook_name, _, _) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            _collect(registry, kind, impl.plugin_name, impl.function, distributions.get(impl.plugin_name))
    for group, hook_name in COMMAND_GROUPS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            _collect_commands(registry, group, impl.plugin_name, impl.function)
    return registry


def _call(registry: Registry, source: str, hook: Any) -> list[Any] | None:
    """The hook's list, or None (the source recorded as broken) when it raises."""
    try:
        return list(hook() or [])
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        registry.broken.append(BrokenPlugin(source, f"{hook.__name__}() raised {_describe_exception(exc)}"))
        return None


def _duplicate(what: str, name: str, first: str, second: str) -> PluginError:
    return PluginError(f"{what} name '{name}' is registered twice: by {first} and by {second}. "
                       f"Uninstall or rename one of them.")


def _collect(registry: Registry, kind: str, source: str, hook: Any, distribution: str | None) -> None:
    for cls in _call(registry, source, hook) or []:
        problem = _check_class(kind, cls)
        if problem:
            registry.broken.append(BrokenPlugin(source, problem))
            continue
        name = cls.__dict__.get("name", getattr(cls, "name", None))  # read once: the name _check_class checked
        existing = registry.entries[kind].get(name)
        if existing is not None:
            raise _duplicate(SINGULAR[kind], name, existing.source, source)
        registry.entries[kind][name] = Entry(kind, name, cls, source, _missing_requirement(cls), distribution)


def _collect_commands(registry: Registry, group: str, source: str, hook: Any) -> None:
    import click

    for command in _call(registry, source, hook) or []:
        if not isinstance(command, click.Command) or not command.name:
            registry.broken.append(BrokenPlugin(source, f"{command!r} is not a named click command"))
            continue
        existing = registry.commands[group].get(command.name)
        if existing is not None:
            raise _duplicate("command", command.name, existing.source, source)
        registry.commands[group][command.name] = Entry(group, command.name, command, source)
