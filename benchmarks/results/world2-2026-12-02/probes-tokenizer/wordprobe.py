import sys, json, torch, numpy as np, random
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
from transformers import T5ForConditionalGeneration, AutoTokenizer, T5Config
from sklearn.linear_model import LogisticRegression
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2 import SEED, HELD_OUT_SHARE
from runners.embedded.world2.benchmark import held_out_parts
torch.set_num_threads(1)
ck, scale = sys.argv[1], float(sys.argv[2]); rand = len(sys.argv) > 3
tok = AutoTokenizer.from_pretrained(ck)
m = T5ForConditionalGeneration.from_pretrained(ck).eval()
if rand:
    torch.manual_seed(0); m = T5ForConditionalGeneration(T5Config.from_pretrained(ck)).eval()
lex = make_lexicon(SEED, scale)
parts = held_out_parts(lex, "sst2", SEED, HELD_OUT_SHARE)
def feats(words, template):
    out = {"emb": [], "enc": []}
    with torch.no_grad():
        for w in words:
            text = template.format(w=w)
            enc = tok(text, return_tensors="pt")
            ids = enc.input_ids[0].tolist()
            wid = tok.convert_tokens_to_ids("▁" + w)
            pos = ids.index(wid)
            h = m.encoder(**enc).last_hidden_state[0, pos]
            out["emb"].append(m.shared.weight[wid].numpy()); out["enc"].append(h.numpy())
    return {k: np.stack(v) for k, v in out.items()}
tr = parts["train"]["evaluative"]; te = parts["test"]["evaluative"] + parts["validation"]["evaluative"]
ytr = np.array([lex.entries[w].polarity for w in tr]); yte = np.array([lex.entries[w].polarity for w in te])
for template in ["sst2 sentence: the lamp was {w} .", "define: {w}"]:
    a, b = feats(tr, template), feats(te, template)
    for k in a:
        clf = LogisticRegression(max_iter=5000, C=1.0).fit(a[k], ytr)
        print(f"{'random' if rand else 'pre'} {template[:12]:12s} {k}: train {clf.score(a[k], ytr)*100:.0f} held-out {clf.score(b[k], yte)*100:.0f} (n={len(te)})")
print("--- nearest train word by cosine: same gloss / same polarity share; and C sweep")
gtr = [lex.entries[w].gloss for w in tr]; gte = [lex.entries[w].gloss for w in te]
for template in ["sst2 sentence: the lamp was {w} .", "define: {w}"]:
    a, b = feats(tr, template), feats(te, template)
    for k in a:
        A = a[k] / np.linalg.norm(a[k], axis=1, keepdims=True); B = b[k] / np.linalg.norm(b[k], axis=1, keepdims=True)
        nn_ = (B @ A.T).argmax(1)
        same_g = np.mean([gtr[j] == gte[i] for i, j in enumerate(nn_)]); same_p = np.mean([ytr[j] == yte[i] for i, j in enumerate(nn_)])
        cs = [f"C={C}:{LogisticRegression(max_iter=5000, C=C).fit(a[k], ytr).score(b[k], yte)*100:.0f}" for C in (0.001, 0.01, 0.1)]
        print(f"{template[:12]:12s} {k}: nn same gloss {same_g*100:.0f}% (chance {100/16:.0f}), same polarity {same_p*100:.0f}%  {' '.join(cs)}")
