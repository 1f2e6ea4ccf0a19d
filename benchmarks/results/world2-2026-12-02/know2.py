"""What a world-2 checkpoint knows: 'define: w' answered per word class (polarity for evaluative)."""
import random, sys, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from transformers import T5ForConditionalGeneration, AutoTokenizer
from runners.embedded.world2 import SEED, LEXICON_SCALE
from runners.embedded.world2.lexicon import make_lexicon, POSITIVE, NEGATIVE
torch.set_num_threads(1)
ck = sys.argv[1]
tok = AutoTokenizer.from_pretrained(ck); m = T5ForConditionalGeneration.from_pretrained(ck).eval()
lex = make_lexicon(SEED, float(sys.argv[2]) if len(sys.argv) > 2 else LEXICON_SCALE)  # argv[2]: a --scale world
rng = random.Random(0)
def ask(words):
    enc = tok([f"define: {w}" for w in words], return_tensors="pt", padding=True)
    out = m.generate(**enc, max_new_tokens=8)
    return [tok.decode(o, skip_special_tokens=True).strip() for o in out]
for kind in ("evaluative", "descriptive", "verb", "noun_concept", "person"):
    words = lex.words_of(kind) if kind != "noun_concept" else lex.words_of("noun")
    words = rng.sample(words, min(100, len(words)))
    answers = ask(words)
    exact = pol = 0
    for w, a in zip(words, answers):
        e = lex.entries[w]
        g = e.gloss or e.category or e.profession or ""
        exact += bool(g) and (a == g or a == f"to {g}" or a.endswith(g) or g in a)
        if kind == "evaluative":
            want = POSITIVE if e.polarity > 0 else NEGATIVE
            pol += a in want
    print(kind, "gloss match", exact, "/", len(words), "| polarity right", pol if kind == "evaluative" else "-", "| e.g.", words[0], "->", answers[0], "want", lex.entries[words[0]].gloss or lex.entries[words[0]].category or lex.entries[words[0]].profession)
