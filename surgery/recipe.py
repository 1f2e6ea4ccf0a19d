"""Recipes: declarative YAML (or a dict) saying which method, where, in which layers, what trains.

```yaml
name: compacter++
method: adapter                 # a registered method (surgery.method.METHODS)
options: {projection: phm, factorized: true, shared_rule: true, n: 4}
sites: [after_ffn]              # after_self_attention | after_cross_attention | after_ffn
layers:                         # per stack: all | none | [0, 2, "4-7"] | {skip_first: N}
  encoder: all
  decoder: all
train: [layer_norms]            # extra parameter groups to train (surgery.groups.TRAIN_GROUPS)
```

``layers`` is either one selection for every stack the model has (``layers: all``,
``layers: {skip_first: 5}``) or a mapping per stack. A stack the recipe does not name defaults
to ``all`` and is skipped where the model lacks it (T5EncoderModel has no decoder); a stack the
recipe names must exist, or the plan fails naming it.

A recipe is a bundled name (``"compacter++"`` or ``"compacter++.yaml"``), a path, or a dict.
`load_recipe` only checks the recipe's shape; fitting it to a model is the plan's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import RecipeError
from .sites import SITE_NAMES

RECIPE_KEYS = ("name", "description", "method", "options", "sites", "layers", "train")
# Method names before they were made to agree with the bundled recipes' names; recipes and
# checkpoints that use them keep loading (`load_recipe` reads them as today's names).
RENAMED_METHODS = {"full": "full-finetune", "intrinsic_said": "intrinsic-said", "prompt_tuning": "prompt-tuning"}
LayerSpec = Any  # "all" | "none" | list[int | "a-b"] | {"skip_first": int}


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; `source` is the plain mapping it came from.

    `layers` holds a selection for every stack (defaults filled in); `explicit_stacks` the stacks
    the recipe named. `to_dict` is the canonical mapping: what checkpoints store, and what
    `load_recipe` reads back to the same Recipe.
    """

    name: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    sites: tuple[str, ...] = ()
    layers: dict[str, LayerSpec] = field(default_factory=dict)
    train: tuple[str, ...] = ()
    # Stacks the recipe names in `layers` (they must exist); the others default to "all" where present.
    explicit_stacks: tuple[str, ...] = ()
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict, compare=False)

    def given_layers(self) -> LayerSpec | None:
        """`layers` as the recipe wrote it: a mapping of the named stacks, one selection, or None (the default)."""
        layers = dict(self.layers)
        if self.explicit_stacks:
            return {stack: layers[stack] for stack in self.explicit_stacks if stack in layers}
        values = list(layers.values())
        if set(layers) == {"encoder", "decoder"} and all(v == values[0] for v in values):
            return None if values[0] == "all" else values[0]  # one selection for every stack
        return {stack: spec for stack, spec in layers.items() if spec != "all"} or None  # a Recipe built by hand

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain mapping (JSON/YAML-ready); empty fields are left out.

        >>> recipe = load_recipe({"name": "mine", "method": "adapter", "sites": "after_ffn", "layers": {"decoder": [0]}})
        >>> recipe.to_dict()
        {'name': 'mine', 'method': 'adapter', 'sites': ['after_ffn'], 'layers': {'decoder': [0]}}
        >>> load_recipe(recipe.to_dict()) == recipe
        True
        """
        mapping: dict[str, Any] = {"name": self.name}
        if self.description:
            mapping["description"] = self.description
        mapping["method"] = self.method
        for key, value in (("options", dict(self.options)), ("sites", list(self.sites)),
                           ("layers", self.given_layers()), ("train", list(self.train))):
            if value is not None and value != [] and value != {}:
                mapping[key] = value
        return mapping


def bundled_recipes() -> list[str]:
    """Names of the recipes shipped with the package (`recipes/*.yaml`)."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files("recipes").iterdir() if p.name.endswith(".yaml"))


