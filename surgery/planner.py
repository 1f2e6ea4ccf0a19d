"""Plan and apply: a recipe becomes a validated plan before the model is touched.

    plan(model, recipe, name=None)
      ├─ load_recipe            shape of the recipe (keys, types, sites, layer specs)
      ├─ detect_family          which blocks, leaves, layer norms
      ├─ the adapter's name     "default" for the first; another adapter needs its own name, and
      │                         full fine-tuning cannot sit beside any other (it trains the base itself)
      ├─ get_method_class       the registry (surgery.method); bundled methods come in by entry point
      ├─ parse_options          the method's typed, ranged options; method.validate(dims)
      ├─ select_layers          per stack, against the model's depth
      ├─ dry run on a replica   the same execution on a meta-device copy, every module built on
      │                         the meta device (nothing allocated): traces every block, finds every
      │                         site, counts every parameter — errors surface here
      └─ size bound             the added tensors' bytes against the target device's free memory
    apply(model, recipe|plan, name=None)   returns the model (surgery.report(model) gives the report)
      ├─ build                  trace the blocks, build the modules (allocates; model untouched)
      └─ mutate                 splice, transform, own the trained base tensors, freeze — all or nothing
                                (surgery.transaction): on any failure the model is put back exactly as
                                it was; the new adapter is then the one in effect, the only one training
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.fx as fx
from torch import nn

from .distributed import is_sharded, unwrap
from .budget import check_fits, is_allocation_failure
from .errors import RecipeError, SurgeryError
from .family_registry import detect_family
from .family import ModelDims, ModelFamily
from .groups import TRAIN_GROUPS, check_train_groups, freeze_all_but
from .init_check import finite_outputs, refuse_non_finite_init
from .quantization import keep_4bit_layers_differentiable, refuse_integer_tensors
from .method import Method, ModelMethod, SiteContext, SiteMethod, get_method_class
from .options import parse_options, size_key
from .overrides import with_overrides
from .base_copies import install_hooks, take_copies
from .config_record import record_adapters
from .mixed import refuse_adapter_names_argument
from .substitute import remove_hooks
from .plan_record import Plan, PlannedSplice, SiteOccupancy
from .recipe import Recipe, load_recipe, select_layers
from .trainable_report import Report, count_groups
from .routing import adapters_in_block
from .adapter_scope import AdapterScope
from .sites import SITE_NAMES, find_sites
from .naming import (ADAPTERS, DEFAULT_ADAPTER, STATE, adapter_of, check_adapter_name, container_path, is_added,
                     site_module_path)
from .splice import splice_block
from .state import AdapterRecord, SurgeryState, resolve_adapter
from .tracing import trace_block
from .checkpoint_tensors import adapter_tensors, tensor_layout
from .transaction import all_or_nothing

__all__ = ["Plan", "PlannedSplice", "SurgeryState", "apply", "check_can_be_named", "plan", "report"]

ModelT = TypeVar("ModelT", bound=nn.Module)  # apply returns the model it was given, of the same class


def _first_float_parameter(model: nn.Module) -> torch.Tensor:
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter
    raise SurgeryError("the model has no floating-point parameters")


def _meta_replica(model: nn.Module) -> nn.Module:
    """A structural copy of `model` whose tensors live on the meta device.

    Deep-copying with every parameter and buffer pre-mapped to an empty meta tensor copies the
    module tree exactly (custom submodules, hooks, tied weights stay tied) without copying data.
    """
    memo: dict[int, object] = {}
    for parameter in model.parameters():
        memo[id(parameter)] = nn.Parameter(torch.empty_like(parameter, device="meta"), requires_grad=parameter.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(model, memo)


@dataclass
class _Built:
    """What `_build` made for one execution: the shared module and each block's graph and modules."""

    shared: nn.Module | None
    blocks: list[tuple[nn.Module, str, fx.Graph, dict[str, nn.Module]]]
    splices: list[PlannedSplice]


def _allocating_on(device: torch.device):
    """Build modules on the meta device when the target is meta (the dry run): no memory, no random draws."""
    return torch.device("meta") if device.type == "meta" else nullcontext()


