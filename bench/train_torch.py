#!/usr/bin/env python3
"""PyTorch (CPU) reference for bench/train.ts: ms per Llama training step (forward, backward,
clip_grad_norm_, AdamW) in the same configuration as nla's (RMSNorm, rotate-half RoPE, causal
attention, SwiGLU, tied embeddings, f32). One process is one round; the node side runs several,
alternating with nla's, and takes the median.

The strongest stock formulation torch 1.13 (Debian bookworm's python3-torch) has: AdamW with
foreach=True (multi-tensor; fused=True is CUDA-only and from 2.0 on), intra-op threads pinned
to the cores. F.scaled_dot_product_attention exists only from 2.0 on and is used when present;
on 1.13 attention is written out, materialising the [B, H, T, T] scores and probabilities.

A timed step: sample the batch (torch.randint), forward, cross-entropy, backward, clip, AdamW,
zero_grad, loss.item(). Prints one JSON line: {"bench":"train-round","engine":"torch",...}.
"""
import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_common import blas_info, env_info, pin_threads

SDPA = hasattr(F, 'scaled_dot_product_attention')


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(T, hd, theta=10000.0):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    f = torch.outer(torch.arange(T).float(), inv)  # [T, hd/2]
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Block(nn.Module):
    def __init__(self, d, h, hidden, kv=None, bias=False):
        super().__init__()
        self.h = h
        self.kv = kv or h
        kvd = self.kv * (d // h)
        self.n1 = RMSNorm(d)
        self.q = nn.Linear(d, d, bias=bias)
        self.k = nn.Linear(d, kvd, bias=bias)
        self.v = nn.Linear(d, kvd, bias=bias)
        self.o = nn.Linear(d, d, bias=False)
        self.n2 = RMSNorm(d)
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        hd = D // self.h
        y = self.n1(x)
        q = self.q(y).view(B, T, self.h, hd).transpose(1, 2)
        k = self.k(y).view(B, T, self.kv, hd).transpose(1, 2)
        v = self.v(y).view(B, T, self.kv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv != self.h:  # grouped-query attention: each KV head serves h / kv query heads
            k = k.repeat_interleave(self.h // self.kv, 1)
            v = v.repeat_interleave(self.h // self.kv, 1)
        if SDPA:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            a = torch.softmax(s.masked_fill(mask, float('-inf')), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        y = self.n2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(nn.Module):
    def __init__(self, vocab, d, layers, heads, hidden, T, kv=None, bias=False):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d, heads, hidden, kv, bias) for _ in range(layers)])
        self.norm = RMSNorm(d)
        cos, sin = rope_tables(T, d // heads)
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)
        self.register_buffer('mask', torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 1 and n.endswith('.bias'):
                nn.init.zeros_(p)
            elif p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if n.endswith(('o.weight', 'down.weight')) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.emb(ids)
        for b in self.blocks:
            x = b(x, self.cos[:T], self.sin[:T], self.mask[:T, :T])
        return self.norm(x) @ self.emb.weight.t()  # tied head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--dim', type=int, default=256)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--kv', type=int, default=0, help='KV heads (0: = heads)')
    ap.add_argument('--bias', type=int, default=0, help='1: q/k/v biases (Qwen2)')
    ap.add_argument('--hidden', type=int, default=704)
    ap.add_argument('--vocab', type=int, default=4096)
    ap.add_argument('--seq', type=int, default=128)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--label', default='as installed')
    ap.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (0: os.cpu_count())')
    a = ap.parse_args()
    threads = pin_threads(a.threads)
    blas = blas_info()
    torch.manual_seed(0)
    model = Llama(a.vocab, a.dim, a.layers, a.heads, a.hidden, a.seq, a.kv or a.heads, a.bias == 1)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': other, 'weight_decay': 0.0}], lr=3e-4, betas=(0.9, 0.95), foreach=True)
    g = torch.Generator().manual_seed(1)

    def step():
        ids = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    best = min(times)
    print(json.dumps({
        'bench': 'train-round', 'engine': 'torch', 'variant': a.label, 'torch': torch.__version__,
        'threads': threads, 'blas': blas, 'env': env_info(),
        'attention': 'F.scaled_dot_product_attention' if SDPA else 'materialised [B, H, T, T] (no SDPA in this torch)',
        'optimizer': 'AdamW(foreach=True)',
        'layers': a.layers, 'dim': a.dim, 'heads': a.heads, 'kv': a.kv or a.heads, 'bias': a.bias, 'hidden': a.hidden, 'vocab': a.vocab, 'seq': a.seq, 'batch': a.batch,
        'params': sum(p.numel() for p in model.parameters()),
        'warmup': a.warmup, 'steps': a.steps, 'ms_per_step': round(dt * 1000, 2), 'best_ms_per_step': round(best * 1000, 2),
        'step_ms': [round(t * 1000, 1) for t in times],
        'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }), flush=True)


if __name__ == '__main__':
    main()
