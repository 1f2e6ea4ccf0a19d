"""How many pieces the tokenizer at argv[1] cuts each word class into (argv[2]: the world's --scale)."""
import sys, statistics
from collections import defaultdict
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
from transformers import AutoTokenizer
from runners.embedded.world2.lexicon import make_lexicon
tok = AutoTokenizer.from_pretrained(sys.argv[1])
scale = float(sys.argv[2])
lex = make_lexicon(0 if len(sys.argv) < 4 else int(sys.argv[3]), scale)
from runners.embedded.world2 import SEED
lex = make_lexicon(SEED, scale)
n = lambda w: len(tok.tokenize(w))
groups = defaultdict(list)
for w, e in lex.entries.items():
    if e.kind == "verb":
        groups[f"verb trans={e.transitive} bare"].append(n(w))
        groups[f"verb trans={e.transitive} +ed"].append(n(w + "ed"))
    elif e.kind in ("noun", "descriptive", "evaluative"):
        groups[e.kind + (f" pol={e.polarity}" if e.polarity else "")].append(n(w))
for k, v in sorted(groups.items()):
    print(f"{k:28s} mean pieces {statistics.mean(v):.2f}  share single {sum(x==1 for x in v)/len(v):.2f} n={len(v)}")