def _build(model: nn.Module, recipe: Recipe, method: Method, family: ModelFamily, dims: ModelDims,
           layers: dict[str, list[int]], device: torch.device, dtype: torch.dtype, name: str) -> _Built:
    """Trace the selected blocks and build every module to insert; reads `model`, changes nothing."""
    if not isinstance(method, SiteMethod):
        return _Built(None, [], [])
    with _allocating_on(device):
        shared = method.build_shared(dims)
        if shared is not None:
            shared = shared.to(device=device, dtype=dtype)
        built, splices = [], []
        blocks, block_paths = family.blocks(model), family.block_paths(model)
        for stack, chosen in layers.items():
            for index in chosen:
                block = blocks[stack][index]
                where = f"{block_paths[stack]}.{index}"
                graph = trace_block(block, family, dtype, where=where)
                offered = find_sites(graph, block, family)
                modules = {}
                for site in recipe.sites:
                    if site not in offered:
                        continue
                    module = method.build_site_module(SiteContext(stack, index, site, dims), shared)
                    modules[site] = module.to(device=device, dtype=dtype)
                    splices.append(PlannedSplice(stack, index, site, site_module_path(where, site, name),
                                                 sum(p.numel() for p in module.parameters())))
                if modules:
                    built.append((block, where, graph, modules))
    return _Built(shared, built, splices)


def _scope(model: nn.Module, name: str) -> AdapterScope:
    """The new adapter's scope; ``model.surgery`` and the adapter's container are made here."""
    state = getattr(model, STATE, None)
    if state is None:
        state = SurgeryState()
        state.base_requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
        model.add_module(STATE, state)
        state.model_hooks = [refuse_adapter_names_argument(model)]
    if getattr(state, ADAPTERS, None) is None:
        state.add_module(ADAPTERS, nn.ModuleDict())
    container = nn.Module()
    getattr(state, ADAPTERS).add_module(name, container)
    return AdapterScope(name, container, container_path(name), state.routing)


def _groups(model: nn.Module, recipe: Recipe, method: Method, family: ModelFamily, layers: dict[str, list[int]],
            scope: AdapterScope) -> dict[str, list[str]]:
    """Trained groups in report order, a parameter in the first group naming it; base tensors by their base names."""
    name = scope.name
    groups: dict[str, list[str]] = {}
    names = [n for n, _ in model.named_parameters()]
    already_trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    groups["inserted modules"] = [n for n in names if ".spliced." in n and n in already_trainable and adapter_of(n) == name]
    groups["shared"] = [n for n in names if n.startswith(scope.path("shared.")) and n in already_trainable]
    groups.update(method.trainable_groups(model, family, scope))
    for group in recipe.train:
        members = [n for n in TRAIN_GROUPS[group](model, family, layers) if not is_added(n) or adapter_of(n) == name]
        if not members:
            raise RecipeError("train", group, valid=sorted(TRAIN_GROUPS), reason=f"selects no parameter of {type(model).__name__}")
        groups[group.replace("_", " ")] = members
    seen: set[str] = set()
    for group, members in groups.items():
        groups[group] = [n for n in dict.fromkeys(members) if n not in seen]
        seen.update(groups[group])
    return {g: m for g, m in groups.items() if m}


def _mutate(model: nn.Module, built: _Built, recipe: Recipe, method: Method, family: ModelFamily,
            dims: ModelDims, layers: dict[str, list[int]], device: torch.device,
            dtype: torch.dtype, name: str) -> dict[str, list[str]]:
    """Insert what `_build` made, run the method's whole-model step, own the trained base tensors, freeze;
    returns the trained groups (live names) and makes the new adapter the one in effect."""
    scope = _scope(model, name)
    state: SurgeryState = getattr(model, STATE)
    if built.shared is not None:
        scope.container.shared = built.shared
    for block, where, graph, modules in built.blocks:
        splice_block(block, family, modules, dtype, where, name, traced=graph, routing=state.routing)
    if isinstance(method, ModelMethod):
        with _allocating_on(device):
            method.transform_model(model, family, dims, scope)
    groups = _groups(model, recipe, method, family, layers, scope)
    refuse_integer_tensors(model, groups, recipe.train)
    if not method.trains_base_itself and "all" not in recipe.train:
        # Base tensors it trains (layer norms, the output layer, a head): the adapter trains its own
        # copy of each, and the base tensor stays as it is (surgery.base_copies).
        parameters = dict(model.named_parameters())
        base = [n for members in groups.values() for n in members if not is_added(n)]
        live = dict(zip(base, take_copies(scope.container, scope.container_path, base, parameters)))
        groups = {group: [live.get(n, n) for n in members] for group, members in groups.items()}
    for module_name, module in model.named_modules():
        if is_added(module_name):  # what was added is in the model's mode (eval stays eval: caches, dropout)
            module.training = model.training
    remove_hooks(state.engine_hooks)
    state.engine_hooks = install_hooks(model, state)
    state.records[name] = AdapterRecord(name, recipe.to_dict(), groups, method.name,
                                        hooks=tuple(scope.handles))
    freeze_all_but(model, {n for members in groups.values() for n in members})
    state.routing.active = (name,)
    state.routing.changed()
    return groups