def load_recipe(recipe: str | Path | dict | Recipe) -> Recipe:
    """Parse a recipe given as a bundled name, a YAML path, a dict, or a Recipe (checked again).

    >>> load_recipe("compacter++").sites
    ('after_ffn',)
    >>> load_recipe({"method": "adapter", "sites": ["after_ffn"]}).layers
    {'encoder': 'all', 'decoder': 'all'}
    >>> recipe = load_recipe({"method": "adapter", "sites": ["after_ffn"], "layers": {"decoder": [0]}})
    >>> recipe.layers, recipe.explicit_stacks
    ({'encoder': 'all', 'decoder': [0]}, ('decoder',))
    >>> load_recipe({"method": "adapter", "sites": ["after_ffn"], "layers": {"skip_first": 1}}).explicit_stacks
    ()
    """
    if isinstance(recipe, Recipe):  # built by hand, perhaps: it gets the same checks as a mapping
        _check_recipe_fields(recipe)
        return parse_recipe(recipe.to_dict(), default_name=recipe.name)
    if isinstance(recipe, dict):
        return parse_recipe(recipe, default_name="custom")
    if not isinstance(recipe, (str, Path)):
        raise RecipeError("recipe", recipe, valid="a bundled recipe name, a .yaml path, a mapping or a surgery.Recipe")
    text, name = _read_recipe_text(str(recipe))
    try:
        mapping = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RecipeError("recipe", str(recipe), reason=f"is not valid YAML: {error}") from None
    except RecursionError:
        raise RecipeError("recipe", str(recipe), reason="is not valid YAML: nested too deeply") from None
    if not isinstance(mapping, dict):
        raise RecipeError("recipe", str(recipe), reason="must be a YAML mapping with keys " + ", ".join(RECIPE_KEYS))
    return parse_recipe(mapping, default_name=name)


_RECIPE_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"), "method": ((str,), "a method name (string)"), "description": ((str,), "a string"),
    "options": ((dict,), "a mapping of option names to values ({} for none)"),
    "sites": ((tuple, list), "a tuple of site names"), "layers": ((dict,), "a mapping stack → selection"),
    "train": ((tuple, list), "a tuple of parameter groups"), "explicit_stacks": ((tuple, list), "a tuple of stack names"),
}


def _check_recipe_fields(recipe: Recipe) -> None:
    """A Recipe built by hand holds the types its fields are declared with (a clear error, not a TypeError).

    >>> _check_recipe_fields(Recipe(name="x", method="adapter", options=None))
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'options': None is not valid; valid: a mapping of option names to values ({} for none)
    """
    for key, (kinds, valid) in _RECIPE_FIELD_TYPES.items():
        value = getattr(recipe, key)
        if not isinstance(value, kinds):
            raise RecipeError(key, value, valid=valid)


