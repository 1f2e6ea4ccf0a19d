"""Full fine-tuning: nothing inserted, every parameter trained (the paper's T5 baseline)."""

from __future__ import annotations

from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelFamily
from surgery.method import Method, register_method
from surgery.quantization import describe_quantization


@register_method
class FullFineTuning(Method):
    name = "full"
    uses_sites = False
    default_learning_rate = 3e-4

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        quantized = describe_quantization(model)
        if quantized is not None:
            raise RecipeError("method", self.name, valid="a float base (load it without quantization_config)", reason=(
                f"trains every weight, but this is {quantized}; integer weights have no gradients"))

    def trainable_groups(self, model: nn.Module, family: ModelFamily) -> dict[str, list[str]]:
        return {"all parameters": [name for name, _ in model.named_parameters()]}
