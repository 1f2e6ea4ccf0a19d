"""A method's options: a recipe's mapping checked against the method's `Options` dataclass.

Every option has a type and, when it is a number, a range: a field is annotated
``Annotated[int, Range(minimum=1)]`` (or ``float``); `parse_options` checks names, types,
`Literal` choices, ranges, and that every number is finite. `require` is the one-line check a
method's `validate` uses for what depends on the model (a divisor of the hidden size, ...).
All of them raise `RecipeError` naming the recipe key, the value and what would be valid.

`option_specs` lists the schema (name, type, choices, range, default) for people and tools: the
recipe fuzzer in the tests draws its values from it.

An option that sets how much a method adds to the model is marked ``SIZE``
(``Annotated[int, Range(minimum=1), SIZE]``); `size_options` lists them, most telling first, and
the plan names one of them when what a recipe adds cannot be allocated (`size_key`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from .errors import RecipeError

__all__ = ["Annotated", "INT64_MAX", "SIZE", "OptionSpec", "Range", "option_specs", "parse_options", "require", "size_key",
           "size_options"]

# The widest integer an option may hold: torch sizes and seeds are 64-bit.
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Range:
    """The numbers an option accepts: ``minimum ≤ x`` (or ``x > above``) and ``x ≤ maximum``.

    `valid` is how the range reads in an error ("a positive integer"); by default it is written out.

    >>> Range(minimum=1).describe(int)
    'an integer in [1, 9223372036854775807]'
    >>> Range(above=0).describe(float)
    'a finite number > 0'
    >>> Range(minimum=1, valid="a positive integer").describe(int)
    'a positive integer'
    """

    minimum: float | None = None
    above: float | None = None       # exclusive lower bound
    maximum: float | None = None
    valid: str | None = None

    def contains(self, value: float) -> bool:
        if self.minimum is not None and value < self.minimum:
            return False
        if self.above is not None and not value > self.above:
            return False
        return self.maximum is None or value <= self.maximum

    def describe(self, kind: type) -> str:
        if self.valid is not None:
            return self.valid
        if kind is int:
            low = self.minimum if self.minimum is not None else (self.above + 1 if self.above is not None else -INT64_MAX - 1)
            high = self.maximum if self.maximum is not None else INT64_MAX
            return f"an integer in [{int(low)}, {int(high)}]"
        parts = [f"≥ {self.minimum:g}" if self.minimum is not None else None,
                 f"> {self.above:g}" if self.above is not None else None,
                 f"≤ {self.maximum:g}" if self.maximum is not None else None]
        return "a finite number " + " and ".join(p for p in parts if p) if any(parts) else "a finite number"


@dataclass(frozen=True)
class _SizeMarker:
    """The type of `SIZE`: marks an option that sets how much the method adds to the model."""

    def __repr__(self) -> str:
        return "SIZE"


SIZE = _SizeMarker()


@dataclass(frozen=True)
class OptionSpec:
    """One option of a method, as `option_specs` reads it off the Options dataclass."""

    name: str
    kind: type | None                # int, float, bool, str, or None for a Literal
    choices: tuple[Any, ...] = ()    # the Literal's values
    range: Range | None = None
    optional: bool = False           # None is a valid value
    default: Any = None
    sets_size: bool = False          # marked SIZE


def option_specs(options_class: type) -> list[OptionSpec]:
    """The schema of a method's options, in field order.

    >>> @dataclass
    ... class Opt:
    ...     n: Annotated[int, Range(minimum=1)] = 4
    ...     act: Literal["relu", "gelu"] = "gelu"
    >>> [(s.name, s.kind, s.choices, s.range) for s in option_specs(Opt)]
    [('n', <class 'int'>, (), Range(minimum=1, above=None, maximum=None, valid=None)), ('act', None, ('relu', 'gelu'), None)]
    """
    hints = typing.get_type_hints(options_class, include_extras=True)
    specs = []
    for f in dataclasses.fields(options_class):
        annotation, optional, bounds = _unwrap(hints[f.name])
        origin = get_origin(annotation)
        default = f.default if f.default is not dataclasses.MISSING else None
        sets_size = _marked_size(hints[f.name])
        if origin is Literal:
            specs.append(OptionSpec(f.name, None, get_args(annotation), None, optional, default, sets_size))
        else:
            specs.append(OptionSpec(f.name, annotation, (), bounds, optional, default, sets_size))
    return specs


def _marked_size(annotation: Any) -> bool:
    """Whether `annotation` (or the type inside its ``| None``) carries the `SIZE` marker."""
    if get_origin(annotation) is typing.Annotated:
        return any(isinstance(extra, _SizeMarker) for extra in get_args(annotation)[1:])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_marked_size(arg) for arg in get_args(annotation))
    return False


def size_options(options_class: type) -> list[str]:
    """The options marked `SIZE`, in the order the dataclass declares them (most telling first).

    >>> @dataclass
    ... class Opt:
    ...     width: Annotated[int, Range(minimum=1), SIZE] = 8
    ...     depth: Annotated[int, Range(minimum=1), SIZE] | None = None
    ...     seed: Annotated[int, Range(minimum=0)] = 0
    >>> size_options(Opt)
    ['width', 'depth']
    """
    return [spec.name for spec in option_specs(options_class) if spec.sets_size]


def size_key(options: Any) -> str:
    """The recipe key named when what a method adds cannot be allocated: the first `SIZE` option whose value
    departs from its default (what the recipe changed), else the first declared; ``"options"`` when none is marked.

    >>> @dataclass
    ... class Opt:
    ...     width: Annotated[int, Range(minimum=1), SIZE] = 8
    ...     depth: Annotated[int, Range(minimum=1), SIZE] = 2
    >>> size_key(Opt()), size_key(Opt(depth=10**12)), size_key(Opt(width=8, depth=10**12)), size_key(Opt(9, 3))
    ('options.width', 'options.depth', 'options.depth', 'options.width')
    """
    sizes = [spec for spec in option_specs(type(options)) if spec.sets_size]
    changed = (spec.name for spec in sizes if getattr(options, spec.name) != spec.default)
    chosen = next(changed, sizes[0].name if sizes else None)
    return "options" if chosen is None else f"options.{chosen}"


def _unwrap(annotation: Any) -> tuple[Any, bool, Range | None]:
    """(the plain type, whether None is allowed, its Range) of an option's annotation."""
    optional, bounds = False, None
    while True:
        if get_origin(annotation) in (typing.Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"option annotation {annotation!r}: one type (or one type | None) per option")
            optional, annotation = True, args[0]
        elif get_origin(annotation) is typing.Annotated:
            annotation, *extras = get_args(annotation)
            bounds = next((e for e in extras if isinstance(e, Range)), bounds)
        else:
            break
    if get_origin(annotation) is not Literal and annotation not in (int, float, bool, str):
        raise TypeError(f"option annotation {annotation!r}: use int, float, bool, str or a Literal")
    return annotation, optional, bounds


