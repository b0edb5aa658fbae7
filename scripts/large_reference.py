# A float32 PyTorch reference for a Llama/Qwen2 Hugging Face directory (config.json +
# model.safetensors): a hand-written forward (RMSNorm, rotate-half RoPE, grouped-query causal
# attention, q/k/v biases, SwiGLU, tied or separate head), so nla is checked against an
# implementation that shares none of its code. Comparison only; never a test dependency.
#
# Prints one JSON object: the residual stream after block --layer for --ids (one row per
# token), then --steps greedy tokens (full recompute per step) with each step's top-2 logit gap.
#
# Run: /usr/bin/python3 scripts/large_reference.py --model DIR --ids 1,2,3 [--layer 11] [--steps 16] [--threads 2]
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    """name -> float32 torch tensor; bf16/f16/f32 only (what nla writes and loads)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        start = 8 + n
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b, end = e["data_offsets"]
            f.seek(start + b)
            raw = f.read(end - b)
            if e["dtype"] == "BF16":
                a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            elif e["dtype"] == "F16":
                a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
            elif e["dtype"] == "F32":
                a = np.frombuffer(raw, dtype="<f4").copy()
            else:
                sys.exit(f"{path}: tensor {name}: dtype {e['dtype']} not supported by this reference")
            out[name] = torch.from_numpy(a.reshape(e["shape"]))
    return out


class Model:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, "config.json")))
        self.w = read_safetensors(os.path.join(d, "model.safetensors"))
        self.D = cfg["hidden_size"]
        self.L = cfg["num_hidden_layers"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads", self.H)
        self.hd = self.D // self.H
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        self.bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
        tied = cfg.get("tie_word_embeddings", False) or "lm_head.weight" not in self.w
        self.head = self.w["model.embed_tokens.weight"] if tied else self.w["lm_head.weight"]

    def norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, x, start):
        # x [B, T, heads, hd] at positions start..start+T-1; rotate-half layout as transformers' Llama/Qwen2.
        T = x.shape[1]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        f = torch.outer(torch.arange(start, start + T, dtype=torch.float64), inv)
        cos = torch.cat([f, f], -1).cos().float()[:, None, :]
        sin = torch.cat([f, f], -1).sin().float()[:, None, :]
        h = self.hd // 2
        rot = torch.cat([-x[..., h:], x[..., :h]], -1)
        return x * cos + rot * sin

    def forward(self, ids, until=None, cache=None, last_only=False):
        """ids [B, T]. The residual after block `until` (no final norm), else the logits [B, T, V]
        (of the last position only, [B, 1, V], with last_only).
        With `cache` (a list, one (k, v) per block, filled as it goes) positions continue after it."""
        w = self.w
        B, T = ids.shape
        start = cache[0][0].shape[1] if cache else 0
        x = w["model.embed_tokens.weight"][ids]
        mask = torch.full((T, start + T), float("-inf")).triu(start + 1)
        for l in range(self.L):
            p = f"model.layers.{l}."
            h = self.norm(x, w[p + "input_layernorm.weight"])

            def proj(n):
                y = h @ w[p + f"self_attn.{n}.weight"].T
                return y + w[p + f"self_attn.{n}.bias"] if self.bias else y

            q = self.rope(proj("q_proj").view(B, T, self.H, self.hd), start)
            k = self.rope(proj("k_proj").view(B, T, self.Hkv, self.hd), start)
            v = proj("v_proj").view(B, T, self.Hkv, self.hd)
            if cache is not None:
                if len(cache) > l:
                    k, v = torch.cat([cache[l][0], k], 1), torch.cat([cache[l][1], v], 1)
                    cache[l] = (k, v)
                else:
                    cache.append((k, v))
            g = self.H // self.Hkv
            kk, vv = k.repeat_interleave(g, 2), v.repeat_interleave(g, 2)
            att = torch.einsum("bthd,bshd->bhts", q, kk) / math.sqrt(self.hd) + mask
            o = torch.einsum("bhts,bshd->bthd", att.softmax(-1), vv).reshape(B, T, self.D)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = self.norm(x, w[p + "post_attention_layernorm.weight"])
            gate = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
            x = x + (gate * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
            if until == l:
                return x
        if last_only:
            x = x[:, -1:]
        return self.norm(x, w["model.norm.weight"]) @ self.head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True, help="comma-separated token ids")
    ap.add_argument("--layer", type=int, default=11)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    ids = [int(x) for x in a.ids.split(",")]
    import time

    t0 = time.time()
    m = Model(a.model)
    t_load = time.time() - t0
    t0 = time.time()
    h = m.forward(torch.tensor([ids]), until=a.layer)[0]
    t_act = time.time() - t0
    t0 = time.time()
    seq, tokens, gaps = list(ids), [], []
    for _ in range(a.steps):
        logits = m.forward(torch.tensor([seq]), last_only=True)[0, -1]
        top = logits.topk(2)
        tokens.append(int(top.indices[0]))
        gaps.append(float(top.values[0] - top.values[1]))
        seq.append(tokens[-1])
    t_gen = time.time() - t0
    print(json.dumps({
        "engine": "torch", "torch": torch.__version__, "threads": a.threads, "layer": a.layer, "ids": ids,
        "activations": h.tolist(), "tokens": tokens, "top2_gap": gaps,
        "seconds": {"load": round(t_load, 2), "activations": round(t_act, 2), "generate": round(t_gen, 2)},
    }))


if __name__ == "__main__":
    main()
