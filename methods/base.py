"""The contract between the engine and a method, and the method registry.

A method knows its modules, not graphs. It says:

* which options a recipe may give it (a dataclass, `Method.Options`), checked at plan time;
* for site methods, the module to splice in at one site (`build_site_module`), and optionally
  one module shared by all of them (`build_shared`, owned once by the model);
* for whole-model methods (BitFit, prompt tuning, Intrinsic-SAID), a `transform_model` step;
* which parameters it trains besides the modules it inserted (`trainable_groups`).

Adding a method means a subclass decorated with `@register_method` in a module of this package,
plus a recipe YAML naming it. The engine is not edited.

>>> from methods import get_method_class
>>> get_method_class("adapter").name
'adapter'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args, get_origin

from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily


@dataclass(frozen=True)
class SiteContext:
    """Where a site module goes: stack ("encoder"/"decoder"), block index, site name, sizes."""

    stack: str
    layer: int
    site: str
    dims: ModelDims


@dataclass
class NoOptions:
    """For methods that take no options."""


class Method:
    """Base class of every method. Subclasses set `name` and `Options` and override hooks."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    # Methods that splice modules at graph sites; whole-model methods set this False.
    uses_sites: ClassVar[bool] = True
    default_learning_rate: ClassVar[float] = 3e-4

    def __init__(self, options: Any):
        self.options = options

    # -- plan time -------------------------------------------------------------------------
    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        """Raise RecipeError (key "options.<name>") when the options do not fit this model."""

    # -- apply time ------------------------------------------------------------------------
    def build_shared(self, dims: ModelDims) -> nn.Module | None:
        """One module shared by all site modules (e.g. Compacter's rule), or None."""
        return None

    def build_site_module(self, site: SiteContext, shared: nn.Module | None) -> nn.Module:
        raise NotImplementedError(f"method {self.name!r} does not insert modules at sites")

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims) -> None:
        """Whole-model rewrite for methods that do not (only) splice at sites."""

    def trainable_groups(self, model: nn.Module, family: ModelFamily) -> dict[str, list[str]]:
        """Parameters (qualified names) this method trains besides its inserted/shared modules."""
        return {}

    def closed_form(self, plan: Any) -> list[tuple[str, str, int]]:
        """(component, formula, value) lines for the report, computed from the formula alone."""
        return []


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available to recipes under `cls.name`."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is registered twice ({METHODS[cls.name].__qualname__}, {cls.__qualname__})")
    METHODS[cls.name] = cls
    return cls


def get_method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise RecipeError("method", name, valid=sorted(METHODS))
    return METHODS[name]


# -- options --------------------------------------------------------------------------------

def parse_options(options_class: type, given: dict[str, Any] | None, key_prefix: str = "options") -> Any:
    """Build `options_class` from a recipe's mapping, checking names, types and choices.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Opt:
    ...     n: int = 4
    ...     act: Literal["relu", "gelu"] = "gelu"
    >>> parse_options(Opt, {"n": 8})
    Opt(n=8, act='gelu')
    >>> parse_options(Opt, {"m": 8})
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'options.m': 'm' is not an option of this method; valid: n, act
    """
    given = dict(given or {})
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    hints = typing.get_type_hints(options_class)
    for name in given:
        if name not in fields:
            raise RecipeError(f"{key_prefix}.{name}", name, valid=list(fields), reason="is not an option of this method")
    values = {name: _coerce(f"{key_prefix}.{name}", value, hints[name]) for name, value in given.items()}
    return options_class(**values)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        if value not in args:
            raise RecipeError(key, value, valid=list(args))
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except RecipeError as error:
                errors.append(error)
        raise errors[0]
    if annotation is bool:
        if not isinstance(value, bool):
            raise RecipeError(key, value, valid="true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(key, value, valid="an integer")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(key, value, valid="a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise RecipeError(key, value, valid="a string")
        return value
    return value


def require(condition: bool, key: str, value: Any, valid: Any, reason: str | None = None) -> None:
    """Raise RecipeError(key, value, valid) unless `condition` holds."""
    if not condition:
        raise RecipeError(key, value, valid=valid, reason=reason)
