"""Where surgery puts what it adds, and how to recognise it by name.

Every adapter, the first one (named ``"default"``) included, has the same layout, keyed by its name:

===================================================  ==============================================
live name (adapter ``rte``)                           what it is
===================================================  ==============================================
``<block>.spliced.rte.<site>.…``                      modules spliced into a block's graph
``surgery.adapters.rte.<…>``                          model-level modules (the shared rule, a prompt)
``<module>.surgery_bias__rte``                        tensors attached to an existing module (BitFit)
``surgery.adapters.rte.base.<name, '.' → '-'>``       its own trained copy of a base tensor (a layer norm)
===================================================  ==============================================

Everything else is the base model, which no adapter method changes in place: an adapter trains its
own copy of a base tensor, so switching adapters off or removing them gives back the base exactly.

A checkpoint names the same tensors without the adapter's name (``<block>.spliced.<site>.…``,
``surgery.<…>``, ``<module>.surgery_bias``, the base tensor's own name), so it loads under any
name; `live_name` and `canonical_name` translate, in save and load only.

>>> live_name("encoder.block.0.spliced.after_ffn.down.weight", "rte")
'encoder.block.0.spliced.rte.after_ffn.down.weight'
>>> live_name("encoder.final_layer_norm.weight", "default")
'surgery.adapters.default.base.encoder-final_layer_norm-weight'
>>> canonical_name(live_name("shared.surgery_bias", "rte"), "rte")
'shared.surgery_bias'
>>> adapter_of("surgery.adapters.rte.shared.rule"), adapter_of("encoder.block.0.spliced.default.after_ffn.up.bias")
('rte', 'default')
"""

from __future__ import annotations

import re

from .errors import SurgeryError

SPLICED = "spliced"
STATE = "surgery"
ATTACHED_PREFIX = "surgery_"
DEFAULT_ADAPTER = "default"   # the name of the first adapter applied to a model
ADAPTERS = "adapters"      # model.surgery.adapters: every adapter's model-level modules, by name
BASE_COPIES = "base"       # model.surgery.adapters.<name>.base: an adapter's own copies of base tensors
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# Attribute names of the containers an adapter name becomes a key of (ModuleDict, the state module).
_RESERVED = {"adapters", "base", "shared", "prompt", "intrinsic"}


def is_added(name: str) -> bool:
    """True for a parameter/buffer name that surgery added (not part of the base model)."""
    parts = name.split(".")
    return SPLICED in parts[1:] or parts[0] == STATE or any(part.startswith(ATTACHED_PREFIX) for part in parts)


def check_adapter_name(name: object, sites: tuple[str, ...] = ()) -> str:
    """`name` if it can name an adapter, else a SurgeryError saying what is valid.

    >>> check_adapter_name("rte")
    'rte'
    >>> check_adapter_name("my.task")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surgery.errors.SurgeryError: adapter name 'my.task' is not valid: ...
    """
    from torch import nn

    valid = "a letter, then up to 63 letters, digits, '_' or '-' (no '__'), not a site name"
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        raise SurgeryError(f"adapter name {name!r} is not valid: give {valid}")
    if name in sites or name in _RESERVED or hasattr(nn.ModuleDict(), name):
        raise SurgeryError(f"adapter name {name!r} is not valid: it is a reserved word (a site name or an attribute "
                           f"of the modules that hold adapters); give another, e.g. {name + '_1'!r}")
    return name


def site_module_path(block: str, site: str, adapter: str) -> str:
    """Qualified name of the module `adapter` splices into `block` at `site`."""
    return f"{block}.{SPLICED}.{adapter}.{site}"


def container_path(adapter: str) -> str:
    """Qualified name of the module holding `adapter`'s model-level modules."""
    return f"{STATE}.{ADAPTERS}.{adapter}"


def attached_name(base: str, adapter: str) -> str:
    """Name of a tensor or module `adapter` attaches to an existing module (``base`` starts with ``surgery_``)."""
    return f"{base}__{adapter}"


def copy_key(base_name: str) -> str:
    """The key of a base tensor's copy in an adapter's ``base`` ParameterDict (no dots allowed there)."""
    return base_name.replace(".", "-")


def live_name(canonical: str, adapter: str) -> str:
    """The name, in a model holding `adapter`, of the tensor a checkpoint calls `canonical`."""
    if not is_added(canonical):
        return f"{container_path(adapter)}.{BASE_COPIES}.{copy_key(canonical)}"
    parts = canonical.split(".")
    if parts[0] == STATE:
        return f"{container_path(adapter)}.{'.'.join(parts[1:])}"
    if SPLICED in parts[1:]:
        at = parts.index(SPLICED, 1)
        return ".".join(parts[: at + 1] + [adapter] + parts[at + 1:])
    return ".".join(attached_name(part, adapter) if part.startswith(ATTACHED_PREFIX) else part for part in parts)


def canonical_name(live: str, adapter: str) -> str:
    """The inverse of `live_name`: what a checkpoint calls the tensor `live` of `adapter`."""
    prefix = f"{container_path(adapter)}."
    if live.startswith(prefix + BASE_COPIES + "."):
        return live[len(prefix + BASE_COPIES) + 1:].replace("-", ".")
    if live.startswith(prefix):
        return f"{STATE}.{live[len(prefix):]}"
    parts = live.split(".")
    if SPLICED in parts[1:]:
        at = parts.index(SPLICED, 1)
        if at + 1 < len(parts) and parts[at + 1] == adapter:
            return ".".join(parts[: at + 1] + parts[at + 2:])
    suffix = f"__{adapter}"
    return ".".join(part[: -len(suffix)] if part.startswith(ATTACHED_PREFIX) and part.endswith(suffix) else part
                    for part in parts)


def adapter_of(live: str) -> str | None:
    """Which adapter the added tensor `live` belongs to (None for a base tensor)."""
    if not is_added(live):
        return None
    parts = live.split(".")
    if parts[0] == STATE:
        return parts[2] if len(parts) > 2 and parts[1] == ADAPTERS else None
    if SPLICED in parts[1:]:
        at = parts.index(SPLICED, 1)
        return parts[at + 1] if at + 1 < len(parts) else None
    for part in parts:
        if part.startswith(ATTACHED_PREFIX):
            return part.split("__", 1)[1] if "__" in part else None
    return None
