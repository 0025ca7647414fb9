"""``fastnn demo``: an MLP learns XOR, then three interleaved spirals."""

import sys
import time

import numpy as np

from .. import optim
from ..nn import MLP, SoftmaxCrossEntropy
from .args import integer


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="train small networks on XOR and synthetic spirals")
    p.add_argument(
        "--seed", type=integer("--seed", low=0), default=0, help="random seed (default 0)"
    )
    p.add_argument(
        "--epochs",
        type=integer("--epochs", low=1),
        default=30,
        help="epochs on the spirals (default 30)",
    )
    p.set_defaults(run=demo_cmd)


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
    return float(np.mean(model.predict_classes(x) == y))


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
    pred = model.predict_classes(x)
    for xi, yi, pi in zip(x.astype(int), y, pred, strict=True):
        print(f"  {xi[0]} XOR {xi[1]} = {pi}  (expected {yi})", file=out)
    xor_acc = float(np.mean(pred == y))

    print("\nThree spirals, 3,000 points, 2-64-64-3 ReLU network, Adam, batch 32:", file=out)
    xs, ys = _spirals(1000, 3, rng)
    split = rng.permutation(len(xs))
    train_idx, test_idx = split[:2400], split[2400:]
    model = MLP([2, 64, 64, 3], seed=rng.integers(2**32))
    opt = optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        value = _train(model, loss, opt, xs[train_idx], ys[train_idx], 32, rng)
        if epoch == 1 or epoch % 5 == 0 or epoch == epochs:
            acc = _accuracy(model, xs[test_idx], ys[test_idx])
            print(f"  epoch {epoch:3d}  loss {value:.4f}  test accuracy {acc:.3f}", file=out)
    spiral_acc = _accuracy(model, xs[test_idx], ys[test_idx])
    print(f"  {epochs} epochs in {time.perf_counter() - start:.2f} s", file=out)
    return {"xor_accuracy": xor_acc, "spirals_test_accuracy": spiral_acc}


def demo_cmd(args):
    demo(seed=args.seed, epochs=args.epochs)
    return 0
