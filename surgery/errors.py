"""Errors raised at plan time: each names the recipe key, the value and what would be valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SurgeryError(ValueError):
    """Base class of every error the engine raises on purpose."""


class RecipeError(SurgeryError):
    """A recipe key holds a value the engine cannot use.

    >>> err = RecipeError("sites", "after_fnn", valid=["after_ffn", "after_self_attention"])
    >>> print(err)
    recipe key 'sites': 'after_fnn' is not valid; valid: after_ffn, after_self_attention (did you mean 'after_ffn'?)
    """

    def __init__(self, key: str, value: object, valid: Iterable[object] | str | None = None, reason: str | None = None):
        self.key, self.value = key, value
        self.valid = list(valid) if valid is not None and not isinstance(valid, str) else valid
        message = f"recipe key {key!r}: {value!r} " + (reason or "is not valid")
        if isinstance(self.valid, str):
            message += f"; valid: {self.valid}"
        elif self.valid:
            message += "; valid: " + ", ".join(str(v) for v in self.valid)
            hint = closest(value, self.valid)
            if hint is not None:
                message += f" (did you mean {hint!r}?)"
        super().__init__(message)


class TraceError(SurgeryError):
    """A block could not be traced with torch.fx; the message names the module and the reason."""


class CheckpointError(SurgeryError):
    """An adapter checkpoint does not fit the model it is loaded into."""


def closest(value: object, valid: Iterable[object]) -> str | None:
    """The valid choice closest to `value`, if one is close enough to be a likely typo."""
    if not isinstance(value, str):
        return None
    matches = difflib.get_close_matches(value, [str(v) for v in valid], n=1, cutoff=0.6)
    return matches[0] if matches else None
