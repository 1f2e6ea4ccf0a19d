"""The lines a run of `runners.finetune` prints about itself: the model, the training protocol in effect."""

from __future__ import annotations

from typing import Any

import torch

from surgery.family_registry import detect_family


def describe_model(model: torch.nn.Module, options: dict[str, Any]) -> str:
    size = sum(p.numel() for p in model.parameters())
    if options.get("init_config"):
        origin = "random-init T5 (--init-config)"
    else:
        origin = options.get("model") or "the embedded pretrained T5 (runners/embedded/model)"
        if options.get("random_init"):
            origin += ", weights drawn at random (--random-init)"
    family = detect_family(model)
    dims = family.dims(model)
    blocks = "+".join(str(depth) for depth in dims.stack_depths.values())
    return (f"model: {origin} ({family.name}, d_model {dims.hidden_size}, {blocks} blocks, "
            f"vocab {dims.vocab_size:,}), {size:,} parameters")


def on_device(device) -> str:
    """The device, with its intra-op thread count on a CPU (a --jobs run has its own, one by default).

    >>> import torch
    >>> torch.set_num_threads(1); on_device(torch.device("cpu")), on_device(torch.device("cuda", 0))
    ('cpu (1 thread)', 'cuda:0')
    """
    import torch

    if device.type != "cpu":
        return str(device)
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' * (threads != 1)})"


def describe_training(config, lr_source: str, accelerator) -> str:
    """The run's training line: epochs, global batch, learning rate and its source, device, precision, dropout."""
    world = accelerator.num_processes
    dropout = "the model's" if config.dropout is None else config.dropout
    grouped = ", batches grouped by length" if config.group_by_length else ""
    return (f"training: {config.epochs} epoch{'s' * (config.epochs != 1)}, global batch {config.batch_size} ({world} "
            f"process{'es' * (world > 1)} × {config.grad_accum} accumulation step{'s' * (config.grad_accum > 1)}), "
            f"lr {config.learning_rate:g} ({lr_source}), warm-up {config.warmup_steps} step{'s' * (config.warmup_steps != 1)}, "
            f"device {on_device(accelerator.device)}, precision {accelerator.mixed_precision}, dropout {dropout}{grouped}")
