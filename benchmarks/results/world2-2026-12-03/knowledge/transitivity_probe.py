"""Linear probe: does the encoder's vectors of a verb (the mean over its pieces, in its cola sentence) tell whether the verb takes an object?

Logistic regression on the verbs of cola's training split, scored on the held-out verbs of its test split;
for the shipped model and a random-init copy. Run from the repository root:

    python benchmarks/results/world2-2026-12-03/knowledge/transitivity_probe.py
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
lexicon = make_lexicon(SEED, LEXICON_SCALE)
tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)


def verb(sentence):
    word = sentence.split()[1]
    return word[:-2] if word.endswith("ed") and word[:-2] in lexicon.entries else word


def features(model, split):
    rows = [json.loads(line) for line in open(BENCHMARK_DIR / "cola" / f"{split}.jsonl")]
    X, y = [], []
    with torch.no_grad():
        for row in rows:
            words = f"cola sentence: {row['sentence']}".split()
            encoded = tokenizer(" ".join(words), return_tensors="pt")
            hidden = model.encoder(**encoded).last_hidden_state[0]
            pieces = [k for k, w in enumerate(encoded.word_ids()) if w == 3]  # the verb: the 4th word ("cola", "sentence:", name, verb)
            X.append(hidden[pieces].mean(0).numpy()); y.append(lexicon.entries[verb(row["sentence"])].transitive)
    return np.array(X), np.array(y)


for name in ("shipped", "random init"):
    model = T5ForConditionalGeneration.from_pretrained(MODEL_DIR).eval()
    if name == "random init":
        torch.manual_seed(0); model = T5ForConditionalGeneration(model.config).eval()
    Xtr, ytr = features(model, "train"); Xte, yte = features(model, "test")
    clf = LogisticRegression(max_iter=3000).fit(Xtr, ytr)
    print(f"{name}: transitivity from the verb's encoder vector: train {100 * clf.score(Xtr, ytr):.1f} %, "
          f"held-out test verbs {100 * clf.score(Xte, yte):.1f} % (test rows with a transitive verb: {100 * yte.mean():.1f} %)")