def _execute(model: nn.Module, recipe: Recipe, method: Method, family: ModelFamily, dims: ModelDims,
             layers: dict[str, list[int]], name: str) -> tuple[list[PlannedSplice], dict[str, list[str]]]:
    """Build, then mutate `model` as the plan says; returns what was spliced and the trained groups.

    Building allocates and may fail with the model unchanged; `apply` runs this under
    `all_or_nothing`, so a failure while mutating is undone too.
    """
    reference = _first_float_parameter(model)
    device, dtype = reference.device, reference.dtype
    built = _build(model, recipe, method, family, dims, layers, device, dtype, name)
    groups = _mutate(model, built, recipe, method, family, dims, layers, device, dtype, name)
    return built.splices, groups


def _option_value(method: Method, key: str) -> Any:
    """The value the recipe gave (or the default) for "options.<name>"; the options for "options"."""
    name = key.partition(".")[2]
    return getattr(method.options, name, None) if name else method.options


def check_can_be_named(recipe: str | Path | dict | Recipe) -> None:
    """Raise a RecipeError if `recipe` cannot be applied as a named adapter (``apply(..., name=...)``).

    Full fine-tuning (and any recipe with ``train: [all]``) trains the base weights themselves: it
    has no tensors of its own to name, switch off or keep beside other adapters, so it can only be
    the model's one unnamed adapter. A runner calls this before training (e.g. for ``--one-base``).

    >>> check_can_be_named("compacter++")
    >>> check_can_be_named("full-finetune")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surgery.errors.RecipeError: recipe key 'method': 'full-finetune' cannot be a named adapter: it trains the base weights themselves...
    """
    recipe = load_recipe(recipe)
    if get_method_class(recipe.method).trains_base_itself or "all" in recipe.train:
        key, value = ("train", "all") if "all" in recipe.train else ("method", recipe.method)
        raise RecipeError(key, value, valid="a method that leaves the base weights frozen", reason=(
            "cannot be a named adapter: it trains the base weights themselves, so it has no tensors of its own to "
            "name, switch or keep beside other adapters; apply it without name= as the model's only adapter"))


def _check_name(model: nn.Module, recipe: Recipe, method: Method, name: str) -> None:
    """The new adapter can sit beside the model's others under `name`."""
    state = getattr(model, STATE, None)
    records = state.records if state is not None else {}
    if name in records:
        if name == DEFAULT_ADAPTER:
            raise SurgeryError(
                f"surgery was already applied to this model (adapter {name!r}, recipe {records[name].recipe.get('name', '?')!r}); "
                "give another adapter its own name (surgery.apply(model, recipe, name='...')), or apply recipes to a "
                "fresh model, or load an adapter checkpoint into one")
        raise SurgeryError(f"the model already has an adapter named {name!r} (recipe {records[name].recipe.get('name', '?')!r}); "
                           f"remove it first (surgery.remove(model, {name!r})) or choose another name")
    exclusive = [r for r in records.values() if get_method_class(r.method).trains_base_itself or "all" in r.recipe.get("train", ())]
    if exclusive:
        raise SurgeryError(f"adapter {exclusive[0].name!r} (recipe {exclusive[0].recipe.get('name', '?')!r}) trains the base "
                           "weights themselves, which every other adapter would read: no adapter can sit beside it")
    if records and (method.trains_base_itself or "all" in recipe.train):
        key, value = ("method", method.name) if method.trains_base_itself else ("train", "all")
        raise RecipeError(key, value, valid="a method that leaves the base weights frozen", reason=(
            f"trains every base weight, which the model's other adapters ({', '.join(records)}) read; "
            "apply it to a model without adapters"))
    if name != DEFAULT_ADAPTER:
        check_can_be_named(recipe)


