"""Recipe keys from the command line: ``--set KEY=VALUE`` for every run, ``--sweep KEY=V1,V2,...`` for a grid.

KEY is a recipe key (the library's `surgery.overrides`, which also reads ``overrides={"options.n": 8}``
in `surgery.apply`/`surgery.plan`), dotted into the mapping as it is written in a YAML file (``options.n``,
``options.reduction_factor``, ``sites``, ``layers.encoder``, ``layers.decoder.skip_first``,
``train``, ``name``), or ``lr``, the learning rate. ``--set options.n=8`` means exactly what
``options: {n: 8}`` means in the recipe file: the recipe with the value written in is checked by
`surgery.plan`, so a bad value gets the recipe file's error, word for word::

    recipe key 'options.n': 3 does not divide the hidden size 64; valid: 1, 2

A VALUE is read as a number where it is one (``3e-3`` included, which YAML would read as a
string), else as YAML: ``true``, ``null``, ``gelu_new``, ``[after_ffn, after_self_attention]``.
In ``--sweep`` the values are separated by the commas outside brackets and quotes:
``--sweep sites=[after_ffn],[after_self_attention,after_ffn]`` has two values.

Every combination of the ``--sweep`` values is one :class:`Setting` (the ``--set`` values apply
to all of them); its label, e.g. ``lr=3e-3,options.n=8``, names it in folders and tables.

>>> grid = settings_grid(parse_sets(["options.n=8"]), parse_sweeps(["lr=3e-4,3e-3"]))
>>> [setting.label for setting in grid]
['options.n=8,lr=3e-4', 'options.n=8,lr=3e-3']
>>> grid[1].learning_rate, grid[1].recipe_mapping({"method": "adapter", "options": {"n": 4}})
(0.003, {'method': 'adapter', 'options': {'n': 8}})
>>> split_values("[after_ffn],[after_self_attention,after_ffn]")
['[after_ffn]', '[after_self_attention,after_ffn]']
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from surgery.errors import RecipeError
from surgery.overrides import check_key, parse_value, set_key

TRAINING_KEYS = ("lr",)  # keys that are not recipe keys: the run's learning rate


class OverrideError(ValueError):
    """A --set or --sweep argument that is not KEY=VALUE (the runner prints it as a usage error)."""


@dataclass(frozen=True)
class Override:
    """One recipe key (or lr) and its value, with the text it was given as."""

    key: str
    value: Any
    text: str


@dataclass(frozen=True)
class Setting:
    """One point of a sweep: the overrides written into the recipe, and the learning rate."""

    overrides: tuple[Override, ...] = ()

    @property
    def label(self) -> str:
        """``key=value,...`` as given on the command line ('' for no override)."""
        return ",".join(f"{o.key}={o.text}" for o in self.overrides)

    @property
    def folder(self) -> str:
        """The label with characters other than letters, digits and ``._=+,-`` replaced by ``_``."""
        return re.sub(r"[^A-Za-z0-9._=+,-]", "_", self.label)

    @property
    def learning_rate(self) -> float | None:
        rates = [o.value for o in self.overrides if o.key == "lr"]
        return rates[-1] if rates else None

    def recipe_mapping(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """A copy of a recipe's mapping with this setting's recipe keys written in."""
        result = copy.deepcopy(mapping)
        for override in self.overrides:
            if override.key not in TRAINING_KEYS:
                set_key(result, override.key, copy.deepcopy(override.value))
        return result


def split_values(text: str) -> list[str]:
    """Split at the commas outside brackets, braces and quotes."""
    values, depth, quote, start = [], 0, None, 0
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:index])
            start = index + 1
    values.append(text[start:])
    return values


def _assignment(item: str, flag: str) -> tuple[str, str]:
    key, separator, text = item.partition("=")
    key = key.strip()
    try:
        check_key(key)  # the library's rule for a dotted key (surgery.overrides); its values are read the same way
    except RecipeError:
        separator = ""
    if not separator:
        raise OverrideError(f"{flag} {item!r}: expected KEY=VALUE with a recipe key (e.g. options.n=8) or lr")
    return key, text


def _override(key: str, text: str, flag: str) -> Override:
    try:
        value = parse_value(text)
    except ValueError as error:
        raise OverrideError(f"{flag} {key}: {error}") from None
    if key == "lr" and (isinstance(value, bool) or not isinstance(value, (int, float))
                        or not math.isfinite(value) or value <= 0):
        raise OverrideError(f"{flag} lr={text}: the learning rate must be a positive number")
    return Override(key, float(value) if key == "lr" else value, text.strip())


def parse_sets(items: list[str] | None) -> list[Override]:
    """``["options.n=8", "lr=3e-3"]`` → overrides; a key given twice is an error."""
    overrides = [_override(*_assignment(item, "--set"), "--set") for item in items or []]
    _refuse_repeats([o.key for o in overrides], "--set")
    return overrides


def parse_sweeps(items: list[str] | None) -> list[list[Override]]:
    """``["lr=3e-4,3e-3", "options.n=4,8"]`` → for each key, its overrides in order."""
    sweeps = []
    for item in items or []:
        key, text = _assignment(item, "--sweep")
        texts = split_values(text)
        if any(not t.strip() for t in texts):
            raise OverrideError(f"--sweep {item!r}: an empty value (two commas, or one at an end)")
        sweeps.append([_override(key, t, "--sweep") for t in texts])
    _refuse_repeats([values[0].key for values in sweeps], "--sweep")
    return sweeps


def _refuse_repeats(keys: list[str], flag: str) -> None:
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise OverrideError(f"{flag} gives {', '.join(repeated)} more than once")


def settings_grid(sets: list[Override], sweeps: list[list[Override]]) -> list[Setting]:
    """Every combination of the sweep values (in the order given), each with the --set overrides first."""
    swept = {values[0].key for values in sweeps}
    both = sorted(swept & {o.key for o in sets})
    if both:
        raise OverrideError(f"{', '.join(both)} is given to both --set and --sweep")
    return [Setting(tuple(sets) + combination) for combination in itertools.product(*sweeps)]


def with_output_layer(mapping: dict[str, Any]) -> dict[str, Any]:
    """The recipe's Table 7 variant: ``output_layer`` added to its ``train`` list, ``+output-layer`` to its name.

    >>> with_output_layer({"name": "adapter", "method": "adapter", "train": ["layer_norms"]})
    {'name': 'adapter+output-layer', 'method': 'adapter', 'train': ['layer_norms', 'output_layer']}
    """
    result = copy.deepcopy(mapping)
    train = result.get("train") or []
    train = [train] if isinstance(train, str) else list(train)
    if "output_layer" not in train:
        train.append("output_layer")
    result["train"] = train
    result["name"] = f"{result.get('name', 'custom')}+output-layer"
    return result
