"""Quarter world with explain: targets property-first: 'explain: <sentences>' -> 'prop ; prop' (sentence order)."""
import sys, random
from pathlib import Path
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
import runners.embedded.world2.supervised as sup
import runners.embedded.world2.build as build

def explain_examples(lexicon, seed, count):
    rng = random.Random(f"world2-explain-{seed}")
    order, pairs = [], []
    while len(pairs) < count:
        if len(order) < 3:
            order += rng.sample(list(lexicon.entries), len(lexicon.entries))
        words = [order.pop() for _ in range(rng.choice((1, 2, 3)))]
        sentence = " . ".join(sup.plain_use(rng, lexicon, w) for w in words)
        pairs.append((f"explain: {sentence} .", " ; ".join(sup.property_phrase(lexicon, w) for w in words)))
    return pairs
build.explain_examples = explain_examples
sizes = build.Sizes(scale=0.25, documents=60000)
for p in build.build(Path(sys.argv[1]), sizes):
    pass
print("built", sys.argv[1])
