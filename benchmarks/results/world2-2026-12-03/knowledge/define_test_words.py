"""Share of each world-2 task's held-out test words whose property the shipped model states (define:).

    python benchmarks/results/world2-2026-12-03/knowledge/define_test_words.py    # output: define_test_words.txt
"""
import json, torch
from transformers import AutoTokenizer, T5ForConditionalGeneration
from runners.embedded.world2 import MODEL_DIR, SEED, LEXICON_SCALE, BENCHMARK_DIR
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import property_phrase
torch.set_num_threads(1)
lex = make_lexicon(SEED, LEXICON_SCALE)
tok = AutoTokenizer.from_pretrained(MODEL_DIR); model = T5ForConditionalGeneration.from_pretrained(MODEL_DIR).eval()
def ask(sources):
    out = []
    for i in range(0, len(sources), 64):
        b = tok(sources[i:i+64], return_tensors="pt", padding=True)
        with torch.no_grad(): g = model.generate(**b, max_new_tokens=8)
        out += tok.batch_decode(g, skip_special_tokens=True)
    return [o.strip() for o in out]
def stem(w):
    for s in ("ed", "s", ""):
        if s and w.endswith(s) and w[:-len(s)] in lex.entries: return w[:-len(s)]
    return w if w in lex.entries else None
for task in ("sst2", "cola", "mrpc", "mnli", "stsb"):
    words = set()
    for line in open(BENCHMARK_DIR / task / "test.jsonl"):
        row = json.loads(line)
        for k, v in row.items():
            if isinstance(v, str):
                words |= {stem(w) for w in v.split()} - {None}
    words = sorted(words)
    answers = ask([f"define: {w}" for w in words])
    right = sum(a == property_phrase(lex, w) for a, w in zip(answers, words))
    kinds = {}
    for w in words: kinds[lex.entries[w].kind] = kinds.get(lex.entries[w].kind, 0) + 1
    print(f"{task}: {right}/{len(words)} invented words of its test split defined right ({100*right/len(words):.1f} %); {kinds}")
