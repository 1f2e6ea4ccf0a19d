"""The bottleneck adapter x + up(act(down(x))) with a pluggable projection.

One method serves the paper's whole adapter family; the recipe picks the projection:

==============  =============================================  ==========================
projection      each of down (k→d) and up (d→k)                 paper method
==============  =============================================  ==========================
``dense``       nn.Linear, N(0, 0.01) weights, zero bias       Adapter, Pfeiffer, AdapterDrop
``lowrank``     U Vᵀ of rank r plus bias                        Adapter-LowRank
``phm``         Σᵢ Aᵢ ⊗ Bᵢ, own rule per layer (n)             PHM-Adapter
``phm`` +       Bᵢ = sᵢ tᵢᵀ (rank r), one rule shared by the   Compacter, Compacter++
``factorized``  whole model
==============  =============================================  ==========================

>>> import torch
>>> adapter = BottleneckAdapter(nn.Linear(8, 2), nn.Linear(2, 8), "gelu_new")
>>> x = torch.randn(3, 8)
>>> torch.equal(adapter(x), x + adapter.up(adapter.activation(adapter.down(x))))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from transformers.activations import ACT2FN

from surgery.family import ModelDims, ModelFamily
from surgery.method import SiteContext, SiteMethod, register_method
from surgery.options import SIZE, Annotated, Range, require

from .fused_adapter import dense_weight, fused_bottleneck
from .inits import DENSE_WEIGHT_STD, GLOROT_GAIN, rule_init_std
from .lowrank import LowRankLinear
from .phm import LowRankPHMLinear, PHMLinear, PHMRule, valid_phm_n

# Activations with a faster kernel for exactly the same function: the authors' "gelu_new" is
# the tanh-approximated GELU, which torch computes in one kernel instead of seven ops.
_SAME_FUNCTION_FASTER_KERNEL = {"gelu_new": "gelu_pytorch_tanh"}

# From this many input elements (tokens × hidden size) up the adapter runs as one fused autograd
# Function (methods/fused_adapter.py); below it the plain modules are as fast or faster.
# `python benchmarks/bench_fused_adapter.py` (CPU, fp32, one thread), fused ÷ plain fwd+bwd:
# 4096 tokens 0.80-0.94 for dense and LPHM at T5-small and T5-base shapes; 1024 tokens 0.86-0.98
# for dense but 1.01-1.03 for LPHM (its factored path already avoids passes); ≤ 256 tokens 1.05-1.6.
FUSE_MIN_ELEMENTS = 4096 * 512


class BottleneckAdapter(nn.Module):
    """x + up(act(down(x))): the residual keeps the sublayer's output when `up` outputs zero."""

    def __init__(self, down: nn.Module, up: nn.Module, activation: str, fuse: bool = True):
        super().__init__()
        self.down, self.up = down, up
        self.activation = ACT2FN[_SAME_FUNCTION_FASTER_KERNEL.get(activation, activation)]
        self.activation_name = activation
        self.fuse = fuse

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:  # (B, T, k) → (B, T, k)
        if self._takes_fused_path(hidden_states):
            down, up = self.down, self.up
            return fused_bottleneck(hidden_states, dense_weight(down), down.bias, dense_weight(up), up.bias,
                                    self.activation)
        return hidden_states + self.up(self.activation(self.down(hidden_states)))

    def _takes_fused_path(self, hidden_states: torch.Tensor) -> bool:
        # torch.compile and autocast do their own fusing and casting on the plain modules.
        return (self.fuse and hidden_states.numel() >= FUSE_MIN_ELEMENTS
                and not torch.compiler.is_compiling()
                and not torch.is_autocast_enabled(hidden_states.device.type))

    def extra_repr(self) -> str:
        return f"activation={self.activation_name}, fuse={self.fuse}"


