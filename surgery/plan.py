"""Plan and apply: a recipe becomes a validated plan before the model is touched.

    plan(model, recipe)
      ├─ load_recipe            shape of the recipe (keys, types, sites, layer specs)
      ├─ detect_family          which blocks, leaves, layer norms
      ├─ get_method_class       the registry (surgery.method); bundled methods come in by entry point
      ├─ parse_options          the method's typed, ranged options; method.validate(dims)
      ├─ select_layers          per stack, against the model's depth
      ├─ dry run on a replica   the same execution on a meta-device copy, every module built on
      │                         the meta device (nothing allocated): traces every block, finds every
      │                         site, counts every parameter — errors surface here
      └─ size bound             the added tensors' bytes against the target device's free memory
    apply(model, recipe|plan)
      ├─ build                  trace the blocks, build the modules (allocates; model untouched)
      └─ mutate                 splice, transform, freeze — all or nothing (surgery.transaction):
                                on any failure the model is put back exactly as it was
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from .distributed import is_sharded, unwrap
from .budget import check_fits
from .errors import RecipeError, SurgeryError
from .families import detect_family
from .family import ModelDims, ModelFamily
from .groups import TRAIN_GROUPS, check_train_groups, freeze_all_but
from .quantization import refuse_integer_tensors
from .method import Method, SiteContext, get_method_class
from .options import parse_options
from .recipe import Recipe, load_recipe, select_layers
from .report import Report, count_groups
from .sites import SITE_NAMES, find_sites
from .naming import SPLICED, STATE, is_added
from .splice import splice_block
from .tracing import trace_block
from .trained import adapter_tensors, tensor_layout
from .transaction import all_or_nothing


# Called with the model at the end of every `apply`. `surgery.pretrained` adds the hook that makes
# `model.save_pretrained` write the adapter files too (it cannot be imported here: it saves adapters).
AFTER_APPLY: list[Callable[[nn.Module], None]] = []


class SurgeryState(nn.Module):
    """Owns model-level additions (e.g. Compacter's shared rule) and remembers the plan."""

    def __init__(self, recipe: dict[str, Any]):
        super().__init__()
        self.recipe = recipe
        self.groups: dict[str, list[str]] = {}


@dataclass(frozen=True)
class PlannedSplice:
    stack: str
    layer: int
    site: str
    module_path: str
    parameters: int


@dataclass
class Plan:
    """What `apply` will do: read it, then apply it. Nothing here touched the model."""

    recipe: Recipe
    method: Method
    family: ModelFamily
    dims: ModelDims
    layers: dict[str, list[int]]
    splices: list[PlannedSplice]
    groups: dict[str, int]
    base_parameters: int
    added_parameters: int
    closed_form: list[tuple[str, str, int]] = field(default_factory=list)
    # name → (shape, dtype) of every tensor an adapter checkpoint of this recipe holds
    adapter_layout: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)
    # the added tensors that do not train (e.g. a frozen rule): first-format checkpoints lack them
    frozen_added: tuple[str, ...] = ()

    @property
    def trainable_parameters(self) -> int:
        return sum(self.groups.values())

    @property
    def report(self) -> Report:
        return Report(self.recipe.name, dict(self.groups), self.base_parameters, self.added_parameters, self.closed_form)

    def summary(self) -> str:
        lines = [f"plan for recipe {self.recipe.name!r}: method {self.method.name!r}, family {self.family.name}"]
        for stack, chosen in self.layers.items():
            sites = sorted({s.site for s in self.splices if s.stack == stack})
            lines.append(f"  {stack}: blocks {chosen} at sites {sites or '—'}")
        lines.append(f"  {len(self.splices)} modules spliced in")
        lines.append(str(self.report))
        return "\n".join(lines)

    def to_networkx(self) -> nx.DiGraph:
        """model → stack → block → site → inserted module, with parameter counts on the leaves."""
        graph = nx.DiGraph()
        graph.add_node("model", kind="model", recipe=self.recipe.name)
        for s in self.splices:
            block = s.module_path.rsplit(f".{SPLICED}.", 1)[0]
            graph.add_edge("model", s.stack)
            graph.add_edge(s.stack, block)
            graph.add_edge(block, f"{block}:{s.site}")
            graph.add_node(s.module_path, kind="module", parameters=s.parameters)
            graph.add_edge(f"{block}:{s.site}", s.module_path)
        return graph


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
           layers: dict[str, list[int]], device: torch.device, dtype: torch.dtype) -> _Built:
    """Trace the selected blocks and build every module to insert; reads `model`, changes nothing."""
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
                    splices.append(PlannedSplice(stack, index, site, f"{where}.{SPLICED}.{site}",
                                                 sum(p.numel() for p in module.parameters())))
                if modules:
                    built.append((block, where, graph, modules))
    return _Built(shared, built, splices)