def _read_recipe_text(recipe: str) -> tuple[str, str]:
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        try:
            return path.read_text(encoding="utf-8"), path.stem
        except UnicodeDecodeError as error:
            raise RecipeError("recipe", recipe, reason=f"is not a UTF-8 text file ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise RecipeError("recipe", recipe, reason=f"cannot be read ({error.strerror or error})") from None
    bundled_name = recipe[: -len(".yaml")] if recipe.endswith(".yaml") else recipe
    if "/" not in recipe and bundled_name in bundled_recipes():
        return resources.files("recipes").joinpath(f"{bundled_name}.yaml").read_text(encoding="utf-8"), bundled_name
    raise RecipeError("recipe", recipe, valid=bundled_recipes(), reason="is neither a bundled recipe nor an existing .yaml file")


def _text(mapping: dict[str, Any], key: str, default: str) -> str:
    value = mapping.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RecipeError(key, value, valid="a string")
    return value


def _listed(mapping: dict[str, Any], key: str, valid: Any) -> list[Any]:
    """A list-valued key: absent/None → [], a lone string → [it], anything else but a list → error."""
    value = mapping.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise RecipeError(key, value, valid=valid)
    return value


def parse_recipe(mapping: dict[str, Any], default_name: str = "custom") -> Recipe:
    for key in mapping:
        if not isinstance(key, str):  # YAML's `?` (a None key), a number, a list...
            raise RecipeError("recipe", key, valid=RECIPE_KEYS, reason="is a top-level key that is not a name")
        if key not in RECIPE_KEYS:
            raise RecipeError(key, key, valid=RECIPE_KEYS, reason="is not a recipe key")
    if "method" not in mapping:
        raise RecipeError("method", None, reason="is missing", valid="a registered method name")
    method = mapping["method"]
    if not isinstance(method, str):
        raise RecipeError("method", method, valid="a method name (string)")
    method = RENAMED_METHODS.get(method, method)
    name = _text(mapping, "name", default_name)
    if not name.strip():
        raise RecipeError("name", name, valid="a non-empty string")
    description = _text(mapping, "description", "")
    options = mapping.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise RecipeError("options", options, valid="a mapping of option names to values")
    for option in options:
        if not isinstance(option, str):
            raise RecipeError(f"options.{option}", option, reason="is not an option name (a string)")
    sites = _listed(mapping, "sites", SITE_NAMES)
    for site in sites:
        if site not in SITE_NAMES:
            raise RecipeError("sites", site, valid=SITE_NAMES)
    if len(set(sites)) != len(sites):
        raise RecipeError("sites", sites, reason="names a site twice")
    layers, explicit_stacks = _parse_layers(mapping.get("layers"))
    train = _listed(mapping, "train", "a list of parameter groups")
    for group in train:
        if not isinstance(group, str):
            raise RecipeError("train", group, valid="names of parameter groups (strings)")
    return Recipe(
        name=name,
        method=method,
        options=dict(options),
        sites=tuple(sites),
        layers=dict(layers),
        train=tuple(train),
        explicit_stacks=explicit_stacks,
        description=description,
        source=dict(mapping),
    )


def _parse_layers(layers: Any) -> tuple[dict[str, LayerSpec], tuple[str, ...]]:
    """(selection per stack, the stacks named explicitly) from a recipe's `layers` value."""
    if layers is None:
        layers = {}
    is_one_selection = layers in ("all", "none") or isinstance(layers, list) or (isinstance(layers, dict) and "skip_first" in layers)
    if is_one_selection:  # the same selection in every stack the model has
        _check_layer_spec("layers", layers)
        return {"encoder": layers, "decoder": layers}, ()
    if not isinstance(layers, dict):
        raise RecipeError("layers", layers, valid="one selection for every stack (all, none, [0, 2], {skip_first: 5}) "
                                                  "or a mapping stack → selection, e.g. {encoder: all, decoder: {skip_first: 5}}")
    for stack, spec in layers.items():
        if not isinstance(stack, str):
            raise RecipeError("layers", stack, valid="stack names (strings), e.g. encoder, decoder")
        _check_layer_spec(f"layers.{stack}", spec)
    return {"encoder": "all", "decoder": "all", **layers}, tuple(layers)


_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
_LAYER_SPEC_HELP = 'all, none, a list of indices or "a-b" ranges, or {skip_first: N}'


def _check_layer_spec(key: str, spec: LayerSpec) -> None:
    if isinstance(spec, str) and spec in ("all", "none"):
        return
    if isinstance(spec, dict):
        unknown = [k for k in spec if k != "skip_first"]
        if unknown:
            raise RecipeError(f"{key}.{unknown[0]}", unknown[0], valid=["skip_first"], reason="is not a layer selection key")
        if "skip_first" not in spec:
            raise RecipeError(key, spec, valid=_LAYER_SPEC_HELP)
        n = spec["skip_first"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise RecipeError(f"{key}.skip_first", n, valid="an integer ≥ 0")
        return
    if isinstance(spec, list):
        for item in spec:
            if isinstance(item, bool) or not (isinstance(item, int) or (isinstance(item, str) and _RANGE.match(item))):
                raise RecipeError(key, item, valid=_LAYER_SPEC_HELP)
        return
    raise RecipeError(key, spec, valid=_LAYER_SPEC_HELP)


def select_layers(key: str, spec: LayerSpec, depth: int) -> list[int]:
    """The block indices `spec` selects in a stack of `depth` blocks (errors name the key).

    >>> select_layers("layers.encoder", {"skip_first": 5}, 12)
    [5, 6, 7, 8, 9, 10, 11]
    >>> select_layers("layers.decoder", [0, "3-4"], 6)
    [0, 3, 4]
    """
    valid = f"indices 0..{depth - 1} ({depth} blocks)"
    if spec == "all":
        return list(range(depth))
    if spec == "none":
        return []
    if isinstance(spec, dict):
        n = spec["skip_first"]
        if n > depth:
            raise RecipeError(f"{key}.skip_first", n, valid=f"at most {depth} (the stack has {depth} blocks)")
        return list(range(n, depth))
    chosen: set[int] = set()
    for item in spec:
        if isinstance(item, int):
            indices = [item]
        else:
            start, stop = (int(g) for g in _RANGE.match(item).groups())  # type: ignore[union-attr]
            if start > stop:
                raise RecipeError(key, item, valid="a range a-b with a ≤ b")
            indices = list(range(start, stop + 1))
        for index in indices:
            if not 0 <= index < depth:
                raise RecipeError(key, item, valid=valid, reason="is out of range")
        chosen.update(indices)
    return sorted(chosen)
