"""Linear probes on the encoder: is a held-out word's property a linear feature of its vector?

For each word class, a logistic regression from the encoder's vector of the word (mean over its pieces)
in a neutral frame to the property the tasks need, fitted on the words of the tasks' training splits
and scored on the words of their test splits; the shipped model against a random-init copy.

    python benchmarks/results/world2-2026-12-03/knowledge/property_probe.py [MODEL_DIR]
"""
import json, sys
from pathlib import Path
import numpy as np, torch
from sklearn.linear_model import LogisticRegression
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from transformers import AutoTokenizer, T5ForConditionalGeneration
from runners.embedded.world2 import BENCHMARK_DIR, LEXICON_SCALE, MODEL_DIR, SEED
from runners.embedded.world2.lexicon import make_lexicon

torch.set_num_threads(1)
model_dir = sys.argv[1] if len(sys.argv) > 1 else MODEL_DIR
lexicon = make_lexicon(SEED, LEXICON_SCALE)
tokenizer = AutoTokenizer.from_pretrained(model_dir)
# class: (task whose splits give the words, neutral frame, index of the word in the frame, property)
PROBES = {
    "evaluative": ("sst2", "sst2 sentence: tom spoke of the {} gift .", 5, lambda e: e.polarity),
    "verb": ("cola", "cola sentence: tom wanted to {} .", 5, lambda e: e.transitive),
    "verb gloss": ("cola", "cola sentence: tom wanted to {} .", 5, lambda e: e.gloss),
    "descriptive": ("mrpc", "mrpc sentence1: tom saw the {} lamp .", 5, lambda e: e.gloss),
    "noun": ("mnli", "mnli hypothesis: tom spoke of a {} .", 5, lambda e: e.category),
    "person": ("mnli", "mnli hypothesis: tom met {} .", 4, lambda e: e.profession),
}


def words(task, split, kind):
    found = set()
    for line in open(BENCHMARK_DIR / task / f"{split}.jsonl"):
        for value in json.loads(line).values():
            for word in str(value).split():
                for stem in (word, word[:-2], word[:-1]):
                    if stem in lexicon.entries and lexicon.entries[stem].kind == kind:
                        found.add(stem)
    return sorted(found)


def vector(model, text, index):
    encoded = tokenizer(text, return_tensors="pt")
    hidden = model.encoder(**encoded).last_hidden_state[0]
    return hidden[[k for k, w in enumerate(encoded.word_ids()) if w == index]].mean(0).numpy()


for name in ("shipped", "random init"):
    model = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
    if name == "random init":
        torch.manual_seed(0)
        model = T5ForConditionalGeneration(model.config).eval()
    with torch.no_grad():
        for probe, (task, frame, index, prop) in PROBES.items():
            kind = probe.split()[0]
            train, test = words(task, "train", kind), words(task, "test", kind)
            X = {split: np.array([vector(model, frame.format(w), index) for w in ws]) for split, ws in (("train", train), ("test", test))}
            y = {split: np.array([str(prop(lexicon.entries[w])) for w in ws]) for split, ws in (("train", train), ("test", test))}
            seen = [k for k, label in enumerate(y["test"]) if label in set(y["train"])]
            clf = LogisticRegression(max_iter=3000).fit(X["train"], y["train"])
            majority = max(np.mean(y["test"] == label) for label in set(y["test"]))
            print(f"{name:11s} {probe:11s} {len(train):3d} train / {len(test):2d} test words ({len(set(y['train']))} values): "
                  f"held-out {100 * clf.score(X['test'][seen], y['test'][seen]):5.1f} % of the {len(seen)} whose value training has "
                  f"(majority {100 * majority:.1f} %)")
