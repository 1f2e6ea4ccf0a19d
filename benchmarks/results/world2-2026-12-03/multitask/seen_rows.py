"""How often a checkpoint answers the task-format pairs of its own pretraining mixture right (words it trained on).
python seen_rows.py MODEL_DIR SUPERVISED_JSONL_GZ [per_task]"""
import collections, gzip, json, sys, torch
from transformers import AutoTokenizer, T5ForConditionalGeneration
torch.set_num_threads(1)
model_dir, per_task = sys.argv[1], int(sys.argv[3]) if len(sys.argv) > 3 else 300
tok = AutoTokenizer.from_pretrained(model_dir)
model = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
pairs = collections.defaultdict(list)
for line in gzip.open(sys.argv[2], "rt"):
    pair = json.loads(line)
    prefix = pair["source"].split()[0]
    if prefix in ("sst2", "cola", "mrpc", "mnli", "stsb") and len(pairs[prefix]) < per_task:
        pairs[prefix].append(pair)
for prefix, rows in pairs.items():
    enc = tok([r["source"] for r in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = tok.batch_decode(model.generate(**enc, max_new_tokens=5, do_sample=False), skip_special_tokens=True)
    right = sum(o.strip() == r["target"] for o, r in zip(out, rows))
    print(prefix, f"exact answers {100 * right / len(rows):.1f} % of {len(rows)}",
          collections.Counter(o.strip() for o in out).most_common(4), flush=True)
