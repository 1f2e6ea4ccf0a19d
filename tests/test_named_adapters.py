"""Two adapters on one frozen base: switching, disabled, removing, training one, the plan, checkpoints.

The reference for "an adapter alone" is a model built independently with only that adapter (the
default name, today's code path) and the same trained values; the reference for "the base" is a
copy of the untouched model. Comparisons are exact (torch.equal) wherever both sides run the same
operations on the same batch.
"""

from __future__ import annotations

import copy

import pytest
import torch

import surgery
from conftest import tiny_model
from surgery import SurgeryError

COMPACTER_PP = {**surgery.load_recipe("compacter++").to_dict(),
                "options": {**surgery.load_recipe("compacter++").options, "n": 2}}   # n = 4 does not divide d = 2
DENSE = {"name": "dense", "method": "adapter", "sites": ["after_self_attention", "after_ffn"],
         "options": {"bottleneck": 8}, "train": ["layer_norms"]}


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Stand-in for training: move every trainable tensor (so 'trained' values differ from init and θ₀)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)


def logits(model: torch.nn.Module, batch: dict, **extra) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                     **extra).logits


def alone(recipe, seed: int) -> torch.nn.Module:
    """An independent model with only this adapter (default name), trained (perturbed)."""
    model = tiny_model()
    torch.manual_seed(100 + seed)
    surgery.apply(model, recipe)
    perturb(model, seed)
    return model.eval()


@pytest.fixture(scope="module")
def built_two(tmp_path_factory):
    """The four models of `two`, built (applied, saved, loaded) once for the module."""
    folder = tmp_path_factory.mktemp("two")
    base = tiny_model()
    a, b = alone(COMPACTER_PP, 1), alone(DENSE, 2)
    model = copy.deepcopy(base)
    surgery.load_adapter(model, surgery.save_adapter(a, folder / "a"))
    surgery.load_adapter(model, surgery.save_adapter(b, folder / "b"), name="rte")
    return model.eval(), a, b, base


@pytest.fixture
def two(built_two):
    """(model with 'default' = compacter++ and 'rte' = dense adapter, alone_a, alone_b, untouched base).

    A deep copy per test of the models built once (tests switch, train and remove adapters); a
    deep copy of a model with adapters is independent and complete (tests/test_stale_references.py)."""
    return copy.deepcopy(built_two)


def test_switching_reproduces_each_adapter_alone_exactly(two, batch):
    model, a, b, base = two
    assert surgery.list_adapters(model) == ["default", "rte"] and surgery.active_adapters(model) == ["rte"]
    assert torch.equal(logits(model, batch), logits(b, batch))
    surgery.set_active(model, "default")
    assert torch.equal(logits(model, batch), logits(a, batch))
    surgery.set_active(model, "rte")
    assert torch.equal(logits(model, batch), logits(b, batch))
    assert not torch.equal(logits(a, batch), logits(b, batch))   # the two adapters do differ


def test_disabled_gives_the_base_exactly_though_the_default_trained_its_layer_norms(two, batch):
    model, a, _, base = two
    trained_norm = model.surgery.adapters.default.base["encoder-final_layer_norm-weight"]
    assert not torch.equal(trained_norm, base.encoder.final_layer_norm.weight)   # its own trained copy
    assert torch.equal(model.encoder.final_layer_norm.weight, base.encoder.final_layer_norm.weight)  # the base: never written
    for active in ("default", "rte", ["default", "rte"]):
        surgery.set_active(model, active)
        with surgery.disabled(model):
            assert torch.equal(logits(model, batch), logits(base, batch))
    assert torch.equal(logits(model, batch), logits(model, batch))


