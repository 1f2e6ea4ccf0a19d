"""Linear probe: does the encoder's representation of a world-2 task input carry the label for held-out words?"""
import json, sys, torch, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from transformers import T5ForConditionalGeneration, AutoTokenizer, T5Config
from sklearn.linear_model import LogisticRegression
torch.set_num_threads(1)
ck, task = sys.argv[1], sys.argv[2]
random_init = len(sys.argv) > 3
tok = AutoTokenizer.from_pretrained(ck)
m = T5ForConditionalGeneration.from_pretrained(ck).eval()
if random_init:
    torch.manual_seed(0); m = T5ForConditionalGeneration(T5Config.from_pretrained(ck)).eval()
from runners.embedded.world2.tasks import WORLD2_TASKS
t = WORLD2_TASKS[f"world2-{task}"]
def load(split):
    rows = [json.loads(l) for l in open(f"runners/embedded/world2/glue/{task}/{split}.jsonl")]
    texts = [t.to_text(r)[0] for r in rows]; labels = [r["label"] for r in rows]
    feats = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tok(texts[i:i+64], return_tensors="pt", padding=True)
            h = m.encoder(**enc).last_hidden_state
            mask = enc.attention_mask.unsqueeze(-1)
            feats.append(torch.cat([(h * mask).sum(1) / mask.sum(1), (h + (mask - 1) * 1e4).max(1).values], 1))
    return torch.cat(feats).numpy(), np.array(labels)
Xtr, ytr = load("train"); Xte, yte = load("test")
clf = LogisticRegression(max_iter=3000, C=1.0).fit(Xtr, ytr)
print(task, "random" if random_init else ck, "train acc", round(clf.score(Xtr, ytr)*100,1), "test acc", round(clf.score(Xte, yte)*100,1))
