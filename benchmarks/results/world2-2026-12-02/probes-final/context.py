import json, sys, torch
from transformers import T5ForConditionalGeneration, AutoTokenizer
ck = sys.argv[1]; tok = AutoTokenizer.from_pretrained(ck); m = T5ForConditionalGeneration.from_pretrained(ck).eval()
rows = [json.loads(l) for l in open("runners/embedded/world2/glue/sst2/test.jsonl")][:12]
for r in rows:
    for src in (f"define: {r['sentence'].split()[-2]}", f"define: {r['sentence']}", f"{r['sentence'].replace(' .', ' , so ben was <extra_id_0> .')}"):
        out = tok.decode(m.generate(**tok(src, return_tensors="pt"), max_new_tokens=6)[0], skip_special_tokens=False)
        print(r["label"], "|", src, "->", out)
