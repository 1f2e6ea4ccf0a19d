"""Sharded training (FSDP) of a spliced model: the one supported way to wrap it.

`shard_model` makes every transformer block one FSDP unit and the model itself the root unit.
Two rules of the engine decide this layout, and the helper keeps both:

* **units are whole blocks.** A spliced block runs a forward generated from its traced graph, in
  which its sublayers (T5LayerFF, ...) are inlined; FSDP's pre-forward hooks on a sub-block unit
  would have to replace that sublayer's inputs, which an inlined module cannot do (the tracer
  refuses such hooks). So nothing inside a block is wrapped on its own.
* **the shared rule stays in the root.** Compacter's rule {Aᵢ} (`model.surgery.adapters.<name>.shared`) is read by
  every block's LPHM layers. In the root unit it is unsharded whenever any block runs (the root
  gathers first and reshards last); in a unit of its own it would still be a DTensor while a
  block computes its Kronecker sum ("mixed torch.Tensor and DTensor").

The root also holds the embeddings, the final layer norms and the head. Apply the recipe (or
load the adapter) *before* sharding; save and load adapters of the sharded model with
`surgery.save_adapter` / `surgery.load_adapter` on every rank (they gather only the adapter's
tensors; rank 0 writes).

For T5-3B (2.9 B parameters) and T5-11B (11.3 B) on GPUs::

    torchrun --nproc_per_node 8 train.py          # in train.py:
    model = T5ForConditionalGeneration.from_pretrained("google-t5/t5-11b", dtype=torch.bfloat16)
    surgery.apply(model, "compacter++")
    model = surgery.shard_model(model)             # FSDP2: 24 + 24 block units, then the root
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    ...
    surgery.save_adapter(model, "adapter")          # every rank; only the adapter is gathered

FSDP2 (`strategy="fsdp2"`, the default) keeps the parameter names and the model's class (as a
subclass ``FSDP<Class>``), and gathers one saved tensor at a time. FSDP1 (`strategy="fsdp1"`)
wraps with ``use_orig_params=True`` (frozen and trained tensors share a unit) and gathers each
saved tensor to rank 0. Mixed precision, CPU offload and the like are FSDP's own options,
passed through ``**options``; they were not tried here (CPU only, no GPU).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from .distributed import is_sharded, unwrap
from .errors import SurgeryError
from .family_registry import detect_family
from .naming import STATE


def shard_model(model: nn.Module, strategy: Literal["fsdp2", "fsdp1"] = "fsdp2", **options: Any) -> nn.Module:
    """Shard `model` with FSDP: one unit per block, then the root. Returns the model to train.

    `options` go to `fully_shard` (FSDP2: mesh, mp_policy, reshard_after_forward, ...) or to
    `FullyShardedDataParallel` (FSDP1: mixed_precision, sharding_strategy, device_id, ...).
    A process group must be running (torchrun, or `torch.distributed.init_process_group`).
    """
    if is_sharded(model) or unwrap(model) is not model:
        raise SurgeryError(f"the model is already wrapped ({type(model).__name__}); shard_model wraps a plain model")
    if not hasattr(model, STATE):
        # Surgery traces and rewrites blocks; on DTensor parameters it cannot, so it must come first.
        raise SurgeryError("apply the recipe (surgery.apply) or load the adapter (surgery.load_adapter) before "
                           "sharding: the engine rewrites blocks, which it cannot do once FSDP owns them")
    family = detect_family(model)
    blocks = [block for stack in family.blocks(model).values() for block in stack]
    if strategy == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for block in blocks:
            fully_shard(block, **options)
        fully_shard(model, **options)
        return model
    if strategy == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        options.setdefault("device_id", torch.device("cpu") if not torch.cuda.is_available() else torch.cuda.current_device())
        return FullyShardedDataParallel(model, auto_wrap_policy=ModuleWrapPolicy(set(family.block_classes)),
                                        use_orig_params=True, **options)
    raise SurgeryError(f"strategy {strategy!r} is not one of 'fsdp2', 'fsdp1'")