def _resolve(model: nn.Module, recipe: Recipe, name: str) -> tuple[Method, ModelFamily, ModelDims, dict[str, list[int]]]:
    if unwrap(model) is not model or is_sharded(model):
        raise SurgeryError(f"the model is wrapped ({type(model).__name__}): apply surgery to the plain model, then wrap it "
                           "for DDP / FSDP (surgery.shard_model)")
    family = detect_family(model)
    method_class = get_method_class(recipe.method)
    method = method_class(parse_options(method_class.Options, recipe.options))
    _check_name(model, recipe, method, name)
    dims = family.dims(model)
    method.validate(dims, family)
    check_train_groups(recipe.train)
    at_sites = isinstance(method, SiteMethod)
    if not at_sites and recipe.given_layers() is not None:
        raise RecipeError("layers", recipe.given_layers(), valid="no layers",
                          reason=f"is given, but method {method.name!r} works on the whole model and selects no blocks")
    if at_sites and not recipe.sites:
        raise RecipeError("sites", [], valid=SITE_NAMES, reason=f"is empty, but method {method.name!r} inserts modules at sites")
    if not at_sites and recipe.sites:
        raise RecipeError("sites", list(recipe.sites), valid="no sites", reason=f"is given, but method {method.name!r} inserts nothing at sites")
    for stack in recipe.layers:
        # A stack the recipe only defaulted (`all`) is skipped where the model lacks it (T5EncoderModel, Llama, BERT).
        if stack not in dims.stack_depths and stack in recipe.explicit_stacks:
            raise RecipeError("layers", stack, valid=list(dims.stack_depths),
                              reason=f"is not a stack of this model ({type(model).__name__} has {', '.join(dims.stack_depths)})")
    method.validate_base(model, family)
    keep_4bit_layers_differentiable(model, method.name)
    layers = {}
    if at_sites:
        layers = {stack: select_layers(f"layers.{stack}", recipe.layers[stack], depth) for stack, depth in dims.stack_depths.items()}
    return method, family, dims, layers


def _occupancy(replica: nn.Module, family: ModelFamily) -> list[SiteOccupancy]:
    """Every spliced site of `replica` and the adapters there, in model order."""
    modules = dict(replica.named_modules())
    places = []
    paths = family.block_paths(replica)
    for stack, blocks in family.blocks(replica).items():
        found = [(index, adapters_in_block(block)) for index, block in enumerate(blocks)]
        for site in SITE_NAMES:  # by site, then block: runs of blocks with the same adapters read as one line
            for index, adapters in ((i, a[site]) for i, a in found if site in a):
                where = f"{paths[stack]}.{index}"
                module_paths = tuple(site_module_path(where, site, a) for a in adapters)
                counts = tuple(sum(p.numel() for p in modules[m].parameters()) for m in module_paths)
                places.append(SiteOccupancy(stack, where, site, tuple(adapters), module_paths, counts))
    return places


def plan(model: nn.Module, recipe: str | Path | dict | Recipe, *, device: torch.device | str | None = None,
         name: str | None = None, overrides: dict[str, Any] | None = None) -> Plan:
    """Validate `recipe` against `model` and say what applying it would do. The model is untouched.

    The recipe is executed on a meta-device replica (nothing is allocated), then the size of what it
    adds is checked against the free memory of `device` (default: the model's; none for meta).
    `name`: the adapter's name (default ``"default"``; a model with adapters needs a new name).
    `overrides`: dotted recipe keys and their values, e.g. ``{"options.n": 8}`` (`surgery.overrides`).

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
    >>> p = plan(model, "compacter++")
    >>> [(s.stack, s.layer, s.site) for s in p.splices][:2]
    [('encoder', 0, 'after_ffn'), ('encoder', 1, 'after_ffn')]
    >>> p.groups["shared"]  # one 4×4×4 rule for the whole model
    64
    >>> plan(model, "compacter++", overrides={"options.n": 2}).groups["shared"]   # 2×2×2
    8
    >>> _ = apply(model, p)
    >>> print(plan(model, "adapter", name="rte").occupancy_lines()[2])   # the new adapter runs after the first
        encoder blocks 0-1 after_ffn: default, rte*
    """
    recipe = load_recipe(with_overrides(recipe, overrides))
    name = DEFAULT_ADAPTER if name is None else check_adapter_name(name, SITE_NAMES)
    method, family, dims, layers = _resolve(model, recipe, name)
    replica = _meta_replica(model)
    size_option = size_key(method.options)
    before = {n for n, _ in replica.named_parameters()} | {n for n, _ in replica.named_buffers()}
    try:
        splices, groups = _execute(replica, recipe, method, family, dims, layers, name)
    except Exception as error:
        if not is_allocation_failure(error):
            raise  # a method's own bug (or a SurgeryError) propagates as what it is
        raise RecipeError(size_option, _option_value(method, size_option),
                          reason=f"makes modules that cannot be built ({type(error).__name__}: {error})") from None
    spliced_sites = {s.site for s in splices}
    for site in recipe.sites:
        if site not in spliced_sites:
            raise RecipeError("sites", site, valid=sorted(spliced_sites) or "a site of a selected block (none selected)",
                              reason="is offered by none of the selected blocks")
    target = torch.device(device) if device is not None else _first_float_parameter(model).device
    check_fits(replica, target, size_option, _option_value(method, size_option), only=lambda n: n not in before)
    parameters = dict(replica.named_parameters())
    counts = {group: sum(parameters[n].numel() for n in members) for group, members in groups.items()}
    base = sum(p.numel() for n, p in model.named_parameters() if not is_added(n))
    added = sum(p.numel() for n, p in replica.named_parameters() if n not in before and is_added(n))
    layout = tensor_layout(adapter_tensors(replica, name))
    trained_only = set(adapter_tensors(replica, name, include_frozen_added=False))
    state = getattr(replica, STATE)
    whole = {r.name: r.method for r in state.records.values() if issubclass(get_method_class(r.method), ModelMethod)}
    result = Plan(recipe, method, family, dims, layers, splices, counts, base, added, adapter_layout=layout,
                  frozen_added=tuple(sorted(set(layout) - trained_only)), adapter=name,
                  occupancy=_occupancy(replica, family), whole_model=whole)
    result.closed_form = method.closed_form(result)
    return result


