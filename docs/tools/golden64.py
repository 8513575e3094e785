# Recompute the golden logits with transformers' float32 steps (Qwen3RMSNorm's
# upcast to float32, the float32 softmax) made float64, to tell the oracle's
# error from transformers' own float32 rounding. RoPE tables stay as
# transformers forms them (float32 angles), as the oracle does; they are saved
# per case (rope_cos, rope_sin) so that a test can rotate by torch's very
# values. The "rope64." tensors are the same run with float64 RoPE angles
# (not used by the tests: they show how much RoPE precision moves the logits).
# Usage (on the GPU machine, transformers 5.17): python3 golden64.py testdata/golden OUTDIR
# prints each variant against the stored golden.safetensors and writes
# OUTDIR/<model>.golden64.safetensors.
import json, os, sys, torch
from safetensors.torch import save_file, load_file
from transformers import AutoConfig, Qwen3ForCausalLM
import transformers.models.qwen3.modeling_qwen3 as mq

def rms64(self, h):
    var = h.pow(2).mean(-1, keepdim=True)
    return self.weight * (h * torch.rsqrt(var + self.variance_epsilon))
orig_softmax = torch.nn.functional.softmax
def softmax64(x, dim=None, dtype=None, **kw):
    if dtype == torch.float32 and x.dtype == torch.float64:
        dtype = torch.float64
    return orig_softmax(x, dim=dim, dtype=dtype, **kw)

def rope64(self, x, position_ids):
    freqs = position_ids[:, :, None].double() * self.inv64[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)

def run(d, patched, rope=False):
    mq.Qwen3RMSNorm.forward = rms64 if patched else orig_rms
    torch.nn.functional.softmax = softmax64 if patched else orig_softmax
    mq.nn.functional.softmax = torch.nn.functional.softmax
    cfg = AutoConfig.from_pretrained(d); cfg._attn_implementation = "eager"
    ref = Qwen3ForCausalLM(cfg).eval()
    ref.load_state_dict(load_file(os.path.join(d, "model.safetensors")), strict=False)
    if cfg.tie_word_embeddings: ref.tie_weights()
    ref = ref.double()
    if rope:
        re = ref.model.rotary_emb
        hd = cfg.head_dim; theta = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) else cfg.rope_theta
        re.inv64 = 1.0 / (float(theta) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        type(re).forward = rope64
    else:
        type(ref.model.rotary_emb).forward = orig_rope
    g = load_file(os.path.join(d, "golden.safetensors"))
    out = {}
    for ci in range(len(json.load(open(os.path.join(d, "golden.json")))["cases"])):
        ids = g[f"case{ci}.input_ids"].long().tolist()
        with torch.no_grad():
            lg = ref(torch.tensor([ids]), use_cache=False).logits[0]
        out[f"case{ci}.input_ids"] = g[f"case{ci}.input_ids"]
        out[f"case{ci}.logits"] = lg.float()
        seq, greedy = list(ids), []
        with torch.no_grad():
            for _ in range(16):
                l = ref(torch.tensor([seq]), use_cache=False).logits[0, -1]
                greedy.append(int(l.argmax())); seq.append(greedy[-1])
        out[f"case{ci}.greedy"] = torch.tensor(greedy, dtype=torch.int32)
        T = len(ids)
        cos, sin = ref.model.rotary_emb(torch.zeros(1, T, 1, dtype=torch.float64), torch.arange(T)[None])
        half = cos.shape[-1] // 2
        out[f"case{ci}.rope_cos"] = cos[0, :, :half].float().contiguous()
        out[f"case{ci}.rope_sin"] = sin[0, :, :half].float().contiguous()
        scale = max(1.0, float(g[f"case{ci}.logits"].abs().max()))
        print(os.path.basename(d), "case", ci, ("patched" if patched else "stock") + (" rope64" if rope else ""),
              "vs stored golden: max rel %.3g" % (float((lg.float() - g[f"case{ci}.logits"]).abs().max()) / scale),
              "greedy same:", greedy == g[f"case{ci}.greedy"].tolist(), flush=True)
    return out

orig_rms = mq.Qwen3RMSNorm.forward
orig_rope = mq.Qwen3RotaryEmbedding.forward
os.makedirs(sys.argv[2], exist_ok=True)
for name in ["tiny-tied-f32", "gqa-untied-extremek-f32", "small-tied-bf16", "yarn-tied-f32"]:
    d = os.path.join(sys.argv[1], name)
    run(d, False)
    o = run(d, True)
    if name != "yarn-tied-f32":
        o2 = run(d, True, rope=True)
        for k, v in o2.items():
            if ".logits" in k or ".greedy" in k: o[k.replace("case", "rope64.case")] = v
    save_file({k: v.contiguous() for k, v in o.items()}, os.path.join(sys.argv[2], name + ".golden64.safetensors"))
