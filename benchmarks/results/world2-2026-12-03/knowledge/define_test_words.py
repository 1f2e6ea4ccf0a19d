"""Share of each world-2 task's held-out test words whose property the shipped model states (define:).

    python benchmarks/results/world2-2026-12-03/knowledge/define_test_words.py    # output: define_test_words.txt
"""
import json
from runners.embedded.world2 import BENCHMARK_DIR
from runners.embedded.world2.supervised import property_phrase
from shipped import ask, lex
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
