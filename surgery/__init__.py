"""Model surgery over torch.fx graphs for parameter-efficient fine-tuning of T5.

>>> import surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
>>> print(surgery.plan(model, "compacter++").summary().splitlines()[0])
plan for recipe 'compacter++': method 'adapter', family t5
>>> model = surgery.apply(model, "compacter++.yaml")          # changed in place, and returned
>>> surgery.report(model).trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
True
"""

from .errors import CheckpointError, RecipeError, SurgeryError, TraceError
from .planner import Plan, apply, check_can_be_named, plan, report
from .state import plan_of
from .recipe import Recipe, bundled_recipes, load_recipe
from .trainable_report import Report
from .sites import SITE_NAMES
from .adapters import active_adapters, disabled, list_adapters, remove, set_active
from .checkpoint import load_adapter, save_adapter
from .folding import fold
from .inspect import list_sites
from .mixed import mixed_batch
from .naming import DEFAULT_ADAPTER
from .pretrained import from_pretrained, push_to_hub, save_pretrained
from .sharding import shard_model

__all__ = [
    "CheckpointError", "DEFAULT_ADAPTER", "Plan", "Recipe", "RecipeError", "Report", "SITE_NAMES", "SurgeryError",
    "TraceError", "active_adapters", "apply", "bundled_recipes", "check_can_be_named", "disabled", "fold", "from_pretrained", "list_adapters",
    "list_sites", "load_adapter", "load_recipe", "mixed_batch", "plan", "plan_of", "push_to_hub", "remove", "report",
    "save_adapter", "save_pretrained", "set_active", "shard_model",
]