def _mutate(model: nn.Module, built: _Built, recipe: Recipe, method: Method, family: ModelFamily,
            dims: ModelDims, layers: dict[str, list[int]], device: torch.device,
            dtype: torch.dtype) -> dict[str, list[str]]:
    """Insert what `_build` made, run the method's whole-model step, freeze; returns the trained groups."""
    state = SurgeryState(recipe.to_dict())
    if built.shared is not None:
        state.shared = built.shared
    model.add_module(STATE, state)
    for block, where, graph, modules in built.blocks:
        splice_block(block, family, modules, dtype, where, traced=graph)
    with _allocating_on(device):
        method.transform_model(model, family, dims)

    # Trained groups, in report order; a parameter is reported in the first group naming it.
    groups: dict[str, list[str]] = {}
    names = [name for name, _ in model.named_parameters()]
    already_trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    groups["inserted modules"] = [n for n in names if f".{SPLICED}." in n and n in already_trainable]
    groups["shared"] = [n for n in names if n.startswith(f"{STATE}.shared.") and n in already_trainable]
    groups.update(method.trainable_groups(model, family))
    for group in recipe.train:
        members = TRAIN_GROUPS[group](model, family, layers)
        if not members:
            raise RecipeError("train", group, valid=sorted(TRAIN_GROUPS), reason=f"selects no parameter of {type(model).__name__}")
        groups[group.replace("_", " ")] = members
    seen: set[str] = set()
    for group, members in groups.items():
        groups[group] = [n for n in dict.fromkeys(members) if n not in seen]
        seen.update(groups[group])
    groups = {g: m for g, m in groups.items() if m}
    refuse_integer_tensors(model, groups, recipe.train)
    state.groups = groups
    freeze_all_but(model, seen)
    return groups


def _execute(model: nn.Module, recipe: Recipe, method: Method, family: ModelFamily,
             dims: ModelDims, layers: dict[str, list[int]]) -> tuple[list[PlannedSplice], dict[str, list[str]]]:
    """Build, then mutate `model` as the plan says; returns what was spliced and the trained groups.

    Building allocates and may fail with the model unchanged; `apply` runs this under
    `all_or_nothing`, so a failure while mutating is undone too.
    """
    reference = _first_float_parameter(model)
    device, dtype = reference.device, reference.dtype
    built = _build(model, recipe, method, family, dims, layers, device, dtype)
    groups = _mutate(model, built, recipe, method, family, dims, layers, device, dtype)
    return built.splices, groups


def _option_value(method: Method, key: str) -> Any:
    """The value the recipe gave (or the default) for "options.<name>"; the options for "options"."""
    name = key.partition(".")[2]
    return getattr(method.options, name, None) if name else method.options


def _resolve(model: nn.Module, recipe: Recipe) -> tuple[Method, ModelFamily, ModelDims, dict[str, list[int]]]:
    if unwrap(model) is not model or is_sharded(model):
        raise SurgeryError(f"the model is wrapped ({type(model).__name__}): apply surgery to the plain model, then wrap it "
                           "for DDP / FSDP (surgery.shard_model)")
    family = detect_family(model)
    if hasattr(model, STATE):
        raise SurgeryError(
            f"surgery was already applied to this model (recipe {getattr(model, STATE).recipe.get('name', '?')!r}); "
            "apply recipes to a fresh model, or load an adapter checkpoint into one"
        )
    method_class = get_method_class(recipe.method)
    method = method_class(parse_options(method_class.Options, recipe.options))
    dims = family.dims(model)
    method.validate(dims, family)
    check_train_groups(recipe.train)
    if not method.uses_sites and recipe.given_layers() is not None:
        raise RecipeError("layers", recipe.given_layers(), valid="no layers",
                          reason=f"is given, but method {method.name!r} works on the whole model and selects no blocks")
    if method.uses_sites and not recipe.sites:
        raise RecipeError("sites", [], valid=SITE_NAMES, reason=f"is empty, but method {method.name!r} inserts modules at sites")
    if not method.uses_sites and recipe.sites:
        raise RecipeError("sites", list(recipe.sites), valid="no sites", reason=f"is given, but method {method.name!r} inserts nothing at sites")
    for stack in recipe.layers:
        # A stack the recipe only defaulted (`all`) is skipped where the model lacks it.
        if stack not in dims.stack_depths and (stack in recipe.explicit_stacks or stack not in family.stacks):
            raise RecipeError("layers", stack, valid=list(dims.stack_depths),
                              reason=f"is not a stack of this model ({type(model).__name__} has {', '.join(dims.stack_depths)})")
    method.validate_base(model, family)
    layers = {}
    if method.uses_sites:
        layers = {stack: select_layers(f"layers.{stack}", recipe.layers[stack], depth) for stack, depth in dims.stack_depths.items()}
    return method, family, dims, layers


