"""Dotted recipe keys: change one value of a recipe without writing a new one.

``surgery.plan(model, "compacter++", overrides={"options.n": 8})`` (and `surgery.apply`) means
exactly what a recipe file with ``options: {n: 8}`` means, and what the finetune runner's
``--set options.n=8`` means: the key is dotted into the mapping as it is written in YAML
(``options.reduction_factor``, ``sites``, ``layers.encoder``, ``layers.decoder.skip_first``,
``train``, ``name``). The recipe with the values written in is then checked like any other, so
a bad value gets the recipe's own error, naming the key, the value and what is valid.

>>> with_overrides("compacter++", {"options.n": 8})["options"]["n"]
8
>>> with_overrides({"method": "adapter", "sites": ["after_ffn"]}, {"layers.encoder": "none"})
{'method': 'adapter', 'sites': ['after_ffn'], 'layers': {'encoder': 'none'}}
>>> parse_value("3e-3"), parse_value("8"), parse_value("true"), parse_value("[a, b]"), parse_value("relu")
(0.003, 8, True, ['a', 'b'], 'relu')
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import RecipeError
from .recipe import RECIPE_KEYS, Recipe, bundled_recipes, load_recipe

__all__ = ["check_key", "flatten", "parse_value", "refuse_partial_bundled", "set_key", "with_overrides"]

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def check_key(key: object) -> str:
    """`key` if it is a dotted key (non-empty parts), else a RecipeError; whether its first part is a recipe
    key is the recipe parser's to say, as for a key written in a file.

    >>> check_key("options.n")
    'options.n'
    >>> check_key("options..n")
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'overrides': 'options..n' is not a dotted recipe key (e.g. 'options.n', 'layers.encoder'); valid: name, description, method, options, sites, layers, train
    """
    if not isinstance(key, str) or any(not part.strip() for part in key.split(".")):
        raise RecipeError("overrides", key, valid=", ".join(RECIPE_KEYS),
                          reason="is not a dotted recipe key (e.g. 'options.n', 'layers.encoder')")
    return key


def set_key(mapping: dict[str, Any], key: str, value: Any) -> None:
    """Write `value` at the dotted `key`, creating (or replacing non-mapping values with) mappings on the way.

    >>> recipe = {"layers": {"encoder": "all"}}
    >>> set_key(recipe, "layers.encoder.skip_first", 5); recipe
    {'layers': {'encoder': {'skip_first': 5}}}
    """
    parts = key.split(".")
    node = mapping
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def parse_value(text: str) -> Any:
    """A value written as text (a command line): a number where it reads as one (``3e-3`` too), else YAML.

    A ValueError names the text when it is not valid YAML.
    """
    stripped = text.strip()
    if _NUMBER.match(stripped):
        is_integer = "." not in stripped and "e" not in stripped.lower()
        return int(stripped) if is_integer else float(stripped)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{text!r} is not a valid value ({str(error).splitlines()[0]})") from None


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The dotted keys of a nested mapping: ``{"options": {"n": 8}}`` → ``{"options.n": 8}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def refuse_partial_bundled(recipe: object) -> None:
    """A dict without ``method`` that names a bundled recipe: point at ``overrides=``, the one way to change it."""
    if not isinstance(recipe, Mapping) or "method" in recipe or recipe.get("name") not in bundled_recipes():
        return
    name = recipe["name"]
    changes = {k: v for k, v in flatten(recipe).items() if k != "name"}
    raise RecipeError("method", None, reason=(
        f"is missing; a mapping is a whole recipe. To change the bundled recipe {name!r}, name it and pass the "
        f"changed keys: surgery.apply(model, {name!r}, overrides={changes!r})"))


def with_overrides(recipe: str | Path | dict | Recipe, overrides: Mapping[str, Any] | None) -> Any:
    """`recipe` (a bundled name, a path, a mapping or a Recipe) as a mapping with `overrides` written in.

    Without overrides the recipe is returned as given. Each key is checked by `check_key`; the
    first parts and the values are checked later, with the whole recipe, by `load_recipe` and `surgery.plan`.
    A mapping without ``method`` that names a bundled recipe is refused first (`refuse_partial_bundled`).
    """
    refuse_partial_bundled(recipe)
    if not overrides:
        return recipe
    if not isinstance(overrides, Mapping):
        raise RecipeError("overrides", overrides, valid="a mapping of dotted recipe keys to values, e.g. {'options.n': 8}")
    for key in overrides:
        check_key(key)
    parsed = load_recipe(recipe)
    mapping = copy.deepcopy(parsed.source) if parsed.source else parsed.to_dict()
    if not isinstance(recipe, Mapping):  # a file's name is its stem unless it says otherwise: keep it
        mapping.setdefault("name", parsed.name)
    for key, value in overrides.items():
        set_key(mapping, key, copy.deepcopy(value))
    return mapping
