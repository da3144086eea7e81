"""The hook specifications: the whole contract between the host and its plugins.

A plugin is a module that implements any subset of these hooks, marking functions with
:data:`hookimpl`. The class hooks return classes (subclasses of the bases in
:mod:`ehrbench.api`); the host instantiates them. The command hooks return click commands.

What a plugin's classes declare, as class attributes, is the rest of the contract:

- every class: ``name`` (generators and datasets kebab-case, metrics snake_case), ``description``,
  ``Options`` (a dataclass of options), ``requires`` (modules it imports: missing ones make it
  unavailable, with ``install_hint``; the run manifest records their versions);
- generators: ``profiles`` (option values per profile), ``default`` (in a run that names none),
  ``calibration`` (a noise-floor row), ``releases_real_records`` (its samples are real rows:
  never saved or cached), ``uses_torch``;
- metrics: ``category`` (fidelity, utility or privacy), ``higher_is_better``, ``target``,
  ``key_directions``, ``profiles``, ``default``, ``tradeoff_axis``: an int when the headline
  value may be an axis of the report's trade-off figures (the smallest number of a category wins),
  and ``standard_errors``: ranked keys whose standard error ``compute`` returns too (under
  :func:`ehrbench.api.standard_error_key`), the noise every repeat shares, for the intervals;
- datasets: ``simulated`` (no real patient), ``default`` (the dataset of a run that names none;
  one at most), ``profiles`` (option values per run profile, e.g. a small cohort for ``smoke``),
  ``file_option`` (the option naming the one matrix file it reads: ``ehrbench evaluate`` reads
  its files through such a dataset), and ``published``: :class:`ehrbench.api.PublishedResults`, a
  paper's numbers on this dataset, which the report shows beside the measured ones for runs on
  the real data.

The host knows no plugin by name: whatever a report says about a model, a dataset or a metric
comes from these declarations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

PROJECT = "ehrbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ehrbench_generators() -> list[type]:
    """Return generator classes (subclasses of ehrbench.api.Generator)."""


@hookspec
def ehrbench_metrics() -> list[type]:
    """Return metric classes (subclasses of ehrbench.api.Metric)."""


@hookspec
def ehrbench_datasets() -> list[type]:
    """Return dataset classes (subclasses of ehrbench.api.Dataset)."""


@hookspec
def ehrbench_commands() -> list[click.Command]:
    """Return click commands to add to the command line as ``ehrbench NAME`` (e.g. a dataset's tools).

    The command line takes its commands from installed plugins (entry points): a ``--plugin`` file
    is named after the command, too late to add one. A name that a built-in command or another
    plugin already uses is an error naming both.
    """


@hookspec
def ehrbench_prepare_commands() -> list[click.Command]:
    """Return click commands to add as ``ehrbench prepare NAME``: each turns a dataset's raw files
    into an ehrbench matrix (``.npz``)."""
