"""Folding Intrinsic-SAID: θ = θ₀ + λ·P·z written into the base weights, so inference costs what the base costs.

The folded value of every tensor is computed by `IntrinsicSubspace.weight`, the function the
hooks call, so the folded model computes bit for bit what the unfolded one computes. The output
layer is respected as the recipe set it: ``in_subspace`` folds it like every other tensor (a tied
one stays tied); ``frozen`` (the paper's) leaves it at θ₀ — and where it is tied to the embedding
(T5 v1.0), the embedding moves while the output layer must not, so the output layer gets θ₀ as a
tensor of its own (untied, as in a T5 v1.1 checkpoint; transformers' ``from_pretrained`` keeps
such a pair untied, with a warning that they differ).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def fold_subspace(model: nn.Module, subspace: nn.Module, projections: nn.ModuleList,
                  frozen_head: nn.Module | None) -> Callable[[], None]:
    """Compute θ for every reparametrised tensor (the model is unchanged); return the step that writes it."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        folded = [(parameters[name], subspace.weight(index, parameters[name], projections[index]))
                  for index, name in enumerate(subspace.tensor_names)]
        untie = None
        if frozen_head is not None:
            head_weight = frozen_head._parameters.get("weight")
            if head_weight is not None and any(head_weight is p for p, _ in folded):
                untie = nn.Parameter(head_weight.detach().clone(), requires_grad=head_weight.requires_grad)

    def commit() -> None:
        if untie is not None:
            frozen_head.weight = untie
        with torch.no_grad():
            for parameter, value in folded:
                parameter.copy_(value)

    return commit
