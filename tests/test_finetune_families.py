"""runners.finetune on models beyond T5: a decoder-only Llama and GPT-2 (causal LM, the loss on the target only,
scored by generation) and an encoder-only BERT (sequence classifier, its head trained); refusals in one line.

Every model is a tiny random-init folder made here with the embedded tokenizer (runners/embedded).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers as tf
from safetensors.torch import load_file

import surgery
from conftest import one_line_exit_2
from runners import finetune, predict
from runners.finetune.model import build_model
from runners.finetune.model_kind import CAUSAL, CLASSIFIER, SEQ2SEQ, kind_of_model
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult
from runners.tasks import get_task
from runners.tasks.data import embedded_tokenizer

TOKENIZER = embedded_tokenizer()
VOCAB = len(TOKENIZER)
# hidden 128: Compacter's bottleneck 128 / 32 = 4 is divisible by its n = 4
CONFIGS = {
    "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=VOCAB, max_position_embeddings=256, pad_token_id=0, eos_token_id=1, bos_token_id=None)),
    "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=128, n_layer=1, n_head=4, vocab_size=VOCAB, n_positions=256,
                                                      pad_token_id=0, eos_token_id=1, bos_token_id=1)),
    "bert": lambda: tf.BertForMaskedLM(tf.BertConfig(
        hidden_size=128, num_attention_heads=4, intermediate_size=256, num_hidden_layers=2, vocab_size=VOCAB,
        max_position_embeddings=256, pad_token_id=0)),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A save_pretrained folder (weights + the embedded tokenizer) per family, and one of an undeclared family."""
    root = tmp_path_factory.mktemp("families")
    made = {}
    for family, make in CONFIGS.items():
        torch.manual_seed(0)
        made[family] = root / family
        make().save_pretrained(made[family])
        TOKENIZER.save_pretrained(made[family])
    made["opt"] = root / "opt"  # a transformers model no family declares
    tf.OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
                 vocab_size=VOCAB).save_pretrained(made["opt"])
    TOKENIZER.save_pretrained(made["opt"])
    return made


def run(folder: Path, out: Path, *extra: str, task: str = "embedded-sst2") -> int:
    return finetune.main(["--model", str(folder), "--task", task, "--batch-size", "16", "--warmup-steps", "0",
                          "--eval-batch-size", "100",
                          "--output-dir", str(out), "--no-progress", "--threads", "1", *extra])


# ---- the kind is read off the family --------------------------------------------------------------------------

def test_the_kind_follows_the_family_and_the_class_follows_the_kind(folders):
    task = get_task("embedded-mnli")
    built = {family: build_model(str(folders[family]), TOKENIZER, seed=0, task=task) for family in CONFIGS}
    assert {family: type(model).__name__ for family, model in built.items()} == {
        "llama": "LlamaForCausalLM", "gpt2": "GPT2LMHeadModel", "bert": "BertForSequenceClassification"}
    assert [kind_of_model(built[f]) for f in CONFIGS] == [CAUSAL, CAUSAL, CLASSIFIER]
    assert built["bert"].config.num_labels == len(task.labels) == 3
    assert kind_of_model(tf.T5ForConditionalGeneration(tf.T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                                                   num_heads=2, vocab_size=32))) is SEQ2SEQ
    assert kind_of_model(tf.BartForConditionalGeneration(tf.BartConfig(
        d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, vocab_size=32))) is SEQ2SEQ  # BART trains as T5 does


# ---- decoder-only: the loss is on the target tokens alone --------------------------------------------------------

def test_causal_loss_is_cross_entropy_on_the_target_tokens_only():
    """The kind's summed loss of a padded batch equals a plainly written one, example by example, unpadded."""
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    task = get_task("embedded-sst2")
    pairs = [("sst2 sentence: the sofa looked awful .", "negative"), ("sst2 sentence: good .", "positive")]
    examples = CAUSAL.encode_training(TOKENIZER, task, pairs, 128, 8)
    batch = CAUSAL.collate(examples, pad_token_id=0)
    assert batch["input_ids"].shape[0] == 2 and batch["input_ids"][1, -1] == 0  # the shorter one is padded right
    with torch.no_grad():
        kind_loss = CAUSAL.loss_sum(model, batch, model)
        expected = torch.zeros((), dtype=torch.float64)
        for example in examples:
            prompt, target = example.source_ids, example.target_ids
            logits = model(input_ids=torch.tensor([prompt + target])).logits[0].double()
            for j, token in enumerate(target):  # the token at len(prompt) + j is predicted at the position before it
                expected -= F.log_softmax(logits[len(prompt) + j - 1], dim=-1)[token]
    assert kind_loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert TOKENIZER.decode(examples[0].target_ids) == "negative</s>"
    assert TOKENIZER.decode(examples[0].source_ids).endswith("awful . answer:")


def test_left_padded_batches_generate_what_each_prompt_generates_alone():
    torch.manual_seed(0)
    model = CONFIGS["llama"]().eval()
    task = get_task("embedded-sst2")
    prompts = CAUSAL.encode_inputs(TOKENIZER, ["sst2 sentence: the sofa looked awful and old .", "sst2 sentence: good .",
                                               "sst2 sentence: the lamp ."], 128)
    together = CAUSAL.predict(model, TOKENIZER, task, prompts, 3, 5, torch.device("cpu"))
    alone = [CAUSAL.predict(model, TOKENIZER, task, [prompt], 1, 5, torch.device("cpu"))[0] for prompt in prompts]
    assert together == alone and any(together)


# ---- end to end through the runner ---------------------------------------------------------------------------

