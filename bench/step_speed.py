"""Time one training step (forward, loss, backward, Adam) of three MLPs.

    python bench/step_speed.py [--threads N]

Median of 7 loops (5 steps of the wide network, 100 of the others), milliseconds per step.
The asv benchmark ``bench_layers.TrainingStep`` tracks the same steps across commits.
"""

import argparse
import statistics
import sys
import time

import numpy as np

import fastnn as fn

CONFIGS = [
    ([784, 1024, 1024, 10], 512, 5),
    ([784, 100, 100, 100, 100, 100, 10], 100, 100),
    ([784, 50, 10], 100, 100),
]


def step_ms(sizes, batch, steps, rng):
    model = fn.MLP(sizes, seed=0)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.Adam(model.parameters(), lr=1e-3)
    x = rng.random((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch)

    def step():
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    step()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - start) / steps * 1e3)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads is not None:
        fn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    parts = [f"{'-'.join(map(str, s))} b{b}: {step_ms(s, b, n, rng):.3f} ms" for s, b, n in CONFIGS]
    print(f"{fn.get_num_threads()} threads | " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