def parse_options(options_class: type, given: dict[str, Any] | None, key_prefix: str = "options") -> Any:
    """Build `options_class` from a recipe's mapping, checking names, types, choices and ranges.

    >>> @dataclass
    ... class Opt:
    ...     n: Annotated[int, Range(minimum=1)] = 4
    ...     act: Literal["relu", "gelu"] = "gelu"
    >>> parse_options(Opt, {"n": 8})
    Opt(n=8, act='gelu')
    >>> parse_options(Opt, {"m": 8})
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'options.m': 'm' is not an option of this method; valid: n, act
    >>> parse_options(Opt, {"n": 0})
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'options.n': 0 is not valid; valid: an integer in [1, 9223372036854775807]
    """
    given = dict(given or {})
    specs = {spec.name: spec for spec in option_specs(options_class)}
    for name in given:
        if name not in specs:
            raise RecipeError(f"{key_prefix}.{name}", name, valid=list(specs), reason="is not an option of this method")
    values = {name: _check(f"{key_prefix}.{name}", value, specs[name]) for name, value in given.items()}
    return options_class(**values)


def _check(key: str, value: Any, spec: OptionSpec) -> Any:
    if value is None and spec.optional:
        return None
    if spec.kind is None:  # Literal
        if isinstance(value, bool) or not any(value == choice and type(value) is type(choice) for choice in spec.choices):
            raise RecipeError(key, value, valid=list(spec.choices))
        return value
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise RecipeError(key, value, valid="true or false")
        return value
    if spec.kind is str:
        if not isinstance(value, str):
            raise RecipeError(key, value, valid="a string")
        return value
    if spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(key, value, valid=spec.range.describe(int) if spec.range else "an integer")
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise RecipeError(key, value, valid=f"{(spec.range or Range()).describe(int)}, at most {INT64_MAX}",
                              reason="does not fit in 64 bits")
        if spec.range is not None and not spec.range.contains(value):
            raise RecipeError(key, value, valid=spec.range.describe(int))
        return value
    if spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(key, value, valid=spec.range.describe(float) if spec.range else "a finite number")
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
        if not math.isfinite(number) or (spec.range is not None and not spec.range.contains(number)):
            raise RecipeError(key, value, valid=(spec.range or Range()).describe(float),
                              reason=None if math.isfinite(number) else "is not a finite number")
        return number
    return value


def require(condition: bool, key: str, value: Any, valid: Any, reason: str | None = None) -> None:
    """Raise RecipeError(key, value, valid) unless `condition` holds."""
    if not condition:
        raise RecipeError(key, value, valid=valid, reason=reason)
