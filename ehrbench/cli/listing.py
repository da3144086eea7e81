"""``ehrbench list`` and ``ehrbench show``: what is registered, what runs by default, and every option.

Names are printed whole and never cut, whatever the width: a name is what a user types. The
listing is plain text (descriptions wrap to the terminal; a name longer than its column pushes the
description to the next line), so a pipe or an 80-column terminal shows the same names.
``--format json`` gives everything, options with their defaults and per-profile values included.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
import typing
from pathlib import Path
from typing import Any

import click

from ehrbench.api import PROFILES
from ehrbench.cli import flags as f
from ehrbench.errors import UnknownNameError, suggest
from ehrbench.plugins import KINDS, SINGULAR, Entry, Registry, load_registry

DEFAULT_MARK = "*"
_MISSING = object()


# -- what a plugin is, as data ------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _type_name(annotation: Any) -> str:
    """A type as a user reads it: ``int``, ``"a" | "b"``, ``list of int``, ``str | none``."""
    if isinstance(annotation, str):
        return annotation
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(_value_text(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join("none" if a is type(None) else _type_name(a) for a in args)
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_type_name(inner[0])}" if inner else "list"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def options_of(cls: type) -> list[dict[str, Any]]:
    """Each option of a plugin class: name, type, default (None when required), and the value each
    profile gives it (profiles that leave it alone give the default)."""
    options_cls = getattr(cls, "Options", None)
    if options_cls is None or not dataclasses.is_dataclass(options_cls):
        return []
    try:
        hints = typing.get_type_hints(options_cls)
    except Exception:  # an annotation that cannot be resolved here: show it as written
        hints = {}
    profiles = {p: {str(k).replace("-", "_"): v for k, v in (getattr(cls, "profiles", {}) or {}).get(p, {}).items()}
                for p in PROFILES}
    described = []
    for field in dataclasses.fields(options_cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = field.default_factory()  # type: ignore[misc]
        else:
            default = _MISSING
        required = default is _MISSING
        by_profile = {p: profiles[p].get(field.name, None if required else default) for p in PROFILES
                      if field.name in profiles[p] or not required}
        described.append({
            "name": field.name,
            "type": _type_name(hints.get(field.name, field.type)),
            "required": required,
            "default": None if required else _jsonable(default),
            "profiles": {p: _jsonable(v) for p, v in by_profile.items()},
        })
    return described


def describe_entry(entry: Entry) -> dict[str, Any]:
    """One registered class as data: what ``list --format json`` and ``show`` print."""
    cls = entry.cls
    info: dict[str, Any] = {
        "name": entry.name,
        "kind": SINGULAR[entry.kind],
        "default": bool(getattr(cls, "default", entry.kind != "datasets")),
        "available": entry.unavailable is None,
        "unavailable": entry.unavailable,
        "description": getattr(cls, "description", "") or "",
        "source": entry.source,
    }
    if entry.kind == "generators":
        info["calibration"] = bool(getattr(cls, "calibration", False))
    if entry.kind == "metrics":
        info["category"] = getattr(cls, "category", None)
        direction = cls.direction("value")
        info["direction"] = None if direction is None else direction.describe()
    if entry.kind == "datasets":
        info["simulated"] = bool(getattr(cls, "simulated", False))
    info["options"] = options_of(cls)
    return info


def _listing(registry: Registry, kinds: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {k: [describe_entry(registry.entries[k][n]) for n in registry.names(k)] for k in kinds}
    data["broken"] = [{"source": b.source, "error": b.error} for b in registry.broken]
    return data


# -- plain text -----------------------------------------------------------------------------------
def _width() -> int:
    return max(20, shutil.get_terminal_size((80, 24)).columns)


def _value_text(value: Any) -> str:
    """A value as it is written in a TOML config (``unset`` for None, which TOML cannot spell)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if value is None:
        return "unset"
    if isinstance(value, (bool, str)):
        return json.dumps(value)
    return str(value)


def option_lines(options: list[dict[str, Any]], indent: str) -> list[str]:
    """``name: type = default``, then the profiles whose value differs from the default."""
    lines = []
    for o in options:
        text = f"{indent}{o['name']}: {o['type']}"
        text += " (required)" if o["required"] else f" = {_value_text(o['default'])}"
        differs = [f"{p} {_value_text(v)}" for p, v in o["profiles"].items() if o["required"] or v != o["default"]]
        if differs:
            text += f"   [{'; '.join(differs)}]"
        lines.append(text)
    return lines


