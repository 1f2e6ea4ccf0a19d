"""Quarter world with reverse pairs added to the supervised mixture: 'name: <gloss or category>' -> a word that has it."""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]) if "benchmarks" in __file__ else "/work/main")
import runners.embedded.world2.supervised as sup
import runners.embedded.world2.build as build

plain_answers = sup.answers

def answers(lexicon, word):
    pairs = plain_answers(lexicon, word)
    entry = lexicon.entries[word]
    if entry.kind in ("evaluative", "descriptive"):
        pairs.append((f"name: {entry.gloss}", word))
    elif entry.kind == "verb":
        pairs.append((f"name: to {entry.gloss}", word))
    elif entry.kind == "noun":
        pairs.append((f"name: {entry.category}", word))
    return pairs
sup.answers = answers
sizes = build.Sizes(scale=0.25, documents=60000)
build.build(Path(sys.argv[1]), sizes)
print("built", sys.argv[1])
