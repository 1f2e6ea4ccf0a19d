"""Named parameter groups a recipe can ask to train (`train: [...]`), and freezing.

Everything not in a trained group is frozen; freezing follows from the plan, never from
manual `requires_grad` edits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from .errors import RecipeError
from .family import ModelFamily, task_head_modules

Layers = dict[str, list[int]]  # stack -> selected block indices


def _layer_norm_names(model: nn.Module, family: ModelFamily, in_blocks_only: bool) -> list[str]:
    in_blocks = {id(m) for blocks in family.blocks(model).values() for block in blocks for m in block.modules()}
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, family.layer_norm_classes) and (not in_blocks_only or id(module) in in_blocks):
            names += [f"{module_name}.{p}" for p, _ in module.named_parameters(recurse=False)]
    return names


def _adapted_layer_norm_names(model: nn.Module, family: ModelFamily, layers: Layers) -> list[str]:
    """Layer norms of the blocks the recipe selects, and each stack's final layer norm.

    With the first blocks of a stack left without adapters and with frozen layer norms, nothing
    below the first adapted block trains, so backpropagation stops there (AdapterDrop's saving).
    """
    wanted: set[int] = set()
    blocks = family.blocks(model)
    for stack, path in family.stack_paths(model).items():
        stack_module = model.get_submodule(path)
        chosen = set(layers.get(stack, ()))
        for index, block in enumerate(blocks[stack]):
            if index in chosen:
                wanted.update(id(m) for m in block.modules() if isinstance(m, family.layer_norm_classes))
        wanted.update(id(m) for m in stack_module.children() if isinstance(m, family.layer_norm_classes))
    return [f"{name}.{p}" for name, module in model.named_modules() if id(module) in wanted
            for p, _ in module.named_parameters(recurse=False)]


def _output_layer_names(model: nn.Module, family: ModelFamily, layers: Layers) -> list[str]:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None:
        return []
    ids = {id(p) for p in head.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in ids]


def _head_names(model: nn.Module, family: ModelFamily, layers: Layers) -> list[str]:
    """Parameters of the task head (like PEFT's `modules_to_save`): a classification, token-classification
    or QA head, or the LM head of T5ForConditionalGeneration (tied: the shared embedding)."""
    heads = task_head_modules(model)
    if not heads:
        raise RecipeError("train", "head", valid="a model with a task head: *ForConditionalGeneration, *ForSequenceClassification, "
                                                 "*ForTokenClassification, *ForQuestionAnswering",
                          reason=f"names a task head, but {type(model).__name__} has none")
    ids = {id(p) for head in heads.values() for p in head.parameters()}
    return [name for name, p in model.named_parameters() if id(p) in ids]


# A group maps (model, family, the plan's selected blocks per stack) to parameter names.
TRAIN_GROUPS: dict[str, Callable[[nn.Module, ModelFamily, Layers], list[str]]] = {
    # The paper trains every layer norm of the model with each parameter-efficient method.
    "layer_norms": lambda model, family, layers: _layer_norm_names(model, family, in_blocks_only=False),
    "block_layer_norms": lambda model, family, layers: _layer_norm_names(model, family, in_blocks_only=True),
    "adapted_layer_norms": _adapted_layer_norm_names,
    "output_layer": _output_layer_names,
    "head": _head_names,
    "all": lambda model, family, layers: [name for name, _ in model.named_parameters()],
}


def check_train_groups(groups: Iterable[str]) -> None:
    for group in groups:
        if group not in TRAIN_GROUPS:
            raise RecipeError("train", group, valid=sorted(TRAIN_GROUPS))


def freeze_all_but(model: nn.Module, trainable: set[str]) -> None:
    """requires_grad=True exactly for the parameters named in `trainable` (shared ones count once)."""
    trainable_ids = {id(p) for name, p in model.named_parameters(remove_duplicate=False) if name in trainable}
    for _, parameter in model.named_parameters():
        parameter.requires_grad_(id(parameter) in trainable_ids)
