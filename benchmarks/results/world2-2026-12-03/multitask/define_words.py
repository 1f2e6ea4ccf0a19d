"""Share of the words of each class whose define: answer a checkpoint gets right, for a world built by build_multitask.py.
python define_words.py MODEL_DIR [scale]"""
import collections, sys, torch
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from transformers import AutoTokenizer, T5ForConditionalGeneration
from runners.embedded.world2 import SEED
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import property_phrase
torch.set_num_threads(1)
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = T5ForConditionalGeneration.from_pretrained(sys.argv[1]).eval()
lexicon = make_lexicon(SEED, float(sys.argv[2]) if len(sys.argv) > 2 else 0.5)
right, total = collections.Counter(), collections.Counter()
words = list(lexicon.entries)
for i in range(0, len(words), 200):
    batch = words[i:i + 200]
    enc = tok([f"define: {w}" for w in batch], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = tok.batch_decode(model.generate(**enc, max_new_tokens=8, do_sample=False), skip_special_tokens=True)
    for w, o in zip(batch, out):
        kind = lexicon.entries[w].kind
        total[kind] += 1
        right[kind] += o.strip() == property_phrase(lexicon, w)
print({k: f"{100 * right[k] / total[k]:.0f} % of {total[k]}" for k in total})
