#!/usr/bin/env python3
"""PyTorch (CPU) reference for bench/train.ts: tokens/s of one Llama training step
(forward, backward, clip_grad_norm_, AdamW) in the same configuration as nla's
(RMSNorm, rotate-half RoPE, causal attention, SwiGLU, tied embeddings, f32).

Prints one JSON line: {"bench":"train","engine":"torch",...,"tokens_per_s":...}.
Works with torch 1.13 (Debian bookworm's python3-torch): attention is written out, since
F.scaled_dot_product_attention only exists from 2.0 on (it is used when present).
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


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
    def __init__(self, d, h, hidden):
        super().__init__()
        self.h = h
        self.n1 = RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
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
        k = self.k(y).view(B, T, self.h, hd).transpose(1, 2)
        v = self.v(y).view(B, T, self.h, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if hasattr(F, 'scaled_dot_product_attention'):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            a = torch.softmax(s.masked_fill(mask, float('-inf')), dim=-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
        y = self.n2(x)
        return x + self.down(F.silu(self.gate(y)) * self.up(y))


class Llama(nn.Module):
    def __init__(self, vocab, d, layers, heads, hidden, T):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d, heads, hidden) for _ in range(layers)])
        self.norm = RMSNorm(d)
        cos, sin = rope_tables(T, d // heads)
        self.register_buffer('cos', cos, persistent=False)
        self.register_buffer('sin', sin, persistent=False)
        self.register_buffer('mask', torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)
        for n, p in self.named_parameters():
            if p.dim() >= 2:
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
    ap.add_argument('--hidden', type=int, default=704)
    ap.add_argument('--vocab', type=int, default=4096)
    ap.add_argument('--seq', type=int, default=128)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--steps', type=int, default=6)
    ap.add_argument('--label', default='as installed')
    a = ap.parse_args()
    torch.manual_seed(0)
    model = Llama(a.vocab, a.dim, a.layers, a.heads, a.hidden, a.seq)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': other, 'weight_decay': 0.0}], lr=3e-4, betas=(0.9, 0.95))
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
        'bench': 'train', 'engine': 'torch', 'variant': a.label, 'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'env': {k: os.environ[k] for k in ('OMP_WAIT_POLICY', 'OPENBLAS_CORETYPE', 'OMP_NUM_THREADS') if k in os.environ},
        'layers': a.layers, 'dim': a.dim, 'heads': a.heads, 'hidden': a.hidden, 'vocab': a.vocab, 'seq': a.seq, 'batch': a.batch,
        'params': sum(p.numel() for p in model.parameters()),
        'steps': a.steps, 'ms_per_step': round(dt * 1000, 2), 'best_ms_per_step': round(best * 1000, 2),
        'tokens_per_s': round(a.batch * a.seq / dt, 1), 'best_tokens_per_s': round(a.batch * a.seq / best, 1),
    }), flush=True)


if __name__ == '__main__':
    main()
