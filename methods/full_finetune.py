"""Full fine-tuning: nothing inserted, every parameter trained (the paper's T5 baseline)."""

from __future__ import annotations

from torch import nn

from surgery.family import ModelFamily
from surgery.method import Method, register_method


@register_method
class FullFineTuning(Method):
    name = "full"
    uses_sites = False
    default_learning_rate = 3e-4

    def trainable_groups(self, model: nn.Module, family: ModelFamily) -> dict[str, list[str]]:
        return {"all parameters": [name for name, _ in model.named_parameters()]}
