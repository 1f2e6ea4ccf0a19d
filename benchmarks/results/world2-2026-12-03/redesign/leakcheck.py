import sys, collections, random
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import *
from runners.embedded.world2.benchmark import ROW_MAKERS, held_out_parts, sentences
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples
lexicon = make_lexicon(SEED, LEXICON_SCALE)
documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
excl = {s for d in documents for s in sentences(d)} | explained_sentences(pairs)
for task in sys.argv[1:]:
    parts = held_out_parts(lexicon, task, SEED, HELD_OUT_SHARE)["train"]
    make, classes = ROW_MAKERS[task]
    rng = random.Random(1)
    refused = collections.Counter(); total = collections.Counter()
    for i in range(6000):
        row, words = make(rng, lexicon, parts, i % classes)
        texts = [str(v) for k, v in row.items() if k != "label"]
        total[i % classes] += 1
        if any(s in excl for t in texts for s in sentences(t)): refused[i % classes] += 1
    print(task, {k: f"{refused[k]}/{total[k]}" for k in total})
