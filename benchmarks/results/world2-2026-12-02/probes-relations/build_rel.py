"""The shipped world 2 (0413ec2) plus relation pairs in its pretraining mixture: `build_rel.py DIR [COUNT]`.

A relation pair asks, in a format no task uses, for a yes / no that compares stored properties:

  same: w1 , w2         → yes if the two words of one class mean the same (one gloss; a noun and its synonym)
  kind: n , category    → yes if the noun is of that category          (English category word)
  kind: p , profession  → yes if the person works as that              (English profession word)
  home: p , town        → yes if the person lives in that town
  object: v             → yes if the verb takes an object

Half the answers are yes. Every word comes round in a seeded order; the relations are what the
corpus's definitions state or imply. COUNT relation pairs (default 40,000) are added to the
shipped mixture's 100,000 and shuffled in.
"""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
import runners.embedded.world2.build as build  # noqa: E402
from runners.embedded.world2.benchmark import _different  # noqa: E402
from runners.embedded.world2.lexicon import CATEGORIES, PROFESSIONS  # noqa: E402


def relation_pair(rng, lexicon, word):
    entry = lexicon.entries[word]
    yes = rng.random() < 0.5
    if entry.kind in ("evaluative", "descriptive", "verb", "noun") and (entry.kind != "verb" or rng.random() < 0.5) \
            and (entry.kind != "noun" or rng.random() < 0.5):
        pool = lexicon.words_of(entry.kind)
        same = [w for w in pool if w != word and lexicon.same_meaning(w, word)]
        other = same and yes and rng.choice(same) or _different(rng, lexicon, word, pool)
        return f"same: {word} , {other}", "yes" if lexicon.same_meaning(word, other) else "no"
    if entry.kind == "verb":
        return f"object: {word}", "yes" if entry.transitive else "no"
    if entry.kind == "noun":
        category = entry.category if yes else rng.choice([c for c in CATEGORIES if c != entry.category])
        return f"kind: {word} , {category}", "yes" if yes else "no"
    if entry.kind == "person":
        if rng.random() < 0.5:
            profession = entry.profession if yes else rng.choice([p for p in PROFESSIONS if p != entry.profession])
            return f"kind: {word} , {profession}", "yes" if yes else "no"
        towns = sorted({lexicon.entries[w].town for w in lexicon.words_of("person")})
        town = entry.town if yes else rng.choice([t for t in towns if t != entry.town])
        return f"home: {word} , {town}", "yes" if yes else "no"
    return None  # towns: no relation asked


def relation_examples(lexicon, seed, count):
    rng = random.Random(f"world2-relation-{seed}")
    words, pairs = list(lexicon.entries), []
    while len(pairs) < count:
        rng.shuffle(words)
        for w in words:
            pair = relation_pair(rng, lexicon, w)
            if pair and len(pairs) < count:
                pairs.append(pair)
    return pairs


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 40_000
    shipped_explain = build.explain_examples
    build.explain_examples = lambda lexicon, seed, n: shipped_explain(lexicon, seed, n) + relation_examples(lexicon, seed, count)
    for path in build.build(Path(sys.argv[1])):
        pass
    print("built", sys.argv[1])
