#!/usr/bin/env python3
"""PyTorch (CPU) reference for bench/matmul.ts: f32 matmul GFLOP/s for the same shapes and
layouts (transposed operands are transposed views, as in nla), timed the same way: a warm-up
call, then `rounds` rounds of at least `min-ms`, best round reported.

Prints one JSON line per shape: {"bench":"matmul","engine":"torch","label":...,"gflops":...}.
"""
import argparse
import ctypes
import json
import time

import torch


def blas_info():
    """The BLAS torch's matmul calls: OpenBLAS's own config string when it is the loaded library."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
    except OSError:
        libs = []
    for lib in libs:
        if "openblas" in lib:
            try:
                ob = ctypes.CDLL(lib)
                ob.openblas_get_config.restype = ctypes.c_char_p
                return f"{ob.openblas_get_config().decode()} ({ob.openblas_get_num_threads()} threads)"
            except (OSError, AttributeError):
                return lib
    cfg = torch.__config__.show()
    return "MKL" if "USE_MKL=ON" in cfg else (libs[0] if libs else "unknown")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", required=True, help="JSON list of {label,m,n,k,aT,bT}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-ms", type=float, default=250)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.matmul(torch.rand(8, 8), torch.rand(8, 8))  # load the BLAS
    blas = blas_info()
    print(f"# torch {torch.__version__}: {torch.get_num_threads()} intra-op threads, BLAS: {blas}")
    for s in json.loads(args.shapes):
        m, n, k = s["m"], s["n"], s["k"]
        a = torch.rand(k, m).t() if s["aT"] else torch.rand(m, k)
        b = torch.rand(n, k).t() if s["bT"] else torch.rand(k, n)
        torch.matmul(a, b)
        t = time.perf_counter()
        torch.matmul(a, b)
        once = time.perf_counter() - t
        reps = max(1, min(200, int(args.min_ms / 1000 / max(once, 1e-5)) + 1))
        best, rounds = float("inf"), []
        for _ in range(args.rounds):
            t = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            dt = (time.perf_counter() - t) / reps
            rounds.append(dt)
            best = min(best, dt)
        rounds.sort()
        med = rounds[len(rounds) // 2]
        print(json.dumps({
            "bench": "matmul", "engine": "torch", "label": s["label"], "m": m, "n": n, "k": k,
            "gflops": round(2 * m * n * k / best / 1e9, 1), "ms": round(best * 1e3, 2),
            "ms_median": round(med * 1e3, 2), "blas": blas,
        }), flush=True)


if __name__ == "__main__":
    main()