POSITIVE = Range(minimum=1, valid="a positive integer")
AT_LEAST_ONE = Range(minimum=1, valid="an integer ≥ 1")
NON_NEGATIVE = Range(minimum=0, valid="a finite number ≥ 0")


@dataclass
class AdapterOptions:
    """Options of the `adapter` method; see the module docstring for the projections.

    The initialisation defaults are the authors' runs (sources in `methods.inits`): dense N(0, 0.01²);
    Glorot-uniform with gain √2 for LPHM sᵢ, tᵢ, PHM Bᵢ and low-rank factors; rule N(0, 1e-4²) when
    shared (Compacter), N(0, 0.01²) when each layer owns it (PHM-Adapter).
    """

    reduction_factor: Annotated[int, POSITIVE, SIZE] = 32   # bottleneck d = hidden size / reduction_factor (24 on T5-base; paper §5)
    bottleneck: Annotated[int, POSITIVE, SIZE] | None = None  # set d directly instead (at most the hidden size)
    activation: str = "gelu_new"        # the authors' tanh-approximated GELU (configs/*.json non_linearity)
    projection: Literal["dense", "lowrank", "phm"] = "dense"
    dense_init_std: Annotated[float, NON_NEGATIVE] = DENSE_WEIGHT_STD  # dense: N(0, std²) weights, zero bias (authors' _init_weights)
    rank: Annotated[int, AT_LEAST_ONE, SIZE] = 1  # lowrank, and phm with factorized=True
    n: Annotated[int, AT_LEAST_ONE, SIZE] = 4     # phm: number of Kronecker summands
    factorized: bool = False            # phm: Bᵢ = sᵢ tᵢᵀ (LPHM, Compacter) instead of a full Bᵢ
    shared_rule: bool = False           # phm: one rule {Aᵢ} for every layer of the model
    learn_rule: bool = True             # phm: train the rule (False keeps its random init)
    # phm: rule ~ N(0, std²); None: 1e-4 shared, 0.01 own (methods.inits)
    rule_init_std: Annotated[float, Range(minimum=0, valid="a finite number ≥ 0, or null for the authors' default")] | None = None
    factor_init: Literal["glorot-uniform", "normal"] = "glorot-uniform"
    factor_init_gain: Annotated[float, Range(above=0, valid="a finite number > 0")] = GLOROT_GAIN  # glorot-uniform gain: √2, the authors' hypercomplex/inits.py
    compute: Literal["auto", "dense", "factored"] = "auto"  # phm: how W·x is evaluated
    fuse: bool = True                   # large inputs: the whole adapter as one autograd Function