def _entry_lines(info: dict[str, Any], name_width: int, width: int, with_options: bool) -> list[str]:
    mark = DEFAULT_MARK if info["default"] else " "
    head = f"  {mark} {info['name']}"
    details = []
    if info.get("calibration"):
        details.append("calibration row:")
    if "category" in info:
        details.append(f"{info['category']}, {info['direction']}:")
    details.append(info["description"])
    if info["unavailable"]:
        details.append(f"(unavailable: {info['unavailable']})")
    text = " ".join(d for d in details if d)
    column = 4 + name_width + 2
    if width - column >= 30 and len(head) <= column - 2:
        wrapped = textwrap.wrap(text, width - column, break_on_hyphens=False) or [""]
        lines = [head.ljust(column) + wrapped[0]] + [" " * column + w for w in wrapped[1:]]
    else:  # too narrow for two columns: the description goes under the name
        lines = [head] + textwrap.wrap(text, max(20, width - 6), break_on_hyphens=False, initial_indent=" " * 6, subsequent_indent=" " * 6)
    if with_options:
        lines += option_lines(info["options"], " " * 6) or [" " * 6 + "(no options)"]
    return lines


def _print_listing(data: dict[str, Any], kinds: list[str], with_options: bool) -> None:
    width = _width()
    legend = {"generators": "runs by default", "metrics": "computed by default", "datasets": "the default dataset"}
    for k in kinds:
        entries = data[k]
        click.echo(f"{k.capitalize()} ({DEFAULT_MARK} {legend[k]})")
        name_width = max((len(e["name"]) for e in entries), default=0)
        for info in entries:
            for line in _entry_lines(info, name_width, width, with_options):
                click.echo(line)
        click.echo("")
    if data["broken"]:
        click.echo("Broken plugins (they failed to load; the others work)")
        for b in data["broken"]:
            click.echo(f"  {b['source']}")
            for line in textwrap.wrap(b["error"], max(20, width - 6)) or [""]:
                click.echo(f"      {line}")
        click.echo("")
    if not with_options:
        click.echo("Options: `ehrbench list KIND --options`, or `ehrbench show NAME`.")


def _print_entry(info: dict[str, Any]) -> None:
    width = max(40, _width())
    status = "available" if info["available"] else f"unavailable: {info['unavailable']}"
    default = {"generator": "runs by default" if info["default"] else "runs when named (--generators)",
               "metric": "computed by default" if info["default"] else "computed when named (--metrics)",
               "dataset": "the default dataset" if info["default"] else "used when named (--dataset)"}[info["kind"]]
    lines = [f"{info['name']} ({info['kind']})"]
    for line in textwrap.wrap(info["description"], width - 2):
        lines.append(f"  {line}")
    pairs = [("status", status), ("default", default)]
    if "category" in info:
        pairs.append(("category", f"{info['category']}, {info['direction']} is better"
                      if info["direction"] not in (None, "info") else info["category"]))
    if info.get("calibration"):
        pairs.append(("calibration", "yes: a noise floor to read the others against"))
    if "simulated" in info:
        pairs.append(("simulated", "yes" if info["simulated"] else "no"))
    pairs.append(("source", info["source"]))
    lines += [f"  {k}: {v}" for k, v in pairs]
    table_key = {"generator": "[generator_options.NAME]", "metric": "[metric_options.NAME]",
                 "dataset": "[dataset_options] or --dataset-option KEY=VALUE"}[info["kind"]]
    intro = (f"Options, set in {table_key.replace('NAME', info['name'])}; in brackets, the value a profile "
             f"({', '.join(PROFILES)}) uses instead of the default:")
    lines += textwrap.wrap(intro, width)
    lines += option_lines(info["options"], "  ") or ["  (no options)"]
    for line in lines:
        click.echo(line)


# -- the commands ---------------------------------------------------------------------------------
@click.command(name="list")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@click.option("--options", "with_options", is_flag=True, help="Show each plugin's options, defaults and profile values.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@f.plugin_option
def list_(kind: str | None, with_options: bool, fmt: str, plugins: tuple[Path, ...]) -> None:
    """List registered generators, metrics and datasets (* marks the defaults), and plugins that failed to load."""
    registry = load_registry(list(plugins))
    kinds = [kind] if kind else list(KINDS)
    data = _listing(registry, kinds)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    _print_listing(data, kinds, with_options)


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@f.plugin_option
def show(name: str, fmt: str, plugins: tuple[Path, ...]) -> None:
    """Show one generator, metric or dataset: what it is, whether it runs by default, and its options
    with their defaults and the values each profile (smoke, quick, paper) gives them."""
    registry = load_registry(list(plugins))
    found = [registry.entries[k][name] for k in KINDS if name in registry.entries[k]]
    if not found:
        known = sorted({n for k in KINDS for n in registry.names(k)})
        raise UnknownNameError(f"no generator, metric or dataset is named '{name}'{suggest(name, known)}. "
                               f"`ehrbench list` shows every name.")
    infos = [describe_entry(e) for e in found]
    if fmt == "json":
        click.echo(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
        return
    for i, info in enumerate(infos):
        if i:
            click.echo("")
        _print_entry(info)
