"""Intrinsic-SAID's θ = θ₀ + λ·P·z recomputed in the backward instead of kept by its consumer.

nn.Linear saves its weight for the input's gradient; with θ substituted for the weight, every θ of
the model would stay alive from its module's forward to its backward — a second copy of the
network. `RecomputeInBackward` is a saved-tensor hook pair entered for one module call: a saved
view of one of that call's θ is stored as a `SavedTheta` (which tensor, θ₀, the view's geometry,
the version counters) and recomputed, by the same function as in the forward, when the backward
needs it.

>>> import torch
>>> from torch import nn
>>> class Subspace(nn.Module):  # a stand-in with the interface of methods.intrinsic_said.IntrinsicSubspace
...     def __init__(self):
...         super().__init__()
...         self.z, self.scales, self.tensor_names = nn.Parameter(torch.ones(4)), nn.Parameter(torch.ones(1)), ["w"]
...     def weight(self, index, base, projection):
...         return base + self.scales[index] * self.z.sum()
>>> projections = nn.ModuleList([nn.Identity()]); projections[0].padded_size = 4
>>> subspace, base, x = Subspace(), torch.zeros(3, 4), torch.ones(2, 4)
>>> theta = subspace.weight(0, base, projections[0])
>>> with RecomputeInBackward(subspace, projections, [(theta, 0, base)]) as recompute:
...     loss = torch.nn.functional.linear(x, theta).sum()
>>> del theta; loss.backward(); subspace.scales.grad
tensor([96.])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn



@dataclass(frozen=True)
class SavedTheta:
    """What the backward needs to remake a saved view of θ = θ₀ + λ·P·z: the tensor's index, θ₀, the
    view's geometry and the version counters that must be unchanged when it is remade."""

    index: int
    base: torch.Tensor
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int
    versions: tuple[int, int, int]


class RecomputeInBackward:
    """A saved-tensor hook pair for one module call: a consumer that saves θ (nn.Linear saves its weight
    for the input's gradient) keeps a `SavedTheta` instead, and the backward recomputes θ from z and λ.

    Without it every θ of the model would be alive from its forward to its backward — a second copy of
    the network. θ is remade by the same function as in the forward, so the gradients are the same;
    z, λ or θ₀ changed in place in between is an error, as for any saved tensor. Only tensors of at
    least one Fastfood block (L entries) are recomputed: a smaller one costs a whole block to remake.
    """

    def __init__(self, subspace: nn.Module, projections: nn.ModuleList,
                 thetas: list[tuple[torch.Tensor, int, torch.Tensor]]):
        self.subspace, self.projections = subspace, projections
        self.storages = {theta.untyped_storage().data_ptr(): (index, base) for theta, index, base in thetas
                         if theta.numel() >= projections[index].padded_size}
        self.context = torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)

    def versions(self, base: torch.Tensor) -> tuple[int, int, int]:
        return (self.subspace.z._version, self.subspace.scales._version, base._version)

    def pack(self, tensor: torch.Tensor) -> Any:
        held = self.storages.get(tensor.untyped_storage().data_ptr()) if tensor.device.type != "meta" else None
        if held is None:
            return tensor
        index, base = held
        return SavedTheta(index, base, tuple(tensor.size()), tuple(tensor.stride()), tensor.storage_offset(), self.versions(base))

    def unpack(self, saved: Any) -> torch.Tensor:
        if not isinstance(saved, SavedTheta):
            return saved
        if self.versions(saved.base) != saved.versions:
            raise RuntimeError(f"intrinsic_said: z, λ or θ₀ of {self.subspace.tensor_names[saved.index]!r} were changed "
                               "in place between the forward and the backward; θ cannot be recomputed")
        with torch.no_grad():
            theta = self.subspace.weight(saved.index, saved.base, self.projections[saved.index])
        return theta.as_strided(saved.size, saved.stride, saved.offset)

    def __enter__(self) -> "RecomputeInBackward":
        self.context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.context.__exit__(*exc)


def recompute_in_backward(subspace: nn.Module, projections: nn.ModuleList,
                          thetas: list[tuple[torch.Tensor, int, torch.Tensor]]) -> RecomputeInBackward:
    """The context for one module call (entered and left by `surgery.substitute` around the call)."""
    return RecomputeInBackward(subspace, projections, thetas)
