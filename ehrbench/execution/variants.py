"""Variants and sweeps: one registered generator run several times in one run, under distinct names.

A variant is a generator row of its own (leaderboard, report, compare, results, samples, the model
cache, resume) whose class is a registered generator and whose options differ. The configuration
holds them as tables, ``[variants.NAME]`` in TOML or ``--variant NAME=GEN:key=value,...``:

- ``generator`` names the registered generator (default: the table's name);
- every other key is an option of that generator;
- a list value where the option takes a scalar is a *sweep*: the table expands into one variant per
  value (the product of every swept key, in table order), named ``NAME-key-value`` per swept key,
  e.g. ``[variants.my-gan] lr = [0.001, 0.01]`` gives ``my-gan-lr-0.001`` and
  ``my-gan-lr-0.01``. A sweep over an option that itself takes a list is a list of lists.

A variant's options are, from lowest to highest: the generator's profile, the run's
``generator_options`` of the base generator, the variant's own keys, then ``generator_options`` of
the variant's name. So two rows differ exactly by what the variant states.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ehrbench.errors import ConfigError, EhrbenchError
from ehrbench.plugins import Registry

BASE_KEY = "generator"
# A row name becomes a folder and a file name (samples/, models/) and an item of --generators:
# letters, digits, '.', '_' and '-', starting with a letter or digit.
_ROW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


@dataclass(frozen=True)
class Variant:
    """One generator row made from a registered generator and the options the variant states."""

    name: str
    generator: str
    options: dict[str, Any] = field(default_factory=dict)


def _takes_list(cls: type, key: str) -> bool:
    """Whether the generator's option ``key`` is itself a list or tuple (so a list is its value)."""
    options_cls = getattr(cls, "Options", None)
    if options_cls is None or not dataclasses.is_dataclass(options_cls):
        return False
    hints = typing.get_type_hints(options_cls)
    hint = hints.get(key.replace("-", "_"))
    if hint is None:
        return False
    candidates = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _union_type()) else (hint,)
    return any(typing.get_origin(c) in (list, tuple) or c in (list, tuple) for c in candidates)


def _union_type() -> Any:
    import types

    return types.UnionType


def _value_text(value: Any, where: str) -> str:
    """The part of a sweep member's name that stands for ``value``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = "x".join(_value_text(v, where) for v in value)
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", text):
        raise ConfigError(f"{where}: the sweep value {value!r} cannot be part of a variant's name (letters, digits, "
                          f"'.', '_', '+' and '-'); list such variants one by one under names of their own.")
    return text


def _check_name(name: str, where: str) -> None:
    if not isinstance(name, str) or not _ROW_NAME.fullmatch(name):
        raise ConfigError(f"{where}: the variant name {name!r} cannot name a generator row: use letters, digits, "
                          f"'.', '_' and '-', starting with a letter or digit, at most 200 characters.")


def expand(tables: Mapping[str, Any], registry: Registry) -> dict[str, Variant]:
    """Every variant row the ``tables`` describe, by name; a sweep gives one row per value.

    Names are checked against each other and against the registered generators (a variant may
    not take the name of a generator: its row would be ambiguous).
    """
    rows: dict[str, Variant] = {}
    for table_name, table in tables.items():
        where = f"variants.{table_name}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table of options, got {table!r}.")
        base = table.get(BASE_KEY, table_name)
        if not isinstance(base, str):
            raise ConfigError(f"{where}: '{BASE_KEY}' must be a generator's name, got {base!r}.")
        try:
            cls = registry.get("generators", base)
        except EhrbenchError as exc:  # an unknown or unavailable generator: name the variant too
            raise ConfigError(f"{where}: {exc}") from None
        options = {k: v for k, v in table.items() if k != BASE_KEY}
        swept = [k for k, v in options.items()
                 if isinstance(v, list) and (not _takes_list(cls, k) or all(isinstance(x, list) for x in v))]
        for key in swept:
            if not options[key]:
                raise ConfigError(f"{where}: the sweep over '{key}' has no values.")
        members: list[tuple[str, dict[str, Any]]] = []
        if not swept:
            members.append((table_name, options))
        else:
            for values in itertools.product(*(options[k] for k in swept)):
                chosen = dict(zip(swept, values))
                suffix = "".join(f"-{k.replace('-', '_')}-{_value_text(v, where)}" for k, v in chosen.items())
                members.append((f"{table_name}{suffix}", {**options, **chosen}))
        for name, member_options in members:
            _check_name(name, where)
            if name in registry.entries["generators"]:
                raise ConfigError(f"{where}: the variant name '{name}' is a registered generator's; give the "
                                  f"variant a name of its own (e.g. '{name}-variant').")
            if name in rows:
                raise ConfigError(f"{where}: the variant name '{name}' is given twice.")
            rows[name] = Variant(name, base, member_options)
    return rows


def parse_flag(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=GEN:key=value,key=value`` (the CLI's ``--variant``) → (NAME, its table)."""
    name, sep, rest = text.partition("=")
    base, colon, pairs = rest.partition(":")
    if not sep or not name.strip() or not base.strip():
        raise ConfigError(f"--variant expects NAME=GENERATOR[:KEY=VALUE,KEY=VALUE...], got {text!r}.")
    table: dict[str, Any] = {BASE_KEY: base.strip()}
    for pair in (p.strip() for p in pairs.split(",")) if colon else ():
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--variant {text!r}: expected KEY=VALUE after the generator, got {pair!r}.")
        if key.strip() == BASE_KEY:
            raise ConfigError(f"--variant {text!r}: '{BASE_KEY}' is the base generator, given before the colon.")
        table[key.strip()] = value.strip()
    return name.strip(), table


def parse_generator_option(text: str) -> tuple[str, str, str]:
    """``GEN.key=value`` (the CLI's ``--generator-option``) → (GEN, key, value)."""
    target, eq, value = text.partition("=")
    generator, dot, key = target.rpartition(".")
    if not eq or not dot or not generator.strip() or not key.strip():
        raise ConfigError(f"--generator-option expects GENERATOR.KEY=VALUE (e.g. my-gan.epochs=5), got {text!r}.")
    return generator.strip(), key.strip(), value.strip()
