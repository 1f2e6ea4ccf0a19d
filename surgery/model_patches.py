"""What the engine changes on the model object itself while it has adapters, and how it undoes that.

While a model has adapters, `surgery.apply` gives it (once, with its first adapter):

* the ``adapter_names=`` argument of its forward: a forward pre-hook and a forward hook (`surgery.mixed`);
* a ``generate`` that accepts ``adapter_names=`` (when its class has ``generate``);
* a ``save_pretrained`` that writes the adapter files too (when its class has ``save_pretrained``).

All of it is recorded in one `ModelPatches`, kept on the model's surgery state, and taken down when the
last adapter goes (`surgery.remove`, `surgery.fold`): the hooks through their handles, the attributes
by deleting them. There is no list of callbacks: these two functions are the whole mechanism.

>>> import surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4, vocab_size=20))
>>> _ = surgery.apply(model, "adapter")
>>> sorted(k for k in ("generate", "save_pretrained") if k in vars(model))
['generate', 'save_pretrained']
>>> surgery.remove(model, "default")
>>> [k for k in ("generate", "save_pretrained") if k in vars(model)], len(model._forward_hooks)
([], 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from torch.utils.hooks import RemovableHandle

PATCHES = "model_patches"   # attribute of the surgery state that holds the `ModelPatches`


@dataclass
class ModelPatches:
    """The hooks (as their handles) and the instance attributes the engine put on a model."""

    handles: list[RemovableHandle] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)

    def undo(self, model: nn.Module) -> None:
        for handle in self.handles:
            handle.remove()
        for attribute in self.attributes:
            if attribute in vars(model):
                delattr(model, attribute)
        self.handles, self.attributes = [], []


def patch_model(model: nn.Module, state: nn.Module) -> None:
    """Give `model` (whose surgery state is `state`) the hooks and attributes above, unless it has them."""
    if getattr(state, PATCHES, None) is not None:
        return
    # Imported here, not at the top: both modules use the engine (apply, remove) that calls this.
    from .mixed import AdapterNamesArgument, GenerateWithAdapterNames
    from .pretrained import SaveSplicedPretrained

    patches = ModelPatches()
    argument = AdapterNamesArgument()
    patches.handles.append(model.register_forward_pre_hook(argument.before, with_kwargs=True))
    patches.handles.append(model.register_forward_hook(argument.after, always_call=True))
    for attribute, wrapper in (("generate", GenerateWithAdapterNames), ("save_pretrained", SaveSplicedPretrained)):
        if hasattr(type(model), attribute):
            setattr(model, attribute, wrapper(model))
            patches.attributes.append(attribute)
    setattr(state, PATCHES, patches)


def unpatch_model(model: nn.Module, state: nn.Module) -> None:
    """Take down what `patch_model` put on `model` (when its last adapter is removed)."""
    patches = getattr(state, PATCHES, None)
    if patches is not None:
        patches.undo(model)
        setattr(state, PATCHES, None)
