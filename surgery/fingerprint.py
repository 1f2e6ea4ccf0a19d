"""The base-model fingerprint of an adapter checkpoint: architecture, and a sample of the weights.

An adapter only means something on the base it was trained on. The fingerprint records

* the architecture: model class, the config fields that shape the network, and a hash of every
  base parameter's name and (logical) shape — a model of another architecture is always refused;
* the weights: `SAMPLES_PER_TENSOR` values of every floating-point base tensor at fixed positions
  (evenly spaced over the flattened tensor), stored as float32 with the tensors' indices. A base
  whose weights differ (another checkpoint, another seed, a fine-tuned copy) is refused unless
  the caller says otherwise (``load_adapter(..., allow_other_base=True)``).

Why a sample and not a hash of everything: hashing T5-base's 223M numbers takes seconds, a
sample of 4 numbers per tensor is about 1,000 reads (`benchmarks/bench_checkpoint.py` measures
it). Why values and not a hash of the sample: the same base loaded in bfloat16 must still match,
so the comparison allows the rounding error of the coarser of the two dtypes. Tensors the
adapter holds itself (e.g. the layer norms it trains) are left out: loading overwrites them.
Integer tensors (bitsandbytes-quantised weights) are left out as well, so an adapter trained on
a quantised base loads into its float original: the tensors both have in floating point (the
embeddings, the attention biases, what the quantisation skipped) are compared. Sharded (FSDP)
models are compared by architecture only (sampling would gather the base).

>>> from transformers import T5Config, T5ForConditionalGeneration
>>> config = T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32)
>>> model = T5ForConditionalGeneration(config)
>>> fingerprint = weights_fingerprint(model)
>>> weight_differences(fingerprint, model) is None
True
>>> weight_differences(fingerprint, T5ForConditionalGeneration(config))  # doctest: +ELLIPSIS
'... of ... sampled base weights differ (e.g. shared.weight[0]: checkpoint ..., model ...)'
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .naming import is_added

SAMPLES_PER_TENSOR = 4


def sample_positions(numel: int, count: int = SAMPLES_PER_TENSOR) -> list[int]:
    """`count` flat indices spread evenly over a tensor of `numel` entries (all of them when fewer).

    >>> sample_positions(10), sample_positions(2)
    ([0, 3, 6, 9], [0, 1])
    """
    if numel <= count:
        return list(range(numel))
    return [(i * (numel - 1)) // (count - 1) for i in range(count)]


def sampled_tensors(parameters: Iterable[tuple[str, torch.Tensor]], trained: Collection[str] = ()) -> list[tuple[str, torch.Tensor]]:
    """The base tensors a fingerprint samples: floating point, not added by surgery, not held by the adapter."""
    return [(name, p) for name, p in parameters
            if not is_added(name) and name not in trained and p.is_floating_point() and p.numel() and not p.is_meta]


def weight_sample(model: nn.Module, trained: Collection[str] = (),
                  values: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """name → float32 values of that base tensor at `sample_positions`.

    `values`: base values to read instead of a parameter (θ₀ of a tensor an adapter trains in place).
    """
    sample = {}
    values = values or {}
    for name, parameter in sampled_tensors(model.named_parameters(), trained):
        flat = values.get(name, parameter).detach().reshape(-1)
        positions = torch.tensor(sample_positions(flat.numel()), device=flat.device)
        sample[name] = flat[positions].float().cpu()
    return sample


def _dtype_name(model: nn.Module) -> str:
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return str(dtype).removeprefix("torch.")


def _base_names(model: nn.Module) -> list[str]:
    """Sorted names of the base parameters: the same list in every model that passes the architecture check."""
    return sorted(name for name, _ in model.named_parameters() if not is_added(name))


def weights_fingerprint(model: nn.Module, trained: Collection[str] = (),
                        values: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The sample of the base weights, JSON-ready and compact: which tensors (indices into the sorted
    base names, ``index:count`` where fewer than the usual count), float32 values (base64), the dtype."""
    sample = weight_sample(model, trained, values)
    index = {name: i for i, name in enumerate(_base_names(model))}
    entries = [str(index[name]) if values.numel() == SAMPLES_PER_TENSOR else f"{index[name]}:{values.numel()}"
               for name, values in sample.items()]
    values = torch.cat(list(sample.values())) if sample else torch.zeros(0)
    return {"samples_per_tensor": SAMPLES_PER_TENSOR, "dtype": _dtype_name(model), "tensors": ",".join(entries),
            "float32_sample": base64.b64encode(values.numpy().astype("<f4").tobytes()).decode("ascii")}


def _decode(weights: dict[str, Any], names: list[str]) -> dict[str, torch.Tensor]:
    raw = base64.b64decode(weights["float32_sample"], validate=True)
    values = torch.frombuffer(bytearray(raw), dtype=torch.float32) if raw else torch.zeros(0)
    sample, start = {}, 0
    for entry in (e for e in str(weights["tensors"]).split(",") if e):
        index, _, count = entry.partition(":")
        size = int(count) if count else SAMPLES_PER_TENSOR
        sample[names[int(index)]] = values[start:start + size]
        start += size
    if start != values.numel():
        raise ValueError(f"{values.numel()} values for {start} sample positions")
    return sample


def _tolerance(*dtype_names: str) -> float:
    """Twice the machine epsilon of the coarsest dtype: what rounding the same weights can change."""
    eps = [torch.finfo(getattr(torch, name)).eps for name in dtype_names
           if isinstance(getattr(torch, name, None), torch.dtype) and getattr(torch, name).is_floating_point]
    return 2 * max(eps, default=torch.finfo(torch.float32).eps)


def weight_differences(saved: dict[str, Any] | None, model: nn.Module, trained: Collection[str] = (),
                       values: Mapping[str, torch.Tensor] | None = None) -> str | None:
    """None when the model's base weights match the saved sample (or there is none), else what differs.

    `trained`: the names the checkpoint holds, left out of the sample as they were at save;
    `values`: as in `weight_sample`.
    """
    if saved is None:
        return None  # a checkpoint without a sample (written before samples were taken)
    if not isinstance(saved, dict) or saved.get("samples_per_tensor") != SAMPLES_PER_TENSOR:
        return "the checkpoint's weight sample is unreadable"
    try:
        expected = _decode(saved, _base_names(model))
    except (KeyError, TypeError, ValueError, IndexError):
        return "the checkpoint's weight sample is unreadable"
    current = weight_sample(model, trained, values)
    common = [name for name in expected if name in current and expected[name].numel() == current[name].numel()]
    if not common:
        return None  # nothing both have in floating point: the architecture check is all there is
    rtol = _tolerance(str(saved.get("dtype", "float32")), _dtype_name(model))
    mismatches = []
    for name in common:
        a, b = expected[name], current[name]
        differ = ~((a - b).abs() <= rtol * torch.maximum(a.abs(), b.abs())) & ~(a.isnan() & b.isnan())
        mismatches += [(name, int(i), float(a[i]), float(b[i])) for i in differ.nonzero().flatten()]
    if not mismatches:
        return None
    name, index, a, b = mismatches[0]
    position = sample_positions(dict(model.named_parameters())[name].numel())[index]
    total = sum(current[name].numel() for name in common)
    return (f"{len(mismatches)} of {total} sampled base weights differ (e.g. {name}[{position}]: "
            f"checkpoint {a:.6g}, model {b:.6g})")