@register_method
class AdapterMethod(SiteMethod):
    name = "adapter"
    Options = AdapterOptions
    options: AdapterOptions

    def bottleneck_size(self, dims: ModelDims) -> int:
        if self.options.bottleneck is not None:
            return self.options.bottleneck
        return dims.hidden_size // self.options.reduction_factor

    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        # Types and ranges of each option are checked by parse_options (the Annotated ranges
        # above); here: what depends on the model.
        o = self.options
        k = dims.hidden_size
        if o.bottleneck is not None:
            require(o.bottleneck <= k, "options.bottleneck", o.bottleneck, f"an integer in [1, {k}]",
                    reason=f"is larger than the hidden size {k} (a bottleneck adapter narrows the hidden states)")
        d = self.bottleneck_size(dims)
        require(d > 0, "options.reduction_factor", o.reduction_factor, f"at most the hidden size {k}",
                reason=f"gives a bottleneck of {d}")
        require(o.activation in ACT2FN, "options.activation", o.activation, sorted(ACT2FN))
        if o.projection == "phm":
            valid = valid_phm_n(k, d)
            for size_name, size in (("hidden size", k), ("bottleneck", d)):
                require(size % o.n == 0, "options.n", o.n, valid, reason=f"does not divide the {size_name} {size}")
        if o.projection == "lowrank":
            require(o.rank <= min(k, d), "options.rank", o.rank, f"at most min(hidden size, bottleneck) = {min(k, d)}")

    def build_shared(self, dims: ModelDims) -> nn.Module | None:
        o = self.options
        if o.projection == "phm" and o.shared_rule:
            return PHMRule(o.n, init_std=rule_init_std(shared=True, given=o.rule_init_std), learn=o.learn_rule)
        return None

    def build_site_module(self, site: SiteContext, shared: nn.Module | None) -> nn.Module:
        k, d = site.dims.hidden_size, self.bottleneck_size(site.dims)
        return BottleneckAdapter(self._projection(k, d, shared), self._projection(d, k, shared), self.options.activation,
                                 fuse=self.options.fuse)

    def _projection(self, in_features: int, out_features: int, shared: nn.Module | None) -> nn.Module:
        o = self.options
        if o.projection == "dense":
            layer = nn.Linear(in_features, out_features)
            nn.init.normal_(layer.weight, std=o.dense_init_std)
            nn.init.zeros_(layer.bias)
            return layer
        if o.projection == "lowrank":
            return LowRankLinear(in_features, out_features, rank=o.rank, init=o.factor_init, init_gain=o.factor_init_gain)
        # A shared rule carries its own `learn` flag (build_shared); an owned rule takes it here.
        common = dict(rule=shared, rule_init_std=rule_init_std(shared=False, given=o.rule_init_std),
                      learn_rule=o.learn_rule if shared is None else True, factor_init=o.factor_init,
                      factor_init_gain=o.factor_init_gain, compute=o.compute)
        if o.factorized:
            return LowRankPHMLinear(in_features, out_features, o.n, rank=o.rank, **common)
        return PHMLinear(in_features, out_features, o.n, **common)

    def closed_form(self, plan) -> list[tuple[str, str, int]]:
        """The paper's counts from the formulas alone (A = number of adapters the plan inserts).

        With adapters after self-attention and FFN of L blocks, A = 2L: Compacter's factors are
        then 4L(k+d) and PHM-Adapter's projections 4L(kd/n + n³).
        """
        o, k = self.options, plan.dims.hidden_size
        d, A = self.bottleneck_size(plan.dims), len(plan.splices)
        where = f"A={A}, k={k}, d={d}"
        lines: list[tuple[str, str, int]]
        if o.projection == "dense":
            lines = [("projections (down, up)", f"2·A·k·d; {where}", 2 * A * k * d)]
        elif o.projection == "lowrank":
            lines = [("low-rank factors", f"2·A·r(k+d); {where}, r={o.rank}", 2 * A * o.rank * (k + d))]
        elif o.factorized:
            lines = [("LPHM factors sᵢ, tᵢ", f"2·A·r(k+d); {where}, r={o.rank}", 2 * A * o.rank * (k + d))]
            if o.shared_rule:
                lines.append(("shared rule {Aᵢ}", f"n³; n={o.n}", o.n**3 if o.learn_rule else 0))
            else:
                lines.append(("per-layer rules {Aᵢ}", f"2·A·n³; n={o.n}", 2 * A * o.n**3 if o.learn_rule else 0))
        else:
            lines = [("PHM Bᵢ", f"2·A·kd/n; {where}, n={o.n}", 2 * A * k * d // o.n)]
            if o.shared_rule:
                lines.append(("shared rule {Aᵢ}", f"n³; n={o.n}", o.n**3 if o.learn_rule else 0))
            else:
                lines.append(("per-layer rules {Aᵢ}", f"2·A·n³; n={o.n}", 2 * A * o.n**3 if o.learn_rule else 0))
        lines.append(("adapter biases", "A·(d+k)", A * (d + k)))
        return lines

    def fold_refusal(self) -> str | None:
        o = self.options
        return (f"method 'adapter' computes x + up({o.activation}(down(x))) at each site: the activation between its "
                "projections is not linear, so no weight of T5 can absorb it (keep it unfolded: it runs beside the "
                "base at every site)")
