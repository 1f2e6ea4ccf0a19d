"""Made with wt-said at 2bdc6b1 (before Fastfood version 3): an Intrinsic-SAID adapter of fastfood_version 2."""
import sys, torch
sys.path.insert(0, "tests")
import surgery
from conftest import tiny_model
from safetensors.torch import save_file
model = tiny_model("v1.0")
surgery.apply(model, {"name": "said-v2-fixture", "method": "intrinsic_said", "options": {"dimension": 300, "seed": 7, "fastfood_version": 2}})
g = torch.Generator().manual_seed(5)
with torch.no_grad():
    model.surgery.intrinsic.z.copy_(torch.randn(model.surgery.intrinsic.z.shape, generator=g) * 0.1)
    model.surgery.intrinsic.scales.copy_(torch.rand(model.surgery.intrinsic.scales.shape, generator=g) + 0.5)
folder = surgery.save_adapter(model, "tests/data/said-v2-checkpoint")
g = torch.Generator().manual_seed(1)
input_ids = torch.randint(2, 96, (3, 9), generator=g)
attention_mask = torch.ones_like(input_ids); attention_mask[1, 6:] = 0; input_ids[1, 6:] = 0
labels = torch.randint(2, 96, (3, 5), generator=g)
with torch.no_grad():
    logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
    q = model.surgery.intrinsic.tensor_names.index("encoder.block.0.layer.0.SelfAttention.q.weight")
    delta = model.surgery_fastfood[q](model.surgery.intrinsic.z)
save_file({"logits": logits.contiguous(), "q_delta": delta[:64].contiguous()}, "tests/data/said-v2-expected.safetensors")
print(logits.shape, logits.abs().mean())