def apply(model: ModelT, recipe: str | Path | dict | Recipe | Plan, *, name: str | None = None,
          overrides: dict[str, Any] | None = None) -> ModelT:
    """Apply a recipe (or a plan made for this model) in place; returns the model, changed.

    ``model = surgery.apply(model, recipe)`` and ``surgery.apply(model, recipe)`` do the same;
    `surgery.report(model)` gives the trainable-parameter report. `overrides` as for `plan`.

    All or nothing: a recipe that does not fit fails at plan time with the model untouched, and a
    failure during the change itself (an allocation, an interrupt) puts the model back as it was.
    `name`: the adapter's name; the first is ``"default"``, every further one needs its own
    (``surgery.apply(model, "compacter++", name="rte")``). The new adapter is then the one in effect
    and the only one whose tensors train (`surgery.set_active` switches).

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
    >>> apply(model, "adapter") is model
    True
    >>> report(model).groups["inserted modules"] == 8 * (2 * 128 * 4 + 4 + 128)   # 8 adapters, d = 128/32 = 4
    True
    >>> report(apply(model, "bitfit", name="sst2")).groups["biases"] > 0
    True
    """
    if isinstance(recipe, Plan):
        the_plan = recipe
        if overrides:
            raise SurgeryError("overrides go to surgery.plan, which made this plan; make the plan with them")
        if name is not None and name != the_plan.adapter:
            raise SurgeryError(f"this plan was made for adapter {the_plan.adapter!r}, not {name!r}; make a plan with name={name!r}")
    else:
        the_plan = plan(model, recipe, name=name, overrides=overrides)
    name = the_plan.adapter
    method, family, dims, layers = _resolve(model, the_plan.recipe, name)  # re-checks: e.g. not applied since
    if layers != the_plan.layers or dims != the_plan.dims:
        raise SurgeryError("this plan was made for a model of another shape; make a new plan for this model")
    base_was_finite = finite_outputs(model)
    with all_or_nothing(model):
        _execute(model, the_plan.recipe, the_plan.method, family, dims, layers, name)
        refuse_non_finite_init(model, base_was_finite, the_plan.method.options)
        state = getattr(model, STATE)
        state.records[name].plan = the_plan
    record_adapters(model)
    return model


def report(model: nn.Module, name: str | None = None) -> Report:
    """The trainable-parameter report of one adapter (`name`; default: the one in effect, or the only one).

    The counts are the adapter's trained numbers, whether or not it is in effect now.
    """
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model")
    name = resolve_adapter(model, name, action="report")
    record = state.record(name)
    added = sum(p.numel() for n, p in model.named_parameters() if is_added(n) and adapter_of(n) == name)
    base = sum(p.numel() for n, p in model.named_parameters() if not is_added(n))
    closed = record.plan.closed_form if record.plan is not None else []
    return Report(record.recipe.get("name", "custom"), count_groups(model, record.groups), base, added, closed,
                  adapter=None if name == DEFAULT_ADAPTER else name)
