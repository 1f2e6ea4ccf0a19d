"""A method's options: a recipe's mapping checked against the method's `Options` dataclass.

`parse_options` checks names, types and `Literal` choices; `require` is the one-line check a
method's `validate` uses for everything that depends on the model. Both raise `RecipeError`
naming the recipe key, the value and what would be valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from .errors import RecipeError


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