def test_a_llama_folder_trains_end_to_end_on_an_embedded_task(folders, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(folders["llama"], out, "--recipe", "full-finetune", "--epochs", "3", "--max-train", "96", "--eval-every", "3",
               "--lr", "3e-3") == 0
    printed = capsys.readouterr().out
    assert "(llama, d_model 128, 2 blocks" in printed
    run_dir = out / "embedded-sst2" / "full-finetune" / "seed-42"
    for name in ("result.json", "log.jsonl", "run.json", "task.json", "test_predictions.jsonl", "best", "last"):
        assert (run_dir / name).exists(), name
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()
    losses = [record["train_loss"] for record in read_jsonl(run_dir / "log.jsonl") if record["event"] == "eval"]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    predictions = [json.loads(line) for line in (run_dir / "test_predictions.jsonl").read_text().splitlines()]
    task = get_task("embedded-sst2")
    assert len(predictions) > 0 and all(row["prediction"] in task.labels for row in predictions)
    result = RunResult.load(run_dir / "result.json")
    accuracy = 100 * sum(row["prediction"] == row["gold"] for row in predictions) / len(predictions)
    assert result.test["accuracy"] == pytest.approx(accuracy)


def predictions_of_predict_agree_with_the_run(run_dir: Path, columns: tuple[str, ...], tmp_path: Path) -> None:
    """runners.predict on the run's best adapter repeats the run's own test predictions (first 24 rows)."""
    lines = read_jsonl(run_dir / "test_predictions.jsonl")[:24]
    source, output = tmp_path / "input.jsonl", tmp_path / "predicted.jsonl"
    source.write_text("".join(json.dumps({column: line[column] for column in columns}) + "\n" for line in lines))
    assert predict.main([str(run_dir / "best"), "--input", str(source), "--output", str(output), "--no-progress"]) == 0
    assert [line["prediction"] for line in read_jsonl(output)] == [line["prediction"] for line in lines]


def test_gpt2_with_its_conv1d_layers_trains_compacter(folders, tmp_path):
    out = tmp_path / "out"
    assert run(folders["gpt2"], out, "--recipe", "compacter++", "--epochs", "1", "--max-train", "32",
               "--lr", "3e-3") == 0
    run_dir = out / "embedded-sst2" / "compacter++" / "seed-42"
    result = RunResult.load(run_dir / "result.json")
    assert set(result.test) == {"accuracy"} and 0 < result.trainable_parameters < 5000
    predictions_of_predict_agree_with_the_run(run_dir, ("sentence",), tmp_path)


@pytest.mark.parametrize("task, metric", [("embedded-mnli", "accuracy"), ("embedded-stsb", "pearson")])
def test_bert_trains_its_head_and_the_recipe_and_nothing_else(folders, tmp_path, task, metric):
    out = tmp_path / "out"
    assert run(folders["bert"], out, "--recipe", "compacter++", "--epochs", "1", "--max-train", "48", "--lr", "3e-3",
               task=task) == 0
    run_dir = out / task / "compacter++" / "seed-42"
    result = RunResult.load(run_dir / "result.json")
    assert metric in result.test
    # The run's model, rebuilt as it started (same seed: the same random head), then with its best adapter.
    started = build_model(str(folders["bert"]), TOKENIZER, seed=42, task=get_task(task))
    trained = build_model(str(folders["bert"]), TOKENIZER, seed=42, task=get_task(task))
    surgery.load_adapter(trained, run_dir / "best")
    assert trained.config.num_labels == (1 if metric == "pearson" else 3)
    # The head trained: the adapter's copy of it moved from the random start (the base's own stays, as always).
    head_copy = trained.get_parameter("surgery.adapters.default.base.classifier-weight")
    assert not torch.equal(head_copy, started.classifier.weight)
    assert torch.equal(trained.classifier.weight, started.classifier.weight)
    saved = load_file(folders["bert"] / "model.safetensors")
    for name in ("bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.intermediate.dense.weight",
                 "bert.embeddings.word_embeddings.weight"):
        assert torch.equal(trained.get_parameter(name), saved[name]), name  # the frozen encoder did not move
    predictions = [json.loads(line)["prediction"] for line in (run_dir / "test_predictions.jsonl").read_text().splitlines()]
    if metric == "pearson":
        assert all(isinstance(float(p), float) for p in predictions)
    else:
        assert set(predictions) <= set(get_task(task).labels)
        predictions_of_predict_agree_with_the_run(run_dir, ("hypothesis", "premise"), tmp_path)


# ---- refusals ----------------------------------------------------------------------------------------------------

def test_a_model_type_no_family_declares_is_refused_in_one_line(folders, tmp_path, capsys):
    out = tmp_path / "out"
    one_line_exit_2(run(folders["opt"], out), capsys, f"--model {folders['opt']}", "model_type 'opt'",
                    "no declared family", "llama")
    assert not out.exists()


def test_a_classifier_refuses_a_free_text_task_in_one_line(folders, tmp_path, capsys):
    rows = [{"text": f"say {word}", "answer": word} for word in ("the sofa", "a lamp", "good soup", "the cat")] * 4
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    code = finetune.main(["--model", str(folders["bert"]), "--train-file", str(tmp_path / "train.jsonl"),
                          "--validation-file", str(tmp_path / "validation.jsonl"), "--text-column", "text",
                          "--label-column", "answer", "--task-type", "generation", "--output-dir", str(out),
                          "--no-progress"])
    one_line_exit_2(code, capsys, "free-text targets", "bert", "sequence classifier")
    assert not out.exists()
