"""compacter++-drop: adapters only in the later blocks, and the `adapted_layer_norms` group that
keeps the skipped blocks' layer norms frozen, so backpropagation stops at the first adapted block."""

from __future__ import annotations

import torch

import surgery
from conftest import tiny_model
from surgery.naming import canonical_name
from surgery.recipe import load_recipe


def drop_recipe(skip: int) -> dict:
    recipe = dict(load_recipe("compacter++-drop").source)
    recipe["layers"] = {"encoder": {"skip_first": skip}, "decoder": {"skip_first": skip}}
    return recipe


def test_bundled_recipe_skips_adapterdrops_five_blocks_and_trains_only_adapted_layer_norms():
    recipe = load_recipe("compacter++-drop")
    assert recipe.layers == {"encoder": {"skip_first": 5}, "decoder": {"skip_first": 5}}
    assert recipe.layers == load_recipe("adapterdrop").layers          # AdapterDrop's skipped blocks
    assert recipe.options == load_recipe("compacter++").options        # Compacter++'s adapter
    assert recipe.sites == ("after_ffn",) and recipe.train == ("adapted_layer_norms",)


def test_the_group_is_the_selected_blocks_layer_norms_and_the_final_ones():
    model = tiny_model(num_layers=3, num_decoder_layers=3, d_model=128)  # bottleneck 4: n = 4 divides it
    report = surgery.report(surgery.apply(model, drop_recipe(skip=2)))
    # The adapter trains its own copies (surgery.adapters.default.base.<name>); the base's stay frozen.
    trained = {canonical_name(name, "default") for name, p in model.named_parameters()
               if p.requires_grad and name.startswith("surgery.adapters.default.base.")}
    assert not any(p.requires_grad for name, p in model.named_parameters() if not surgery.naming.is_added(name))
    expected = {"encoder.block.2.layer.0.layer_norm.weight", "encoder.block.2.layer.1.layer_norm.weight",
                "decoder.block.2.layer.0.layer_norm.weight", "decoder.block.2.layer.1.layer_norm.weight",
                "decoder.block.2.layer.2.layer_norm.weight",
                "encoder.final_layer_norm.weight", "decoder.final_layer_norm.weight"}
    assert trained == expected
    assert report.groups["adapted layer norms"] == 7 * model.config.d_model


def test_backpropagation_stops_at_the_first_adapted_block():
    model = tiny_model(num_layers=3, num_decoder_layers=3, d_model=128)  # bottleneck 4: n = 4 divides it
    surgery.apply(model, drop_recipe(skip=2))
    needs_grad = {}

    def record(name):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            needs_grad[name] = hidden.requires_grad
        return hook

    for stack in ("encoder", "decoder"):
        for index, block in enumerate(getattr(model, stack).block):
            block.register_forward_hook(record(f"{stack}.{index}"))
    model.train()
    ids = torch.randint(3, 90, (2, 6))
    loss = model(input_ids=ids, labels=ids).loss
    # Below the first adapted block nothing trains, so autograd records nothing there.
    assert not needs_grad["encoder.0"] and not needs_grad["encoder.1"] and needs_grad["encoder.2"]
    loss.backward()
    first_blocks = [p for stack in ("encoder", "decoder") for i in (0, 1) for p in getattr(model, stack).block[i].parameters()]
    assert all(p.grad is None for p in first_blocks)


def test_t5_base_count_is_compacter_plus_plus_on_seven_blocks_per_stack():
    from conftest import t5_base_on_meta

    plan = surgery.plan(t5_base_on_meta(), "compacter++-drop")
    k, d, adapters = 768, 24, 2 * 7                      # blocks 5..11 of each stack
    layer_norms = (7 * 2 + 7 * 3 + 2) * k                # 2 per encoder block, 3 per decoder block, 2 final
    assert plan.trainable_parameters == 2 * adapters * (k + d) + 4**3 + adapters * (d + k) + layer_norms
    assert round(100 * plan.trainable_parameters / plan.base_parameters, 3) == 0.028
