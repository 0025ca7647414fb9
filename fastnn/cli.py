"""The ``fastnn`` command line.

fastnn demo [--seed N] [--epochs N]    an MLP learns XOR, then classifies synthetic data
"""

import argparse
import sys
import time

import numpy as np

from . import optim
from .container import MLP
from .losses import SoftmaxCrossEntropy


def _train(model, loss, opt, x, y, batch_size, rng):
    """One epoch of mini-batch training, shuffled without replacement; returns the mean loss."""
    order = rng.permutation(len(x))
    total = 0.0
    for lo in range(0, len(x), batch_size):
        idx = order[lo : lo + batch_size]
        total += loss.forward(model.forward(x[idx]), y[idx]) * len(idx)
        model.backward(loss.backward(), input_grad=False)
        opt.step()
    return total / len(x)


def _accuracy(model, x, y):
    model.eval()
    try:
        return float(np.mean(model.forward(x).argmax(axis=1) == y))
    finally:
        model.train()


def _spirals(n_per_class, classes, rng):
    """Interleaved spirals in 2-D: a classic problem no linear model solves."""
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, n_per_class)
        # Two turns each, offset by a third of a turn: the arms interleave.
        theta = np.linspace(0, 4 * np.pi, n_per_class) + c * 2 * np.pi / classes
        theta += rng.normal(0, 0.15, n_per_class)
        xs.append(np.c_[r * np.sin(theta), r * np.cos(theta)])
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def demo(seed=0, epochs=30, out=sys.stdout):
    """Train an MLP on XOR and on three interleaved spirals; return the final accuracies."""
    rng = np.random.default_rng(seed)
    print("XOR with a 2-8-2 tanh network, Adam, full batch:", file=out)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    model = MLP([2, 8, 2], activation="tanh", seed=rng.integers(2**32))
    loss = SoftmaxCrossEntropy()
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        _train(model, loss, opt, x, y, 4, rng)
    pred = model.forward(x).argmax(axis=1)
    for xi, yi, pi in zip(x.astype(int), y, pred, strict=True):
        print(f"  {xi[0]} XOR {xi[1]} = {pi}  (expected {yi})", file=out)
    xor_acc = float(np.mean(pred == y))

    print("\nThree spirals, 3,000 points, 2-64-64-3 ReLU network, Adam, batch 32:", file=out)
    xs, ys = _spirals(1000, 3, rng)
    split = rng.permutation(len(xs))
    train, test = split[:2400], split[2400:]
    model = MLP([2, 64, 64, 3], seed=rng.integers(2**32))
    opt = optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        value = _train(model, loss, opt, xs[train], ys[train], 32, rng)
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            acc = _accuracy(model, xs[test], ys[test])
            print(f"  epoch {epoch:3d}  loss {value:.4f}  test accuracy {acc:.3f}", file=out)
    spiral_acc = _accuracy(model, xs[test], ys[test])
    print(f"  {epochs} epochs in {time.perf_counter() - start:.2f} s", file=out)
    return {"xor_accuracy": xor_acc, "spirals_test_accuracy": spiral_acc}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="train small networks on XOR and synthetic spirals")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--epochs", type=int, default=30, help="epochs on the spirals (default 30)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.epochs < 1:
            parser.error(f"--epochs must be at least 1, got {args.epochs}")
        demo(seed=args.seed, epochs=args.epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
