"""The experiment grid: a compact config block that expands into named experiments.

A paper's experiments are mostly products (every input with every preset, every group of
inputs with every fusion); written out one by one they repeat the same keys dozens of times.
``experiment_grid`` is a list of blocks::

    experiment_grid:
      - name: "{signal}_{view}_{preset}"
        vary:
          signal: [ecg, emg, gsr]                  # a list: each item is its own label
          view: {wave: waveform, psd: spec_psd}    # a mapping: label -> value
          preset: [p200, p600]
        experiment: {inputs: ["{signal}/{view}"], fusion: none, task: NP_vs_P4, preset: "{preset}"}

Each block gives one experiment per combination of its ``vary`` axes (the first axis varies
slowest). In ``name`` a placeholder ``{axis}`` is the label; in ``experiment`` it is the value:
a string that is exactly ``"{axis}"`` takes the value as it is (a list, a mapping; ``null``
leaves the key out), a longer string gets it written in. The experiments of the blocks come
first, in order, then those of ``experiments``; a name made twice is an error. The result is
the same mapping as writing the experiments out, so everything downstream (schema, experiment
parsing, the workflow's rerun triggers) sees no difference.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from typing import Any

from painformer.errors import InputError

GRID_KEY = "experiment_grid"
BLOCK_KEYS = ("name", "vary", "experiment")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _axes(vary: Any, where: str) -> dict[str, list[tuple[str, Any]]]:
    """``vary`` as axis -> [(label, value)], checked."""
    if not isinstance(vary, Mapping) or not vary:
        raise InputError(f"{where}: key 'vary' must be a non-empty mapping axis -> list or mapping of labels")
    axes = {}
    for axis, choices in vary.items():
        if not _PLACEHOLDER.fullmatch("{" + str(axis) + "}"):
            raise InputError(f"{where}: axis name {axis!r} must be a Python-style identifier")
        if isinstance(choices, Mapping):
            items = [(str(label), value) for label, value in choices.items()]
        elif isinstance(choices, list) and all(isinstance(item, str) for item in choices):
            items = [(item, item) for item in choices]
        else:
            raise InputError(f"{where}: axis {axis!r} must be a list of strings or a mapping label -> value")
        if not items:
            raise InputError(f"{where}: axis {axis!r} has no values")
        axes[str(axis)] = items
    return axes


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(item) for item in value))
    return set()


_OMIT = object()


def _fill(value: Any, values: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            filled = values[whole.group(1)]
            return _OMIT if filled is None else copy.deepcopy(filled)

        def text(match: re.Match) -> str:
            filled = values[match.group(1)]
            if isinstance(filled, (Mapping, list)) or filled is None:
                raise InputError(
                    f"{where}: {value!r} writes {match.group(0)} into a string but its value is {filled!r}"
                )
            return str(filled)

        return _PLACEHOLDER.sub(text, value)
    if isinstance(value, Mapping):
        filled = {key: _fill(item, values, where) for key, item in value.items()}
        return {key: item for key, item in filled.items() if item is not _OMIT}
    if isinstance(value, list):
        return [_fill(item, values, where) for item in value]
    return copy.deepcopy(value)


def expand_block(block: Any, where: str) -> dict[str, dict[str, Any]]:
    """The experiments of one grid block, in the order of the product of its axes."""
    if not isinstance(block, Mapping):
        raise InputError(f"{where}: a grid block must be a mapping with the keys {list(BLOCK_KEYS)}")
    unknown = sorted(set(block) - set(BLOCK_KEYS))
    missing = [key for key in BLOCK_KEYS if key not in block]
    if unknown or missing:
        raise InputError(f"{where}: unknown keys {unknown}, missing keys {missing}; a block has {list(BLOCK_KEYS)}")
    name, template = block["name"], block["experiment"]
    if not isinstance(name, str) or not isinstance(template, Mapping):
        raise InputError(f"{where}: 'name' must be a string and 'experiment' a mapping")
    axes = _axes(block["vary"], where)
    unused = [axis for axis in axes if axis not in _placeholders(name)]
    if unused:
        raise InputError(f"{where}: name {name!r} lacks the axes {unused}: their experiments would share a name")
    undefined = sorted((_placeholders(name) | _placeholders(template)) - set(axes))
    if undefined:
        raise InputError(f"{where}: placeholders {undefined} are not axes of 'vary' ({list(axes)})")
    experiments: dict[str, dict[str, Any]] = {}
    for combination in itertools.product(*axes.values()):
        labels = {axis: label for axis, (label, _) in zip(axes, combination)}
        values = {axis: value for axis, (_, value) in zip(axes, combination)}
        experiment_name = _PLACEHOLDER.sub(lambda match, labels=labels: labels[match.group(1)], name)
        if experiment_name in experiments:
            raise InputError(f"{where}: the name {experiment_name!r} is made twice")
        experiments[experiment_name] = _fill(template, values, f"{where} ({experiment_name})")
    return experiments


def expand_experiment_grid(config: Mapping[str, Any]) -> dict[str, Any]:
    """The experiments of ``config``: its ``experiment_grid`` expanded, then its ``experiments``."""
    blocks = config.get(GRID_KEY) or []
    if not isinstance(blocks, list):
        raise InputError(f"config: key {GRID_KEY!r} must be a list of blocks ({', '.join(BLOCK_KEYS)})")
    explicit = config.get("experiments") or {}
    if not isinstance(explicit, Mapping):
        raise InputError("config: key 'experiments' must be a mapping of experiment name -> definition")
    experiments: dict[str, Any] = {}
    for number, block in enumerate(blocks, start=1):
        where = f"config: {GRID_KEY} block {number}"
        for name, experiment in expand_block(block, where).items():
            if name in experiments:
                raise InputError(f"{where}: experiment {name!r} is also made by an earlier block")
            experiments[name] = experiment
    twice = sorted(set(experiments) & set(explicit))
    if twice:
        raise InputError(f"config: experiments {twice} are both in {GRID_KEY} and in experiments")
    experiments.update(explicit)
    return experiments


def apply_experiment_grid(config: dict[str, Any]) -> None:
    """Replace ``config``'s grid by the experiments it makes, written out (in place).

    The workflow does this before schema validation, so that the schema checks, and fills the
    defaults of, the grid's experiments as if they had been written by hand; the resolved
    config then holds them written out and stays usable as a ``--configfile``.
    """
    config["experiments"] = expand_experiment_grid(config)
    config.pop(GRID_KEY, None)
