import json, sys, collections
# python bylabel.py PRED_JSONL TEST_JSONL
preds = [json.loads(l) for l in open(sys.argv[1])]
rows = [json.loads(l) for l in open(sys.argv[2])]
labels = ("yes", "maybe", "no")
c = collections.Counter()
for p, r in zip(preds, rows):
    pred = p.get("prediction", p.get("output"))
    c[(labels[r["label"]], pred)] += 1
for g in labels:
    tot = sum(v for (gg, _), v in c.items() if gg == g)
    print(g, tot, {pp: v for (gg, pp), v in c.items() if gg == g})
yn = [(p.get("prediction"), labels[r["label"]]) for p, r in zip(preds, rows) if r["label"] != 1]
print("accuracy on yes/no rows", sum(a == b for a, b in yn) / len(yn))
