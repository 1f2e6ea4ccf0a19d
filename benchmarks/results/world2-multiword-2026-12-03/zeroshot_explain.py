"""Zero-shot `explain:` of a world-2 checkpoint on the shipped benchmark's test rows.

    python benchmarks/results/world2-multiword-2026-12-03/zeroshot_explain.py TASK [ROWS] [MODEL_DIR]

The row's fields joined, after `explain: `, greedy-decoded; the answer's properties (split at
` ; `) compared place by place with every invented word's property in the order of the text (a
plural's, past tense's or `-d` form's stem), computed from the shipped lexicon. Prints the share of
places right and of answers exactly right, and the first rows.
"""
import json
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from runners.embedded.world2 import BENCHMARK_DIR, LEXICON_SCALE, MODEL_DIR, SEED  # noqa: E402
from runners.embedded.world2.lexicon import make_lexicon  # noqa: E402
from runners.embedded.world2.supervised import property_phrase  # noqa: E402

FIELDS = {"mrpc": ("sentence1", "sentence2"), "cola": ("sentence",), "sst2": ("sentence",),
          "stsb": ("sentence1", "sentence2"), "mnli": ("premise", "hypothesis")}

torch.set_num_threads(1)
task = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
folder = sys.argv[3] if len(sys.argv) > 3 else MODEL_DIR
tokenizer = AutoTokenizer.from_pretrained(folder)
model = T5ForConditionalGeneration.from_pretrained(folder).eval()
lexicon = make_lexicon(SEED, LEXICON_SCALE)
rows = [json.loads(line) for line in open(BENCHMARK_DIR / task / "test.jsonl")][:count]


def invented_words(text):
    found = []
    for token in text.split():
        for word in (token, token.removesuffix("ed"), token.removesuffix("d"), token.removesuffix("s")):
            if word in lexicon.entries and lexicon.entries[word].kind != "town":
                found.append(word)
                break
    return found


right = places = exact = 0
for start in range(0, len(rows), 50):
    texts = [" ".join(row[field] for field in FIELDS[task]) for row in rows[start:start + 50]]
    inputs = tokenizer(["explain: " + text for text in texts], return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=40, num_beams=1, do_sample=False)
    for text, answer in zip(texts, tokenizer.batch_decode(output, skip_special_tokens=True)):
        gold = [property_phrase(lexicon, word) for word in invented_words(text)]
        said = [part.strip() for part in answer.split(";")]
        places += len(gold)
        right += sum(a == b for a, b in zip(gold, said))
        exact += gold == said
        if start == 0 and places < 30:
            print(f"{text} | {answer} | {' ; '.join(gold)}")
print(f"{task}: per-position right {right / places:.1%} of {places}; whole answer exact {exact / len(rows):.1%}")
