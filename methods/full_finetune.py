"""Full fine-tuning: nothing inserted, every parameter trained (the paper's T5 baseline)."""

from __future__ import annotations

from typing import Any

from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily
from surgery.method import ModelMethod, describe_quantization, register_method
from surgery.adapter_scope import AdapterScope


@register_method
class FullFineTuning(ModelMethod):
    name = "full-finetune"
    trains_base_itself = True   # no other adapter can sit beside it; it keeps no copy of the base

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        quantized = describe_quantization(model)
        if quantized is not None:
            raise RecipeError("method", self.name, valid="a float base (load it without quantization_config)", reason=(
                f"trains every weight, but this is {quantized}; integer weights have no gradients"))

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        """Nothing to add: every base weight trains as it is (`trainable_groups`)."""

    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        return {"all parameters": [name for name, _ in model.named_parameters()]}

    def fold_refusal(self) -> str | None:
        return None

    def fold(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> Any:
        return lambda: None  # the trained values are the base weights already: folding only drops the surgery