def test_removing_all_gives_back_the_untouched_model(two, batch):
    model, _, b, base = two
    surgery.remove(model, "default")
    assert surgery.list_adapters(model) == ["rte"]
    surgery.set_active(model, "rte")
    assert torch.equal(logits(model, batch), logits(b, batch))       # the other one is unharmed
    surgery.remove(model, "rte")
    state, expected = model.state_dict(), base.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[n], expected[n]) for n in state)
    assert torch.equal(logits(model, batch), logits(base, batch))
    assert not hasattr(model, "surgery") and "generate" not in model.__dict__ and "save_pretrained" not in model.__dict__
    assert [type(m) for m in model.modules()] == [type(m) for m in base.modules()]
    assert all(len(m._forward_hooks) == len(m._forward_pre_hooks) == 0 for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_a_training_step_on_one_leaves_the_other_bit_identical(two, batch):
    model, _, _, _ = two
    model.train()
    surgery.set_active(model, "rte")
    before = {n: t.clone() for n, t in model.state_dict().items()}
    rte = {n for n, _ in model.named_parameters() if ".rte." in n or n.startswith("surgery.adapters.rte.")}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == rte                                           # the optimizer sees only the active one's
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    optimizer.step()
    after = model.state_dict()
    changed = {n for n in after if not torch.equal(after[n], before[n])}
    assert changed and changed <= rte                                 # default's tensors and the base untouched
    assert all(p.grad is None for n, p in model.named_parameters() if n not in rte)


def test_a_list_runs_the_adapters_in_order_at_each_site(two, batch):
    model, _, _, _ = two
    seen: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    block = model.decoder.block[1]
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: seen.append((name, args[0], out)))
             for name, module in (("default", block.spliced["default"]["after_ffn"]), ("rte", block.spliced["rte"]["after_ffn"]))]
    surgery.set_active(model, ["default", "rte"])
    logits(model, batch)
    assert [name for name, _, _ in seen] == ["default", "rte"]
    assert torch.equal(seen[1][1], seen[0][2])                        # rte reads default's output
    seen.clear()
    surgery.set_active(model, ["rte", "default"])
    logits(model, batch)
    assert [name for name, _, _ in seen] == ["rte", "default"] and torch.equal(seen[1][1], seen[0][2])
    for hook in hooks:
        hook.remove()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(".rte." in n for n in trainable) and any(".spliced.default.after_ffn." in n for n in trainable)


def test_mixed_batch_equals_each_example_run_with_its_adapter(two, batch):
    model, a, b, base = two
    names = ["rte", None, "default"]
    with surgery.mixed_batch(model, names):
        mixed = logits(model, batch)
    for row, reference in enumerate((b, base, a)):
        # Same batch, one adapter for every row: the base's computations are the same operations; the
        # adapters see a gathered sub-batch, so float32 rounding may differ in the last bits.
        torch.testing.assert_close(mixed[row], logits(reference, batch)[row], rtol=0, atol=1e-5)
        alone_rows = {k: v[row:row + 1] for k, v in batch.items()}
        torch.testing.assert_close(mixed[row], logits(reference, alone_rows)[0], rtol=0, atol=1e-5)
    assert torch.equal(logits(model, batch), logits(b, batch))        # back to the active adapter after


def test_mixed_batch_generate_with_beams_and_cache_equals_each_adapter_alone(two, batch):
    model, a, b, base = two
    ids, mask = batch["input_ids"], batch["attention_mask"]
    names = ["default", "rte", None]
    for options in ({"num_beams": 3}, {"num_beams": 2, "num_return_sequences": 2}, {"do_sample": False}):
        with torch.no_grad(), surgery.mixed_batch(model, names):
            mixed = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, **options)
            per = [m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, **options) for m in (a, b, base)]
        repeat = options.get("num_return_sequences", 1)
        for example, reference in enumerate(per):
            rows = slice(example * repeat, (example + 1) * repeat)
            assert torch.equal(mixed[rows, : reference.shape[1]], reference[rows])


def test_mixed_batch_names_must_match_the_batch(two, batch):
    model, _, _, _ = two
    with pytest.raises(SurgeryError, match="names an adapter for 2 examples, but a tensor of this forward has 3 rows"):
        with surgery.mixed_batch(model, ["rte", None]):
            logits(model, batch)
    with pytest.raises(SurgeryError, match="no adapter named 'sst2'"):
        with surgery.mixed_batch(model, ["sst2", None, None]):
            logits(model, batch)


