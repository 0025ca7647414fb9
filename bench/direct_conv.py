"""A direct convolution (no im2col) against fastnn's im2col + one BLAS product, forward only,
on the convolutions of SimpleConvNet and LeNet-5 (batch 100, float32), side by side.

    python bench/direct_conv.py [--threads 2] [--repeat 30]

The direct loop is the plain one, parallel over images: for each output channel and kernel
tap, out[n, m] += W[m, c, i, j] * x[n, c, i:i+OH, j:j+OW] over rows of the output, which
LLVM vectorises along the output row. It is here to measure, not in fastnn: the issue asked
for both to be measured on small kernels.
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit, prange

import fastnn as fn
from fastnn.kernels import conv
from fastnn.kernels.activations import IDENTITY

# name: (batch, in channels, height, width, out channels, kernel, padding)
CASES = {
    "SimpleConvNet conv": (100, 1, 28, 28, 30, 5, 0),
    "LeNet-5 conv 1": (100, 1, 28, 28, 6, 5, 2),
    "LeNet-5 conv 2": (100, 6, 14, 14, 16, 5, 0),
}


@njit(parallel=True, fastmath=True, cache=True)
def direct_forward(xp, W, b, y):
    """y[n, m] = b[m] + sum_c,i,j W[m, c, i, j] * xp[n, c, i:i+OH, j:j+OW]; xp padded."""
    n_n, c_n = xp.shape[0], xp.shape[1]
    m_n, kh, kw = W.shape[0], W.shape[2], W.shape[3]
    oh_n, ow_n = y.shape[2], y.shape[3]
    for n in prange(n_n):
        for m in range(m_n):
            out = y[n, m]
            for oh in range(oh_n):
                for ow in range(ow_n):
                    out[oh, ow] = b[m]
            for c in range(c_n):
                img = xp[n, c]
                for i in range(kh):
                    for j in range(kw):
                        w = W[m, c, i, j]
                        for oh in range(oh_n):
                            src = img[oh + i]
                            dst = out[oh]
                            for ow in range(ow_n):
                                dst[ow] += w * src[ow + j]


def median_ms(f, repeat):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args()
    fn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"# forward, batch 100, float32, {args.threads} threads, median of {args.repeat}, ms")
    print("| convolution | im2col + BLAS | direct | direct / im2col |")
    print("|---|---:|---:|---:|")
    for name, (n, c, h, w, m, k, pad) in CASES.items():
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        W = rng.standard_normal((m, c, k, k), dtype=np.float32)
        b = rng.standard_normal(m, dtype=np.float32)
        oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        col = np.empty((c * k * k, n, oh * ow), np.float32)
        z = np.empty((m, n, oh * ow), np.float32)
        y1 = np.empty((n, m, oh, ow), np.float32)
        y2 = np.empty_like(y1)

        def im2col_way(x=x, W=W, b=b, col=col, z=z, y1=y1, pad=pad):
            conv.conv2d_forward(x, W, b, 1, 1, pad, pad, IDENTITY, 0.0, col, z, y1)

        def direct_way(x=x, W=W, b=b, y2=y2, pad=pad):
            xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
            direct_forward(xp, W, b, y2)

        a, d = median_ms(im2col_way, args.repeat), median_ms(direct_way, args.repeat)
        np.testing.assert_allclose(y2, y1, rtol=1e-4, atol=1e-4)  # the same convolution
        print(f"| {name} | {a:.2f} | {d:.2f} | {d / a:.2f} |")


if __name__ == "__main__":
    main()
