"""For one call of a module, a computed tensor in place of one of its parameters.

The one mechanism behind every adapter's own copies of base tensors (`surgery.base_copies`) and
behind methods that reparametrise weights (Intrinsic-SAID's θ₀ + λ·P·z). A forward pre-hook puts
the computed tensor into the module's ``__dict__`` under the parameter's name (an instance
attribute wins over ``nn.Module.__getattr__``, so the module's own forward reads it) and a forward
hook, always called (also after an exception), takes it out again. Nothing is held between calls:
a substitution finds its tensors by name when it runs, so replacing a module's parameters
(``load_state_dict(assign=True)``, ``to_empty``, ``.to()`` with overwrite-on-conversion) or copying
the model (``copy.deepcopy``, pickle) keeps it working.

Several substitutions on one module run in the order they were registered; each sees the value in
effect so far (``current``: the parameter, or what an earlier one put there). A substitution may
also say what to do around the call with what it substituted (`Substitution.around_call`: e.g.
Intrinsic-SAID's recompute-in-backward); it is entered after the pre-hook and left when the call
ends. `SubstituteCache` is the one rule for keeping a computed value across calls.

>>> import torch
>>> from torch import nn
>>> class Doubled:
...     attributes = ("weight",)
...     def value(self, module, attribute, current, args):
...         return 2 * current
>>> layer = nn.Linear(1, 1, bias=False)
>>> with torch.no_grad(): _ = layer.weight.fill_(3.0)
>>> handles = substitute(layer, Doubled())
>>> layer(torch.ones(1, 1)).item(), layer.weight.item()   # the call reads 6; the parameter stays 3
(6.0, 3.0)
>>> for handle in handles: handle.remove()
>>> layer(torch.ones(1, 1)).item()
3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.hooks import RemovableHandle


class Substitution(Protocol):
    """What to compute in place of some of a module's parameters."""

    attributes: Sequence[str]   # the parameter names it may replace

    def value(self, module: nn.Module, attribute: str, current: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor | None:
        """The tensor the module reads for `attribute` in this call (None: `current`, unchanged)."""

    # Optional: `around_call(module, substituted) -> context manager | None`, with substituted
    # {attribute: (value, current)}: entered once the values are in place, left when the call ends.


class OpenCalls(list):
    """The contexts of the calls in progress of one module (a stack: a module may call itself);
    copies and pickles start empty."""

    def __reduce__(self):
        return (OpenCalls, ())


class SubstituteTensors:
    """Forward pre-hook: the module reads what `substitution` computes instead of its parameters."""

    surgery_engine = True

    def __init__(self, substitution: Substitution, open_calls: OpenCalls):
        self.substitution, self.open_calls = substitution, open_calls

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.open_calls.append(None)   # popped by RestoreParameters, also when this hook raises
        substituted = {}
        for attribute in self.substitution.attributes:
            current = getattr(module, attribute)
            value = self.substitution.value(module, attribute, current, args)
            if value is not None:
                module.__dict__[attribute] = value
                substituted[attribute] = (value, current)
        around = getattr(self.substitution, "around_call", None)
        context = around(module, substituted) if around is not None and substituted else None
        if context is not None:
            context.__enter__()
            self.open_calls[-1] = context


class RestoreParameters:
    """Forward hook (always called): the module's attributes are its parameters again."""

    surgery_engine = True

    def __init__(self, attributes: Sequence[str], open_calls: OpenCalls):
        self.attributes, self.open_calls = tuple(attributes), open_calls

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        for attribute in self.attributes:
            module.__dict__.pop(attribute, None)
        context = self.open_calls.pop() if self.open_calls else None
        if context is not None:
            context.__exit__(None, None, None)


def substitute(module: nn.Module, substitution: Substitution, *, first: bool = False) -> list[RemovableHandle]:
    """Register `substitution` on `module`; returns the two hooks' handles (remove both to undo).

    `first`: run before the module's other pre-hooks (the engine's copies of base tensors do, so a
    method's substitution sees the value of the adapter in effect).
    """
    open_calls = OpenCalls()
    return [module.register_forward_pre_hook(SubstituteTensors(substitution, open_calls), prepend=first),
            module.register_forward_hook(RestoreParameters(substitution.attributes, open_calls), always_call=True)]


def remove_hooks(handles: Sequence[RemovableHandle]) -> None:
    """Remove hooks by their handles (a hook already gone is skipped)."""
    for handle in handles:
        handle.remove()


_optimizer_steps = [0]


def _count_optimizer_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    _optimizer_steps[0] += 1


# A fused optimizer (torch's AdamW(fused=True), transformers' default `adamw_torch_fused`) writes the
# parameters without bumping their version counters: every optimizer step counts as a write of all.
register_optimizer_step_post_hook(_count_optimizer_step)


def optimizer_steps() -> int:
    """How many optimizer steps (of any torch optimizer) this process has taken: part of every cache key.

    >>> before = optimizer_steps()
    >>> p = nn.Parameter(torch.ones(1)); p.grad = torch.ones(1)
    >>> torch.optim.SGD([p], lr=0.1).step(); optimizer_steps() - before
    1
    """
    return _optimizer_steps[0]


class SubstituteCache(dict):
    """slot → (key, value): a value computed where nothing needs its gradient, kept until one of its
    inputs changes (its version counter, storage, device or dtype) or any optimizer takes a step
    (`optimizer_steps`: fused optimizers leave version counters alone). Copies and pickles start empty.

    >>> cache, x = SubstituteCache(), torch.ones(2)
    >>> cache.value(0, (x,), lambda: x * 2) is cache.value(0, (x,), lambda: x * 3)   # kept
    True
    >>> _ = x.add_(1); cache.value(0, (x,), lambda: x * 3).tolist()                   # x changed: computed again
    [6.0, 6.0]
    """

    def __reduce__(self):
        return (SubstituteCache, ())

    def value(self, slot: Any, inputs: Sequence[torch.Tensor], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = (optimizer_steps(), *((t._version, t.data_ptr(), t.device, t.dtype) for t in inputs))
        held = self.get(slot)
        if held is None or held[0] != key:
            held = self[slot] = (key, compute())
        return held[1]
