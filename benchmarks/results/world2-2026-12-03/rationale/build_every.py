"""World 2's mrpc and stsb rows (the shipped rows, from `python -m runners.embedded.world2.build --out`),
their rationale rewritten as `explain:` answers it: the property of every invented word of the two
sentences in turn, repeats included (`heavy ; tool ; break ; break ; heavy ; tool`).
python build_every.py GLUE_DIR OUT   # OUT/{mrpc,stsb}/{train,validation,test}.jsonl"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import LEXICON_SCALE, SEED
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import property_phrase

lexicon = make_lexicon(SEED, LEXICON_SCALE)
invented = lambda token: token if token in lexicon.entries else token[:-2] if token.endswith("ed") and token[:-2] in lexicon.entries else None
glue, out = Path(sys.argv[1]), Path(sys.argv[2])
for task in ("mrpc", "stsb"):
    (out / task).mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        with open(out / task / f"{split}.jsonl", "w") as f:
            for line in open(glue / task / f"{split}.jsonl"):
                row = json.loads(line)
                words = [invented(t) for t in f"{row['sentence1']} {row['sentence2']}".split() if invented(t)]
                f.write(json.dumps({**row, "rationale": " ; ".join(property_phrase(lexicon, w) for w in words)}) + "\n")
