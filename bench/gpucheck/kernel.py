"""A trivial numba CUDA kernel: if it compiles and runs, NeMo's numba TDT loss can too. Imported only on CUDA."""

from numba import cuda


@cuda.jit
def add_one(a):
    i = cuda.grid(1)
    if i < a.size:
        a[i] += 1.0
