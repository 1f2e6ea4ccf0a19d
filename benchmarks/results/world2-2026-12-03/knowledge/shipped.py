"""World 2's lexicon and shipped T5 (one thread), and `ask`: greedy answers to a list of sources.

Imported by the scripts of this folder that question the model (run them from the repository root).
"""
import torch
from transformers import AutoTokenizer, T5ForConditionalGeneration

from runners.embedded.world2 import LEXICON_SCALE, MODEL_DIR, SEED
from runners.embedded.world2.lexicon import make_lexicon

torch.set_num_threads(1)
lex = make_lexicon(SEED, LEXICON_SCALE)
tok = AutoTokenizer.from_pretrained(MODEL_DIR)
model = T5ForConditionalGeneration.from_pretrained(MODEL_DIR).eval()


def ask(sources: list[str]) -> list[str]:
    """The model's answer to each source (greedy, at most 8 tokens), in batches of 64."""
    out = []
    for i in range(0, len(sources), 64):
        batch = tok(sources[i:i + 64], return_tensors="pt", padding=True)
        with torch.no_grad():
            generated = model.generate(**batch, max_new_tokens=8)
        out += tok.batch_decode(generated, skip_special_tokens=True)
    return [o.strip() for o in out]
