"""Baselines trained through another library, side by side with the recipes: PEFT's LoRA (``--recipe peft-lora``).

The miniature Table 1 has a row for the method users pick instead of ours: Hugging Face PEFT's
LoRA at a parameter budget comparable to Compacter++'s, trained by this runner under the same
protocol, data, evaluation, result files and tables as every recipe. PEFT's own code does the
adaptation (``peft.get_peft_model(model, peft.LoraConfig(...))``); LoRA is not one of the engine's
methods, and PEFT is an optional dependency used for this comparison only
(``pip install -e '.[compare]'``).

Everything that differs for such a baseline is answered here, where the runner asks::

    resolve_settings   check_baseline_options   PEFT importable, flags that make sense (one line, before any data)
    plan_jobs          baseline_mapping         the record a job carries instead of a recipe mapping
                       check_baseline           the model's kind and PEFT's default targets, on the meta model
    run_one            apply_baseline           get_peft_model; the model trained, its trainable-parameter Report
    best/, last/       save_trained, load_trained   PEFT's adapter_model.safetensors + adapter_config.json
                                                (runners.finetune.state picks them for a model PEFT adapted)
    the learning rate  runners.finetune.protocol's "LoRA (PEFT)" row: 3e-3 on the embedded tasks (searched as
                       the others were); no table of the paper has LoRA, so elsewhere its default 3e-4, with a note

The settings (`baseline_mapping`):

* target modules: PEFT's default for the model type; for T5 that is ``q`` and ``v`` of every
  attention (encoder self-attention, decoder self- and cross-attention);
* rank ``--lora-rank`` (default 1): A (r × d_model) and B (heads·d_kv × r) per targeted projection,
  r·(d_model + heads·d_kv) parameters. On T5-base (12 + 12 blocks: 36 attentions, 72 projections of
  768 → 768) r = 1 trains 110,592 parameters (0.050 % of 222,903,552), next to Compacter++'s 104,704
  (0.047 %); on the embedded T5 (3 + 3 blocks, 384 → 128) 9,216 next to Compacter++'s 13,720;
* ``lora_alpha`` = 2·r: LoRA's update is scaled by alpha / r = 2 at every rank, so --lora-rank
  changes the capacity and not the step size (PEFT's default, alpha 8, would scale r = 1 by 8);
* ``lora_dropout``: the protocol's dropout (``--dropout``, else the model's own; the run sets it
  with every other dropout of the model, `runners.finetune.training.set_dropout`);
* nothing else trains (bias "none", no modules_to_save: the layer norms stay frozen).

The run trains the Hugging Face model PEFT injected its LoRA layers into
(``peft_model.get_base_model()``): the same class as every other run, so the training loop,
``generate()`` and the kind of model are the runner's own. ``best/`` and ``last/`` hold PEFT's
files, which ``peft.PeftModel.from_pretrained(base, "…/best")`` loads.

>>> mapping = baseline_mapping("peft-lora", {"lora_rank": 4}, version="0.21.2")
>>> mapping["r"], mapping["lora_alpha"], row_label(mapping, "peft-lora")
(4, 8, 'peft-lora (PEFT 0.21.2, r=4)')
>>> is_library_baseline("peft-lora"), is_library_baseline("compacter++"), is_library_baseline(mapping)
(True, False, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from .errors import UsageError

PEFT_LORA = "peft-lora"
LIBRARY_BASELINES = (PEFT_LORA,)
LIBRARY_KEY = "library"             # a job's mapping with this key is a baseline's record, not a recipe
DEFAULT_LORA_RANK = 1               # ≈ Compacter++'s budget on T5-base (module docstring)
INSTALL_HINT = "pip install -e '.[compare]'"
PEFT_WEIGHTS, PEFT_CONFIG = "adapter_model.safetensors", "adapter_config.json"  # what PeftModel.save_pretrained writes
PEFT_PREFIX = "base_model.model."   # the keys of PEFT's files name the wrapped model's modules from the PeftModel
ADAPTER_NAME = "default"


def is_library_baseline(recipe: str | dict[str, Any]) -> bool:
    """Whether `recipe` (a --recipe name, or a job's mapping) is a baseline of another library."""
    if isinstance(recipe, dict):
        return LIBRARY_KEY in recipe
    return isinstance(recipe, str) and recipe.strip().lower() in LIBRARY_BASELINES


def peft_version() -> str:
    """The installed PEFT's version; UsageError saying how to install it where it is missing.

    Light (no import of PEFT, torch or transformers): a usage error still comes back at once.
    """
    import importlib.metadata
    import importlib.util

    try:
        found = importlib.util.find_spec("peft") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(f"--recipe {PEFT_LORA} trains Hugging Face PEFT's LoRA, and PEFT is not installed; "
                         f"install it with: {INSTALL_HINT}")
    try:
        return importlib.metadata.version("peft")
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def check_baseline_options(recipes: list[str] | None, options: dict[str, Any]) -> None:
    """The options of an invocation that names a library baseline (or --lora-rank) make sense; UsageError if not."""
    baselines = [recipe for recipe in recipes or [] if is_library_baseline(recipe)]
    if not baselines:
        if options.get("lora_rank") is not None:
            raise UsageError(f"--lora-rank {options['lora_rank']} sets the rank of {PEFT_LORA}; add {PEFT_LORA} to "
                             "--recipe (e.g. --recipe compacter++,peft-lora)")
        return
    peft_version()
    for flag, key in (("--one-base", "one_base"), ("--train-output-layer", "train_output_layer")):
        if options.get(key):
            raise UsageError(f"{flag} is for the engine's recipes; {PEFT_LORA} trains PEFT's LoRA as it is "
                             f"(leave {flag} out, or run {PEFT_LORA} in an invocation of its own)")
    for flag in ("set", "sweep"):
        for item in options.get(flag) or []:
            key = item.partition("=")[0].strip()
            if key != "lr":
                raise UsageError(f"--{flag} {item}: {PEFT_LORA} is PEFT's LoRA, not a recipe, and has no recipe keys "
                                 f"(it takes lr; its rank is --lora-rank); run it in an invocation of its own")


def baseline_mapping(name: str, options: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The record a job of baseline `name` carries where a recipe's would be: everything its run depends on."""
    if name.strip().lower() != PEFT_LORA:
        raise UsageError(f"--recipe {name}: not a library baseline; those are {', '.join(LIBRARY_BASELINES)}")
    rank = options.get("lora_rank") or DEFAULT_LORA_RANK
    return {"name": PEFT_LORA, LIBRARY_KEY: "peft", "version": version or peft_version(),
            "method": "lora", "r": rank, "lora_alpha": 2 * rank, "target_modules": "PEFT's default for the model type",
            "bias": "none", "lora_dropout": "the protocol's dropout"}


def row_label(mapping: dict[str, Any], folder_label: str) -> str:
    """The row of a baseline's runs in the results table: which library, which version, which rank."""
    return f"{folder_label} (PEFT {mapping['version']}, r={mapping['r']})"


class BaselineRecord:
    """A baseline's record where the runner reads a parsed recipe (run.json, folder labels): a name and content."""

    def __init__(self, mapping: dict[str, Any]):
        self.name, self.mapping = str(mapping["name"]), mapping

    def to_dict(self) -> dict[str, Any]:
        return dict(self.mapping)


def digest(mapping: dict[str, Any]) -> str:
    """8 hex digits of the record (as `runners.finetune.run_folders.content_hash` of a recipe)."""
    return hashlib.sha256(json.dumps(mapping, sort_keys=True, default=str).encode()).hexdigest()[:8]


def default_targets(model_type: str) -> list[str] | None:
    """PEFT's default LoRA targets for a model type (T5: q and v), or None where PEFT has none."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    return list(targets) if targets is not None else None


def _import_peft():
    try:
        import peft
    except ImportError as error:  # installed, but not importable (e.g. against another transformers)
        raise UsageError(f"--recipe {PEFT_LORA}: PEFT is installed but cannot be imported ({error}); reinstall it "
                         f"with: {INSTALL_HINT}") from None
    return peft


def check_baseline(mapping: dict[str, Any], architecture) -> None:
    """The baseline fits the model (its architecture on meta): a kind it trains, and PEFT's targets present."""
    from .model_kind import kind_of_model

    _import_peft()
    kind = kind_of_model(architecture)
    if kind.name == "classifier":
        raise UsageError(f"recipe {PEFT_LORA}: the model is a sequence classifier, whose new head would have to train "
                         "too; the comparison trains LoRA alone, on an encoder-decoder or decoder-only model")
    model_type = architecture.config.model_type
    targets = default_targets(model_type)
    if targets is None:
        raise UsageError(f"recipe {PEFT_LORA}: PEFT has no default LoRA targets for model type {model_type!r}")
    names = {name.rsplit(".", 1)[-1] for name, _ in architecture.named_modules()}
    if not set(targets) & names:
        raise UsageError(f"recipe {PEFT_LORA}: the model has no module named {' or '.join(targets)} (PEFT's default "
                         f"targets for {model_type!r})")


def apply_baseline(model, mapping: dict[str, Any], dropout: float):
    """PEFT's LoRA on `model` as `mapping` says: (the model to train, its trainable-parameter Report).

    The model returned is `model` itself, with PEFT's LoRA layers injected and everything else
    frozen (``get_peft_model(...).get_base_model()``).
    """
    from surgery.trainable_report import Report

    peft = _import_peft()
    base_parameters = sum(p.numel() for p in model.parameters())
    config = peft.LoraConfig(r=mapping["r"], lora_alpha=mapping["lora_alpha"], lora_dropout=dropout,
                             target_modules=default_targets(model.config.model_type), bias="none")
    with warnings.catch_warnings():  # PEFT 0.21 asks transformers 5.2x a question it deprecated; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        wrapped = peft.get_peft_model(model, config, adapter_name=ADAPTER_NAME)
    model = wrapped.get_base_model()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    targets = "+".join(config.target_modules if isinstance(config.target_modules, str) else sorted(config.target_modules))
    report = Report(row_label(mapping, mapping["name"]), {f"LoRA A, B ({targets})": trainable},
                    base_parameters=base_parameters, added_parameters=trainable)
    return model, report


def uses_peft(model) -> bool:
    """Whether `model` carries PEFT's adapters (then its trained tensors are saved in PEFT's format)."""
    return isinstance(getattr(model, "peft_config", None), dict)


def save_trained(model, folder: Path) -> None:
    """The LoRA tensors of `model` as PeftModel.save_pretrained writes them (weights, then the config)."""
    import peft
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = peft.get_peft_model_state_dict(model, adapter_name=ADAPTER_NAME)
    save_file({PEFT_PREFIX + key: tensor.detach().contiguous().cpu() for key, tensor in state.items()},
              str(folder / PEFT_WEIGHTS), metadata={"format": "pt"})
    model.peft_config[ADAPTER_NAME].save_pretrained(str(folder))


def save_trained_atomically(model, folder: Path) -> None:
    """`save_trained` into a staging folder swapped in for `folder` (as surgery.save_adapter does): never half-written."""
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.saving-{os.getpid()}")
    replaced = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    save_trained(model, staging)
    if folder.exists():
        folder.rename(replaced)
    staging.rename(folder)
    shutil.rmtree(replaced, ignore_errors=True)


def load_trained(model, folder: Path) -> None:
    """The LoRA tensors saved in `folder` back into `model`; CheckpointError where they do not fit it."""
    import peft
    from safetensors.torch import load_file

    from surgery.errors import CheckpointError

    path = Path(folder) / PEFT_WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {PEFT_WEIGHTS} (PEFT's LoRA tensors)")
    state = {key.removeprefix(PEFT_PREFIX): tensor for key, tensor in load_file(str(path)).items()}
    expected = peft.get_peft_model_state_dict(model, adapter_name=ADAPTER_NAME)
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise CheckpointError(f"{folder}: its LoRA tensors do not fit this model (another rank, model or PEFT "
                              "version?)")
    result = peft.set_peft_model_state_dict(model, state, adapter_name=ADAPTER_NAME)
    if result.unexpected_keys:
        raise CheckpointError(f"{folder}: tensors this model has no place for: {result.unexpected_keys[:3]}")


def holds_trained(folder: Path) -> bool:
    """Whether `folder` holds a complete save of PEFT's files (the config is written last)."""
    return (Path(folder) / PEFT_WEIGHTS).is_file() and (Path(folder) / PEFT_CONFIG).is_file()
