import sys, torch, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
from transformers import T5ForConditionalGeneration, AutoTokenizer
from sklearn.linear_model import LogisticRegression
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2 import SEED, HELD_OUT_SHARE
from runners.embedded.world2.benchmark import held_out_parts
torch.set_num_threads(1)
ck, scale = sys.argv[1], float(sys.argv[2])
tok = AutoTokenizer.from_pretrained(ck); m = T5ForConditionalGeneration.from_pretrained(ck).eval()
lex = make_lexicon(SEED, scale); parts = held_out_parts(lex, "sst2", SEED, HELD_OUT_SHARE)
tr = parts["train"]["evaluative"]; te = parts["test"]["evaluative"] + parts["validation"]["evaluative"]
ytr = np.array([lex.entries[w].polarity for w in tr]); yte = np.array([lex.entries[w].polarity for w in te])
def dec(words, template, steps):
    out = []
    with torch.no_grad():
        for w in words:
            enc = tok(template.format(w=w), return_tensors="pt")
            prefix = tok(steps.format(w=w), add_special_tokens=False).input_ids if steps else []
            dec_ids = torch.tensor([[0] + prefix])
            o = m(**enc, decoder_input_ids=dec_ids, output_hidden_states=True)
            out.append(o.decoder_hidden_states[-1][0, -1].numpy())
    return np.stack(out)
for template, steps in [("define: {w}", ""), ("explain: the lamp was {w} .", "{w} :"), ("sst2 sentence: the lamp was {w} .", ""), ("explain: the lamp was {w} .", "")]:
    a, b = dec(tr, template, steps), dec(te, template, steps)
    res = " ".join(f"C={C}:{LogisticRegression(max_iter=5000, C=C).fit(a, ytr).score(b, yte)*100:.0f}" for C in (0.01, 0.1, 1))
    print(f"decoder last state | {template} | decoded so far '{steps}': held-out polarity {res}")