def test_the_plan_shows_which_adapters_sit_at_each_site(two):
    model, _, _, _ = two
    plan = surgery.plan(model, COMPACTER_PP, name="cola")
    summary = plan.summary()
    assert "plan for recipe 'compacter++' as adapter 'cola'" in summary
    assert "encoder blocks 0-1 after_ffn: default, rte, cola*" in summary
    assert "encoder blocks 0-1 after_self_attention: rte" in summary
    graph = plan.to_networkx()
    site = "decoder.block.1:after_ffn"
    modules = sorted(graph.successors(site), key=lambda n: graph.nodes[n]["order"])
    assert modules == ["decoder.block.1.spliced.default.after_ffn", "decoder.block.1.spliced.rte.after_ffn",
                       "decoder.block.1.spliced.cola.after_ffn"]
    assert [graph.nodes[n]["planned"] for n in modules] == [False, False, True]
    assert graph.nodes[modules[1]]["parameters"] == sum(p.numel() for p in model.decoder.block[1].spliced["rte"]["after_ffn"].parameters())
    assert not hasattr(model.decoder.block[1].spliced, "cola")                 # the plan changed nothing


def test_every_adapter_gets_the_same_layout_under_its_own_name(batch):
    base = tiny_model()
    model = copy.deepcopy(base)
    surgery.apply(model, COMPACTER_PP)
    keys = set(model.state_dict())
    added = keys - set(base.state_dict())
    assert added and all(".spliced.default.after_ffn." in k or k == "surgery.adapters.default.shared.weight"
                         or k.startswith("surgery.adapters.default.base.") for k in added)
    surgery.apply(model, COMPACTER_PP, name="rte")
    more = set(model.state_dict()) - keys
    assert {k for k in more if ".spliced.rte.after_ffn." in k} and "surgery.adapters.rte.shared.weight" in more
    assert {k for k in more if k.startswith("surgery.adapters.rte.base.")} == {
        f"surgery.adapters.rte.base.{n.replace('.', '-')}" for n, m in base.named_parameters() if "layer_norm" in n}
    assert all(".rte." in k or k.startswith("surgery.adapters.rte.") for k in more)


def test_a_checkpoint_is_the_same_whatever_the_adapters_name(two, tmp_path, batch):
    model, a, b, base = two
    from safetensors.torch import load_file

    folder = surgery.save_adapter(model, tmp_path / "rte", name="rte")
    original = surgery.save_adapter(b, tmp_path / "b-again")
    saved, expected = load_file(folder / "t5_surgery_adapter.safetensors"), load_file(original / "t5_surgery_adapter.safetensors")
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in saved)
    fresh = copy.deepcopy(base)
    surgery.load_adapter(fresh, folder)                                   # loads as the default adapter
    assert torch.equal(logits(fresh, batch), logits(b, batch))
    surgery.load_adapter(fresh, tmp_path / "b-again", name="again")      # and under any other name
    assert torch.equal(logits(fresh, batch), logits(b, batch))
    assert surgery.report(fresh, "again").trainable == surgery.report(b).trainable


def test_save_adapter_without_a_name_takes_the_one_in_effect(two, tmp_path):
    model, _, _, _ = two
    surgery.set_active(model, ["default", "rte"])
    with pytest.raises(surgery.CheckpointError, match="2 adapters .* say which one to save with name="):
        surgery.save_adapter(model, tmp_path / "x")
    surgery.set_active(model, "default")
    record = surgery.checkpoint.read_adapter_config(surgery.save_adapter(model, tmp_path / "x"))
    assert record["recipe"]["name"] == "compacter++" and "adapter_name" not in record


@pytest.mark.parametrize("save", ["transformers", "surgery"])
def test_save_pretrained_keeps_every_adapter(two, tmp_path, batch, save):
    model, a, b, _ = two
    if save == "transformers":   # transformers' own save: the recipes travel in config.json
        model.save_pretrained(tmp_path / "whole")
        assert not (tmp_path / "whole" / "t5_surgery_adapter.json").exists()
    else:                        # plus each adapter's own files
        surgery.save_pretrained(model, tmp_path / "whole")
        assert (tmp_path / "whole" / "adapters" / "rte" / "t5_surgery_adapter.json").is_file()
    again = surgery.from_pretrained(tmp_path / "whole", attn_implementation="eager").eval()
    assert surgery.list_adapters(again) == ["default", "rte"] and surgery.active_adapters(again) == ["rte"]
    assert torch.equal(logits(again, batch), logits(b, batch))
    surgery.set_active(again, "default")
    assert torch.equal(logits(again, batch), logits(a, batch))


