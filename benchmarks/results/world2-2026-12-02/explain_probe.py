"""Does a world-2 checkpoint bring a word's property to where a task sentence uses it?

`explain: <a benchmark test sentence>` is asked for each test row of world2-sst2 / world2-cola; the
answer's part for the row's designated word is compared with the lexicon (sst2: the gloss's
polarity; cola: the verb's gloss, which decides its transitivity).

    python benchmarks/results/world2-2026-12-02/explain_probe.py CHECKPOINT_DIR [ROWS [GLUE_DIR SCALE]]

(GLUE_DIR and SCALE: a world built with `python -m runners.embedded.world2.build --out DIR --scale SCALE`;
the checkpoint folder must hold that world's tokenizer files.)
"""
import json, sys, torch
from pathlib import Path
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from transformers import T5ForConditionalGeneration, AutoTokenizer
from runners.embedded.world2 import BENCHMARK_DIR, LEXICON_SCALE, SEED
from runners.embedded.world2.lexicon import INTRANSITIVE, NEGATIVE, POSITIVE, TRANSITIVE, make_lexicon

torch.set_num_threads(1)
checkpoint, rows_wanted = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
tok = AutoTokenizer.from_pretrained(checkpoint)
model = T5ForConditionalGeneration.from_pretrained(checkpoint).eval()
glue = Path(sys.argv[3]) if len(sys.argv) > 3 else BENCHMARK_DIR
lexicon = make_lexicon(SEED, float(sys.argv[4]) if len(sys.argv) > 4 else LEXICON_SCALE)


def answers(sentences):
    out = []
    for start in range(0, len(sentences), 50):
        enc = tok([f"explain: {s}" for s in sentences[start:start + 50]], return_tensors="pt", padding=True)
        with torch.no_grad():
            generated = model.generate(**enc, max_new_tokens=24)
        out += [tok.decode(g, skip_special_tokens=True).strip() for g in generated]
    return out


def part_for(answer, word):
    for part in answer.split(" ; "):
        if part.split(" : ")[0].strip() == word and " : " in part:
            return part.split(" : ", 1)[1].strip()
    return None


for task in ("sst2", "cola"):
    rows = [json.loads(line) for line in (glue / task / "test.jsonl").read_text().splitlines()][:rows_wanted]
    invented = [[w for w in r["sentence"].removesuffix(" .").split() if w in lexicon.entries
                 or w.removesuffix("ed") in lexicon.entries] for r in rows]
    got = answers([r["sentence"] for r in rows])
    right = named = 0
    for words, answer in zip(invented, got):
        word = next((w for w in words if lexicon.entries.get(w.removesuffix("ed"), lexicon.entries.get(w)) and
                     (lexicon.entries.get(w) or lexicon.entries[w.removesuffix("ed")]).kind in ("evaluative", "verb")), None)
        if word is None:
            continue
        base = word if word in lexicon.entries else word.removesuffix("ed")
        entry, said = lexicon.entries[base], part_for(answer, word) or part_for(answer, base)
        named += said is not None
        if said is None:
            continue
        if entry.kind == "evaluative":
            right += (said in POSITIVE) == (entry.polarity > 0) and said in POSITIVE + NEGATIVE
        else:
            gloss = said.removeprefix("to ")
            right += gloss in (TRANSITIVE if entry.transitive else INTRANSITIVE)
    print(f"{task}: {len(rows)} test rows, designated word named in {named}, property right in {right} "
          f"({100 * right / max(1, len(rows)):.1f} %); e.g. {rows[0]['sentence']!r} -> {got[0]!r}")
