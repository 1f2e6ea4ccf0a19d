"""Does world 2's model explain a verb from its past tense (as cola uses it) as well as from its base form?

    python benchmarks/results/world2-2026-12-03/knowledge/explain_forms.py    # output: explain_forms.txt
"""
import json
from runners.embedded.world2 import BENCHMARK_DIR
from shipped import ask, lex
rows = [json.loads(l) for l in open(BENCHMARK_DIR / "cola" / "test.jsonl")]
items = []
for r in rows:
    w = r["sentence"].split()[1]
    stem = w[:-2] if w.endswith("ed") else w
    if stem in lex.entries and lex.entries[stem].kind == "verb":
        items.append((r["sentence"], stem, lex.entries[stem].gloss))
print(len(items), "cola test rows with an invented verb")
for name, make in [("cola sentence", lambda s, w: f"explain: {s}"),
                   ("base form 'wanted to'", lambda s, w: f"explain: tom wanted to {w} ."),
                   ("past 'tom Xed .'", lambda s, w: f"explain: tom {w}ed ."),
                   ("define:", lambda s, w: f"define: {w}")]:
    answers = ask([make(s, w) for s, w, g in items])
    right = sum(a.split(" ;")[0].strip() == g for a, (_, _, g) in zip(answers, items))
    print(f"{name:24s} {right}/{len(items)} = {100*right/len(items):.1f} %   e.g. {answers[:3]}")
