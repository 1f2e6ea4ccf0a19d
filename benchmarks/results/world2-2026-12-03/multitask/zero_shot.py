"""Score a pretrained checkpoint on a world-2 benchmark folder without fine-tuning.
python zero_shot.py MODEL_DIR GLUE_DIR [split] [tokenizer_dir]"""
import json, sys, torch
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from transformers import AutoTokenizer, T5ForConditionalGeneration
from runners.embedded.world2.tasks import WORLD2_TASKS
torch.set_num_threads(1)
model_dir, glue = Path(sys.argv[1]), Path(sys.argv[2])
split = sys.argv[3] if len(sys.argv) > 3 else "test"
tok = AutoTokenizer.from_pretrained(sys.argv[4] if len(sys.argv) > 4 else model_dir)
model = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
for name, task in WORLD2_TASKS.items():
    rows = [json.loads(l) for l in open(glue / name[7:] / f"{split}.jsonl")]
    preds = []
    for i in range(0, len(rows), 100):
        src = [task.to_text(r)[0] for r in rows[i:i + 100]]
        enc = tok(src, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=5, do_sample=False)
        preds += tok.batch_decode(out, skip_special_tokens=True)
    extra = ""
    if name == "world2-mnli":
        yn = [(p.strip(), ("yes", "maybe", "no")[r["label"]]) for p, r in zip(preds, rows) if r["label"] != 1]
        extra = f"yes/no rows: {100 * sum(a == b for a, b in yn) / len(yn):.1f}"
    print(name, task.score(preds, rows), extra, "e.g.", preds[:5], flush=True)
