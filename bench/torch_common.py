"""Shared by bench/train_torch.py and bench/matmul_torch.py: thread pinning and what BLAS runs."""
import ctypes
import os

import torch


def pin_threads(n):
    """Pin PyTorch's intra-op threads to n (the core count, passed by the node side).

    Debian's torch 1.13 starts with whatever OpenMP reports, which was 1 on a 2-core machine;
    an unpinned count made runs incomparable."""
    n = n or os.cpu_count() or 1
    torch.set_num_threads(n)
    return torch.get_num_threads()


def blas_info():
    """The BLAS torch's matmul calls: OpenBLAS's own config string (with the kernel family it
    picked) when that is the loaded library."""
    torch.matmul(torch.rand(8, 8), torch.rand(8, 8))  # load the BLAS
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
    if "USE_MKL=ON" in cfg:
        return "MKL"
    # Debian's reference BLAS (libblas3) is ~50x slower than OpenBLAS: say so loudly.
    return (libs[0] + " (not OpenBLAS: apt-get install libopenblas0-pthread)") if libs else "unknown"


def env_info():
    keys = ("OMP_WAIT_POLICY", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return {k: os.environ[k] for k in keys if k in os.environ}
