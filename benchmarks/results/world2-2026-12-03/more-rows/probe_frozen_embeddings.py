"""probe_dir.py with full-finetune's word embeddings (shared, tied to the output layer) frozen.
python probe_frozen_embeddings.py GLUE_DIR --task probe-mnli --recipe full-finetune ..."""
import runpy, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from methods.full_finetune import FullFineTuning

def trainable_groups(self, model, family, scope):
    return {"all but the word embeddings": [n for n, _ in model.named_parameters()
                                            if not n.endswith(("shared.weight", "embed_tokens.weight", "lm_head.weight"))]}

FullFineTuning.trainable_groups = trainable_groups
sys.argv = [str(Path(__file__).parents[2] / "world2-2026-12-02/probe_dir.py")] + sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
