#!/usr/bin/env python3
"""PyTorch (CPU, float32) side of bench/generate.ts on a model directory: batch sampling with a
KV cache, as nla's generate does (one forward of [B, 1] per step after the prompt, temperature 1,
sampled from the softmax). The model is scripts/large_reference.py's hand-written Qwen2/Llama
forward over the same safetensors file (bf16 weights widened to f32). One process is one round.

Prints one JSON line: {"bench":"generate-round","engine":"torch",...} with ms/step, tokens/s
and the process's peak RSS (ru_maxrss)."""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from large_reference import Model  # noqa: E402
from torch_common import blas_info, env_info, pin_threads  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--bos", type=int, required=True)
    ap.add_argument("--label", default="as installed")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    threads = pin_threads(a.threads)
    blas = blas_info()
    torch.set_grad_enabled(False)
    t0 = time.perf_counter()
    m = Model(a.model)
    load_s = time.perf_counter() - t0
    g = torch.Generator().manual_seed(7)

    def run(n):
        cache = []
        ids = torch.full((a.batch, 1), a.bos, dtype=torch.long)
        for _ in range(n):
            logits = m.forward(ids, cache=cache, last_only=True)[:, -1]
            ids = torch.multinomial(logits.softmax(-1), 1, generator=g)

    run(4)  # warm-up (allocator, BLAS threads)
    t0 = time.perf_counter()
    run(a.tokens)
    secs = time.perf_counter() - t0
    print(json.dumps({
        "bench": "generate-round", "engine": "torch", "variant": a.label, "torch": torch.__version__, "threads": threads, "blas": blas, "env": env_info(),
        "batch": a.batch, "steps": a.tokens, "load_s": round(load_s, 2), "seconds": round(secs, 2),
        "ms_per_step": round(1000 * secs / a.tokens, 2), "tokens_per_s": round(a.batch * a.tokens / secs, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }), flush=True)


if __name__ == "__main__":
    main()