def plan(model: nn.Module, recipe: str | Path | dict | Recipe, *, device: torch.device | str | None = None) -> Plan:
    """Validate `recipe` against `model` and say what applying it would do. The model is untouched.

    The recipe is executed on a meta-device replica (nothing is allocated), then the size of what it
    adds is checked against the free memory of `device` (default: the model's; none for meta).

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
    >>> p = plan(model, "compacter++")
    >>> [(s.stack, s.layer, s.site) for s in p.splices][:2]
    [('encoder', 0, 'after_ffn'), ('encoder', 1, 'after_ffn')]
    >>> p.groups["shared"]  # one 4×4×4 rule for the whole model
    64
    """
    recipe = load_recipe(recipe)
    method, family, dims, layers = _resolve(model, recipe)
    replica = _meta_replica(model)
    size_key = method.size_key(dims)
    try:
        splices, groups = _execute(replica, recipe, method, family, dims, layers)
    except SurgeryError:
        raise
    except (RuntimeError, ValueError, OverflowError, MemoryError) as error:  # e.g. a size torch cannot express
        raise RecipeError(size_key, _option_value(method, size_key),
                          reason=f"makes modules that cannot be built ({type(error).__name__}: {error})") from None
    spliced_sites = {s.site for s in splices}
    for site in recipe.sites:
        if site not in spliced_sites:
            raise RecipeError("sites", site, valid=sorted(spliced_sites) or "a site of a selected block (none selected)",
                              reason="is offered by none of the selected blocks")
    target = torch.device(device) if device is not None else _first_float_parameter(model).device
    check_fits(replica, target, size_key, _option_value(method, size_key))
    parameters = dict(replica.named_parameters())
    counts = {group: sum(parameters[n].numel() for n in members) for group, members in groups.items()}
    base = sum(p.numel() for p in model.parameters())
    added = sum(p.numel() for p in replica.parameters()) - base
    layout = tensor_layout(adapter_tensors(replica))
    trained_only = set(adapter_tensors(replica, include_frozen_added=False))
    result = Plan(recipe, method, family, dims, layers, splices, counts, base, added, adapter_layout=layout,
                  frozen_added=tuple(sorted(set(layout) - trained_only)))
    result.closed_form = method.closed_form(result)
    return result


def apply(model: nn.Module, recipe: str | Path | dict | Recipe | Plan) -> Report:
    """Apply a recipe (or a plan made for this model) in place; returns the trainable-parameter report.

    All or nothing: a recipe that does not fit fails at plan time with the model untouched, and a
    failure during the change itself (an allocation, an interrupt) puts the model back as it was.

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
    >>> report = apply(model, "adapter")
    >>> report.groups["inserted modules"] == 8 * (2 * 128 * 4 + 4 + 128)   # 8 adapters, d = 128/32 = 4
    True
    """
    the_plan = recipe if isinstance(recipe, Plan) else plan(model, recipe)
    method, family, dims, layers = _resolve(model, the_plan.recipe)  # re-checks: e.g. not applied since
    if layers != the_plan.layers or dims != the_plan.dims:
        raise SurgeryError("this plan was made for a model of another shape; make a new plan for this model")
    with all_or_nothing(model):
        _execute(model, the_plan.recipe, the_plan.method, family, dims, layers)
        model._surgery_plan = the_plan
        for callback in AFTER_APPLY:
            callback(model)
    return report(model)


def report(model: nn.Module) -> Report:
    """The trainable-parameter report of a model surgery was applied to."""
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model")
    added = sum(p.numel() for n, p in model.named_parameters() if is_added(n))
    total = sum(p.numel() for p in model.parameters())
    the_plan = getattr(model, "_surgery_plan", None)
    closed = the_plan.closed_form if the_plan is not None else []
    return Report(state.recipe.get("name", "custom"), count_groups(model, state.groups), total - added, added, closed)