def test_reports_count_each_adapters_own_numbers(two):
    model, a, b, _ = two
    assert surgery.report(model, "default").groups == surgery.report(a).groups
    assert surgery.report(model, "rte").groups == surgery.report(b).groups
    assert surgery.report(model, "rte").trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("bad", ["my.task", "after_ffn", "keys", "", "9lives", "a__b"])
def test_bad_adapter_names_are_refused_before_anything_changes(bad):
    model = tiny_model()
    surgery.apply(model, COMPACTER_PP)
    before = set(model.state_dict())
    with pytest.raises(SurgeryError, match=f"adapter name {bad!r} is not valid"):
        surgery.apply(model, DENSE, name=bad)
    assert set(model.state_dict()) == before


def test_a_name_in_use_is_refused_and_the_model_unchanged():
    model = tiny_model()
    surgery.apply(model, COMPACTER_PP)
    surgery.apply(model, DENSE, name="rte")
    with pytest.raises(SurgeryError, match="already has an adapter named 'rte'.*surgery.remove"):
        surgery.apply(model, COMPACTER_PP, name="rte")
    with pytest.raises(SurgeryError, match="already applied.*give another adapter its own name"):
        surgery.apply(model, COMPACTER_PP)
    with pytest.raises(SurgeryError, match="no adapter named 'cola'; its adapters: default, rte"):
        surgery.set_active(model, "cola")


def test_a_failure_while_adding_a_second_adapter_leaves_the_first_as_it_was(monkeypatch, batch):
    import importlib

    plan_module = importlib.import_module("surgery.planner")
    model = tiny_model()
    surgery.apply(model, COMPACTER_PP)
    perturb(model, 3)
    before = (logits(model, batch), {n: t.clone() for n, t in model.state_dict().items()},
              [(n, type(m), len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()])
    from surgery.base_copies import trained_base_names

    owned_before = (trained_base_names(model.surgery), model.surgery.routing.active)
    real = plan_module.freeze_all_but

    def failing(target, names):
        if not any(p.is_meta for p in target.parameters()):
            raise RuntimeError("injected")
        return real(target, names)

    monkeypatch.setattr(plan_module, "freeze_all_but", failing)
    with pytest.raises(RuntimeError, match="injected"):
        surgery.apply(model, DENSE, name="rte")
    monkeypatch.undo()
    assert surgery.list_adapters(model) == ["default"]
    assert (trained_base_names(model.surgery), model.surgery.routing.active) == owned_before
    assert torch.equal(logits(model, batch), before[0])
    assert model.state_dict().keys() == before[1].keys()
    assert [(n, type(m), len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()] == before[2]


@pytest.mark.parametrize("removed", ["rte", "default"])   # each with its own trained layer-norm copies
def test_a_failure_while_removing_leaves_the_adapters_and_their_trained_values(two, monkeypatch, batch, removed):
    import surgery.adapters as adapters_module

    model, a, b, _ = two
    surgery.set_active(model, "default")
    before = ({n: t.clone() for n, t in model.state_dict().items()}, logits(model, batch))

    def failing(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(adapters_module, "install_hooks", failing)
    with pytest.raises(RuntimeError, match="injected"):
        surgery.remove(model, removed)
    monkeypatch.undo()
    assert surgery.list_adapters(model) == ["default", "rte"]
    state = model.state_dict()
    assert state.keys() == before[0].keys() and all(torch.equal(state[n], before[0][n]) for n in state)
    assert torch.equal(logits(model, batch), before[1])
    surgery.set_active(model, "rte")
    assert torch.equal(logits(model, batch), logits(b, batch))
