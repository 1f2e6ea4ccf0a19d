"""Quantised bases (bitsandbytes 8-bit and 4-bit): what they hold, and what cannot train on them.

A base loaded with ``BitsAndBytesConfig(load_in_8bit=True)`` or ``load_in_4bit=True`` keeps its
embeddings, layer norms and (by transformers' default) output layer in floating point, while the
attention and feed-forward linear layers hold integer weights (int8, or 4-bit values packed in
uint8). Integer tensors have no gradients, so

* methods that add modules beside the frozen weights (adapters, Compacter, prompt tuning) work;
* a method or train group that would train an integer tensor is refused at plan time
  (`refuse_integer_tensors`), and methods that rewrite every weight say why they cannot
  (`Method.validate_base`, e.g. full fine-tuning, BitFit, Intrinsic-SAID);
* bitsandbytes' CPU inference kernel for 4-bit layers passes no gradient back, so modules before
  such a layer would silently not train; `keep_4bit_layers_differentiable` keeps bitsandbytes from
  switching to it (and warns where it already has).

>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
>>> describe_quantization(model) is None        # an ordinary float model
True
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

from torch import nn

from .errors import RecipeError

# bitsandbytes (≥ 0.49) warns when it is imported on a CPU with AVX512-BF16 and the optional
# `kernels` package (a faster 4-bit CPU kernel fetched from the Hub) is not installed: "Failed to
# load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. ...". It then uses
# its own kernel, so nothing is wrong; the warning appeared on `import peft` and on every
# quantised example. Only that case is dropped: if `kernels` is installed and fails, or bitsandbytes
# warns about anything else, the warning is shown.
MISSING_KERNELS_WARNING = ("Failed to load CPU gemm_4bit_forward from kernels-community", "No module named 'kernels'")


def _not_the_missing_kernels_warning(record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not all(part in message for part in MISSING_KERNELS_WARNING)


logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_the_missing_kernels_warning)


@dataclass(frozen=True)
class QuantizedBase:
    """How much of a base model is quantised."""

    kinds: tuple[str, ...]            # e.g. ("8-bit",), ("4-bit",)
    quantized_layers: tuple[str, ...]  # qualified names of the quantised linear layers
    integer_tensors: tuple[str, ...]   # parameters that are not floating point
    total_tensors: int

    def __str__(self) -> str:
        return (f"a base quantised by bitsandbytes ({'/'.join(self.kinds) or 'quantised'}): {len(self.quantized_layers)} "
                f"quantised linear layers, {len(self.integer_tensors)} of its {self.total_tensors} parameter tensors "
                f"integer (e.g. {self.integer_tensors[0] if self.integer_tensors else '—'})")


def _kind(module: nn.Module) -> str | None:
    cls = type(module)
    if not cls.__module__.startswith("bitsandbytes"):
        return None
    if "4bit" in cls.__name__:
        return "4-bit"
    if "8bit" in cls.__name__:
        return "8-bit"
    return None


def describe_quantization(model: nn.Module) -> QuantizedBase | None:
    """What of `model` is quantised, or None for a model with only floating-point parameters."""
    layers, kinds = [], []
    for name, module in model.named_modules():
        kind = _kind(module)
        if kind is not None:
            layers.append(name)
            if kind not in kinds:
                kinds.append(kind)
    parameters = list(model.named_parameters())
    integer = tuple(name for name, p in parameters if not p.is_floating_point())
    if not layers and not integer:
        return None
    return QuantizedBase(tuple(kinds), tuple(layers), integer, len(parameters))


def logical_shape(parameter: nn.Parameter) -> tuple[int, ...]:
    """The shape a parameter stands for: bitsandbytes packs 4-bit weights into (numel / 2, 1) uint8, and
    keeps the original shape in its quant_state (8-bit weights keep their shape)."""
    quant_state = getattr(parameter, "quant_state", None)
    shape = getattr(quant_state, "shape", None)
    return tuple(shape) if shape is not None else tuple(parameter.shape)


def refuse_integer_tensors(model: nn.Module, groups: dict[str, list[str]], recipe_groups: tuple[str, ...] = ()) -> None:
    """RecipeError when a trained group holds an integer (quantised) tensor, which cannot have gradients.

    `recipe_groups`: the recipe's `train` entries (errors in those name the key `train`, others `method`).
    """
    parameters = dict(model.named_parameters())
    for group, names in groups.items():
        integer = [name for name in names if not parameters[name].is_floating_point()]
        if integer:
            key = "train" if group.replace(" ", "_") in recipe_groups else "method"
            raise RecipeError(key, group.replace(" ", "_") if key == "train" else group, reason=(
                f"would train {len(integer)} integer tensors (e.g. {integer[0]}, dtype {parameters[integer[0]].dtype}): "
                "the base is quantised (bitsandbytes 8-bit/4-bit), and quantised weights cannot be trained; "
                "train adapters beside them (adapter, compacter, compacter++, prompt tuning) or load the base unquantised"))


def keep_4bit_layers_differentiable(model: nn.Module, method_name: str) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel, and warn where it already has.

    bitsandbytes (≥ 0.49) repacks a 4-bit layer's weight, for good, the first time the layer runs in
    eval mode on an input that needs no gradient on a CPU with AVX512-BF16; from then on the layer runs
    a kernel without autograd, so nothing before it gets a gradient (in T5 the whole encoder, which the
    decoder reads through its cross-attention), silently. A plan's forward checks, or a validation pass
    between epochs, are such calls. This turns the repacking off on every 4-bit layer (the generic
    kernel is used instead), and warns about layers that were repacked before the adapter was added.
    """
    repacked = []
    for name, module in model.named_modules():
        if _kind(module) != "4-bit" or not hasattr(module, "support_avx512bf16_for_cpu"):
            continue
        module.support_avx512bf16_for_cpu = False
        if getattr(getattr(module.weight, "quant_state", None), "packing_format_for_cpu", False):
            repacked.append(name)
    if repacked:
        warnings.warn(
            f"{len(repacked)} 4-bit layers of this base (e.g. {repacked[0]}) were repacked by bitsandbytes for its CPU "
            f"inference kernel, which passes no gradient back: the {method_name!r} modules before them will not train. "
            "Load the base again and add the adapter before running it in eval mode.", UserWarning, stacklevel=3)
