#!/usr/bin/env python3
"""PyTorch (CPU) reference for bench/matmul.ts: f32 matmul time for the same shapes and layouts
(transposed operands are transposed views, as in nla), timed the same way: one warm-up call,
then back-to-back calls for at least `min-ms`, mean per call. One process is one round; the
node side runs several, alternating with nla's, and takes the median.

Prints one JSON line per shape: {"bench":"matmul-round","engine":"torch","label":...,"ms":...}.
"""
import argparse
import json
import time

import torch

from torch_common import blas_info, env_info, pin_threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True, help="JSON list of {label,m,n,k,aT,bT}")
    ap.add_argument("--min-ms", type=float, default=250)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: os.cpu_count())")
    ap.add_argument("--config", default="as installed")
    args = ap.parse_args()
    threads = pin_threads(args.threads)
    torch.manual_seed(0)
    blas = blas_info()
    print(f"# torch {torch.__version__}: {threads} intra-op threads, BLAS: {blas}")
    for s in json.loads(args.shapes):
        m, n, k = s["m"], s["n"], s["k"]
        a = torch.rand(k, m).t() if s["aT"] else torch.rand(m, k)
        b = torch.rand(n, k).t() if s["bT"] else torch.rand(k, n)
        torch.matmul(a, b)
        t = time.perf_counter()
        torch.matmul(a, b)
        once = time.perf_counter() - t
        reps = max(1, min(200, int(args.min_ms / 1000 / max(once, 1e-5)) + 1))
        t = time.perf_counter()
        for _ in range(reps):
            torch.matmul(a, b)
        dt = (time.perf_counter() - t) / reps
        print(json.dumps({
            "bench": "matmul-round", "engine": "torch", "config": args.config, "label": s["label"], "m": m, "n": n, "k": k,
            "ms": round(dt * 1e3, 3), "gflops": round(2 * m * n * k / dt / 1e9, 1), "reps": reps,
            "threads": threads, "blas": blas, "env": env_info(), "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
