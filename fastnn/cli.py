"""The ``fastnn`` command line (also ``python -m fastnn``).

fastnn train [options]           train an MLP (default: on the embedded MNIST sample) and save it
fastnn evaluate MODEL [--data]   loss and accuracy of a saved model
fastnn predict MODEL INPUT       predicted classes for the rows of INPUT
fastnn warmup                    compile every kernel into the cache ahead of time
fastnn info                      versions, threads, BLAS and cache folders
fastnn demo                      an MLP learns XOR, then three interleaved spirals
fastnn experiment NAME           one of the course's experiments (--list lists them)
fastnn tune [options]            random hyperparameter search on a validation split
"""

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import optim
from .container import MLP
from .losses import SoftmaxCrossEntropy

DEFAULT_OUTPUT = "fastnn-model.npz"


class UsageError(Exception):
    """A bad flag value or input file: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like every other error here."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _check_folder(path, flag):
    """``UsageError`` unless the folder ``path`` is to be written into exists (checked before
    training, not after it)."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")


# -- data -------------------------------------------------------------------------------------
def load_data(spec, seed=0):
    """``(x_train, y_train), (x_test, y_test)`` for the ``--data`` value ``spec``.

    "sample": the MNIST sample shipped with fastnn (8,000 / 2,000 images, offline);
    "mnist" / "fashion-mnist": the full sets (downloaded once into the data cache);
    a folder: the four MNIST-format IDX files in it;
    an ``.npz`` file: arrays ``x_train, y_train, x_test, y_test``, or ``x, y`` (split 80/20,
    stratified, with ``seed``).
    """
    from . import datasets

    if spec == "sample":
        return datasets.load_mnist(sample=True)
    if spec == "mnist":
        return datasets.load_mnist()
    if spec == "fashion-mnist":
        return datasets.load_fashion_mnist()
    if os.path.isdir(spec):
        return datasets.load_mnist(path=spec, download=False)
    if spec.endswith(".npz") and os.path.isfile(spec):
        return _load_npz(spec, seed)
    raise UsageError(
        f"--data {spec!r}: expected sample, mnist, fashion-mnist, a folder of IDX files or an "
        ".npz file with x and y"
    )


def _load_npz(path, seed):
    from .preprocessing import train_val_test_split

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # np.load raises many kinds for a bad file
        raise UsageError(f"{path}: not a readable .npz file ({e})") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    if {"x", "y"} <= arrays.keys():
        x, y = arrays["x"], arrays["y"]
        train, _, test = train_val_test_split(x, y, val=0, test=0.2, stratify=True, seed=seed)
        return train, test
    raise UsageError(
        f"{path}: expected arrays x and y (or x_train, y_train, x_test, y_test), "
        f"found {', '.join(arrays) or 'none'}"
    )


def _flatten(x):
    x = np.asarray(x)
    return x.reshape(len(x), -1) if x.ndim > 2 else x


# -- train ------------------------------------------------------------------------------------
def _sizes(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _checkpoint_path(output):
    stem = output[:-4] if output.endswith(".npz") else output
    return stem + ".ckpt.npz"


def train(args):
    if getattr(args, "distributed", False):
        return _train_distributed(args)
    return _train_model(args)


def _train_distributed(args):
    """``train`` on every rank of MPI.COMM_WORLD (under mpiexec): only rank 0 prints and saves.

    An error on any rank is printed (by rank 0 when it has it too) and aborts the whole job
    with the usual exit code (2 for bad input, 1 otherwise), so no rank is left waiting."""
    from . import distributed
    from .training import TrainingDivergedError

    try:
        comm = distributed.world()
    except ImportError as e:
        raise UsageError(f"--distributed: {e}") from None
    distributed.abort_on_error(comm)
    if comm.Get_size() == 1:
        return _train_model(args, comm)
    try:
        return _train_model(args, comm)
    except (UsageError, ValueError, TypeError, OSError, TrainingDivergedError) as e:
        rank = comm.Get_rank()
        if rank != 0:
            # Rank 0 most often fails the same way: let it print the one line and abort.
            time.sleep(0.5)
        message = (
            str(e)
            if not isinstance(e, OSError) or not e.filename
            else f"{e.filename}: {e.strerror}"
        )
        print(f"fastnn train: error (rank {rank}): {message}", file=sys.stderr, flush=True)
        distributed._abort(comm, 1 if isinstance(e, TrainingDivergedError) else 2)


def _train_model(args, comm=None):
    from . import callbacks as cb
    from .files import save
    from .threads import set_num_threads
    from .training import evaluate, fit

    root = comm is None or comm.Get_rank() == 0
    if comm is not None:
        from functools import partial

        from . import distributed

        threads = "auto" if args.threads is None else args.threads
        fit = partial(distributed.fit, comm=comm, threads=threads)
        evaluate = partial(distributed.evaluate, comm=comm)
    elif args.threads is not None:
        set_num_threads(args.threads)
    say = print if root else _silent
    (x_train, y_train), (x_test, y_test) = load_data(args.data, args.seed)
    x_train, x_test = _flatten(x_train), _flatten(x_test)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    for x, y, part in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if x.ndim != 2 or len(x) == 0:
            raise UsageError(
                f"--data {args.data}: expected {part} inputs of shape (n >= 1, features), "
                f"got {x.shape}"
            )
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise UsageError(
                f"--data {args.data}: expected integer class labels (n,) in y, got "
                f"{y.dtype} {y.shape}"
            )
    if x_test.shape[1] != x_train.shape[1]:
        raise UsageError(
            f"--data {args.data}: the training inputs have {x_train.shape[1]} features, the "
            f"test inputs {x_test.shape[1]}"
        )
    if root:
        _check_folder(args.output, "--output")
        if args.checkpoint:
            _check_folder(args.checkpoint, "--checkpoint")
    classes = int(max(y_train.max(), y_test.max())) + 1
    sizes = [x_train.shape[1], *args.layers, classes]
    model = MLP(
        sizes,
        activation=args.activation,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        init=args.init,
        seed=args.seed,
        dtype=args.dtype,
    )
    opt = optim.get(args.optimizer, model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    checkpoint = args.checkpoint or _checkpoint_path(args.output)
    callbacks = [cb.ModelCheckpoint(checkpoint, every=args.checkpoint_every)]
    if args.schedule == "cosine":
        callbacks.append(cb.CosineLR())
    elif args.schedule == "step":
        callbacks.append(cb.StepLR(max(1, args.epochs // 3), 0.1))
    if args.patience is not None:
        monitor = "val_loss" if args.validation_split else "loss"
        callbacks.append(cb.EarlyStopping(monitor, args.patience, restore_best_weights=True))
    resume = None
    if args.resume:
        resume = checkpoint if args.resume is True else args.resume
        if not os.path.isfile(resume):
            raise UsageError(f"--resume: no checkpoint at {resume}")
    say(
        f"data: {args.data}, {len(x_train)} training and {len(x_test)} test rows of "
        f"{x_train.shape[1]} features, {classes} classes"
    )
    if comm is not None:
        say(f"distributed: {comm.Get_size()} ranks, global batch {args.batch_size}")
    say(
        f"model: {'-'.join(map(str, sizes))} {args.activation}, {model.num_parameters()} "
        f"parameters; {args.optimizer} lr {args.lr}, batch {args.batch_size}"
    )
    began = time.perf_counter()
    history = fit(
        model,
        x_train,
        y_train,
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split or None,
        callbacks=callbacks,
        verbose=0 if args.quiet else 1,
        seed=args.seed,
        resume=resume,
        clip_norm=args.clip_norm,
    )
    seconds = time.perf_counter() - began
    result = evaluate(model, x_test, y_test)
    if root:
        save(model, args.output)
    say(
        f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}  "
        f"({len(x_test)} images; {history.epochs} epochs in {seconds:.1f} s)"
    )
    say(f"saved the model to {args.output} (checkpoint: {checkpoint})")
    return 130 if history.interrupted else 0


def _silent(*args, **kwargs):
    pass


def _evaluate_cmd(args):
    from .files import load
    from .training import evaluate

    model = load(args.model)
    _, (x, y) = load_data(args.data, args.seed)
    result = evaluate(model, _flatten(x), y)
    print("  ".join(f"{k} {v:.4f}" for k, v in result.items()) + f"  ({len(x)} rows)")
    return 0


def _read_input(path):
    from . import datasets

    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as f:
                key = "x" if "x" in f.files else ("x_test" if "x_test" in f.files else None)
                if key is None:
                    raise UsageError(
                        f"{path}: expected an array named x, found {', '.join(f.files)}"
                    )
                return f[key]
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(f"{path}: not a readable .npz file ({e})") from None
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except Exception as e:
            raise UsageError(f"{path}: not a readable .npy file ({e})") from None
    images = datasets.read_idx(path)
    return images.astype(np.float32) / 255.0


def _predict_cmd(args):
    from .files import load

    model = load(args.model)
    x = _flatten(_read_input(args.input))
    if args.output:
        _check_folder(args.output, "--output")
    if x.ndim == 2 and x.dtype.kind in "biuf" and not np.isfinite(x).all():
        rows = int(np.count_nonzero(~np.isfinite(x).all(axis=1)))
        raise UsageError(f"{args.input}: the input holds NaN or infinite values (in {rows} rows)")
    if args.proba:
        out = model.predict_proba(x)
        lines = (" ".join(f"{p:.6f}" for p in row) for row in out)
    else:
        out = model.predict_classes(x)
        lines = (str(c) for c in out)
    if args.output:
        if args.output.endswith(".csv"):
            np.savetxt(args.output, out, delimiter=",", fmt="%.6g" if args.proba else "%d")
        else:
            np.save(args.output, out, allow_pickle=False)
        print(f"wrote {len(out)} predictions to {args.output}")
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _warmup_cmd(args):
    from .warmup import cache_dir, warmup

    seconds = warmup()
    print(f"compiled or loaded every kernel (float32 and float64) in {seconds:.1f} s")
    print(f"cache: {cache_dir()}")
    return 0


def _info_cmd(args):
    from .warmup import info

    rows = info()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


# -- demo -------------------------------------------------------------------------------------
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


def _demo_cmd(args):
    demo(seed=args.seed, epochs=args.epochs)
    return 0


# -- argument parsing -------------------------------------------------------------------------
def _experiment_cmd(args):
    from . import experiments

    if args.list:
        names = experiments.list_experiments()
        width = max(len(name) for name, _ in names)
        for name, description in names:
            print(f"{name.ljust(width)}  {description}")
        return 0
    if args.name is None:
        raise UsageError("name an experiment, or give --list to see them")
    key = args.name.replace("_", "-")
    if key not in experiments.EXPERIMENTS:
        names = ", ".join(experiments.EXPERIMENTS)
        raise UsageError(f"unknown experiment {args.name!r}; expected one of {names}")
    out = None if args.no_figures else Path(args.out) / key
    if out is not None:
        from .plotting import _pyplot

        try:
            _pyplot()  # a clear error now, not after the run, when matplotlib is missing
        except ImportError as e:
            raise UsageError(f"{e}; or run with --no-figures") from None
    start = time.perf_counter()
    result = experiments.run(key, quick=args.quick, seed=args.seed, out=out)
    seconds = time.perf_counter() - start
    for path in result.get("figures", []):
        print(f"wrote {path}")
    print(f"{key}: {seconds:.1f} s")
    return 0


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _number(accept, expected):
    """An argparse type: a float for which ``accept`` holds."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not accept(value):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    return parse


_fraction = _number(lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_positive_float = _number(lambda v: 0 < v < math.inf, "a number > 0")
_non_negative_float = _number(lambda v: 0 <= v < math.inf, "a number >= 0")


def _init_arg(text):
    try:
        return float(text)
    except ValueError:
        return text


def build_parser():
    parser = _Parser(
        prog="fastnn",
        description="Train multilayer neural networks fast on the CPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "train",
        help="train an MLP and save it (default: the embedded MNIST sample)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data",
        default="sample",
        help="sample, mnist, fashion-mnist, a folder of IDX files, or an .npz with x, y",
    )
    p.add_argument(
        "--layers", type=_sizes, default=[256, 128], help="hidden layer sizes, comma-separated"
    )
    p.add_argument(
        "--activation",
        default="relu",
        choices=["relu", "sigmoid", "tanh", "leaky_relu", "elu", "step"],
    )
    p.add_argument(
        "--init",
        type=_init_arg,
        default=None,
        help="he, xavier, ..., or a std; default: he for ReLU-like, xavier otherwise",
    )
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw"],
    )
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument(
        "--batchnorm", action="store_true", help="batch normalisation after each hidden Linear"
    )
    p.add_argument("--dropout", type=_fraction, default=0.2, help="dropout probability")
    p.add_argument("--weight-decay", type=_non_negative_float, default=0.0)
    p.add_argument(
        "--clip-norm",
        type=_positive_float,
        default=None,
        metavar="MAX",
        help="clip the gradient's global norm to MAX before each update (None: no clipping)",
    )
    p.add_argument(
        "--schedule",
        choices=["none", "step", "cosine"],
        default="none",
        help="learning-rate schedule",
    )
    p.add_argument(
        "--validation-split",
        type=_fraction,
        default=0.0,
        help="fraction of the training data held out for validation",
    )
    p.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="stop after this many epochs without improvement (and keep the best)",
    )
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="threads for the kernels and BLAS (default: all cores; with --distributed, "
        "each rank's share)",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help="where to save the model")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint written every N epochs, --checkpoint-every (default: OUTPUT with "
        ".ckpt.npz)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=1,
        metavar="N",
        help="write the checkpoint every N epochs",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from the checkpoint (default: the --checkpoint path)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch output")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI: run under mpiexec -n N (needs fastnn[mpi]); "
        "--batch-size is the global batch, --threads per rank (default: a share of the cores)",
    )
    p.set_defaults(run=train)

    p = sub.add_parser("evaluate", help="loss and accuracy of a saved model")
    p.add_argument("model", help="a file written by fastnn train or fastnn.save")
    p.add_argument("--data", default="sample", help="as for train; its test split is used")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.set_defaults(run=_evaluate_cmd)

    p = sub.add_parser("predict", help="predicted classes of the rows of INPUT")
    p.add_argument("model", help="a file written by fastnn train or fastnn.save")
    p.add_argument("input", help="an .npz with x, an .npy array, or an IDX images file")
    p.add_argument("--proba", action="store_true", help="print class probabilities instead")
    p.add_argument("--output", "-o", default=None, help="write to .npy or .csv instead of stdout")
    p.set_defaults(run=_predict_cmd)

    p = sub.add_parser("warmup", help="compile every kernel into the cache ahead of time")
    p.set_defaults(run=_warmup_cmd)

    p = sub.add_parser("info", help="versions, threads, BLAS and cache folders")
    p.set_defaults(run=_info_cmd)

    p = sub.add_parser("demo", help="train small networks on XOR and synthetic spirals")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--epochs", type=_positive_int, default=30, help="epochs on the spirals (default 30)"
    )
    p.set_defaults(run=_demo_cmd)

    p = sub.add_parser(
        "experiment",
        help="run one of the course's experiments (--list lists them)",
        description="Run one of the course's experiments: print its table, write its figures.",
    )
    p.add_argument("name", nargs="?", help="the experiment, e.g. gates or optimizer-paths")
    p.add_argument("--list", action="store_true", help="list the experiments and stop")
    p.add_argument(
        "--out",
        default="experiments",
        help="folder for the PNG figures (default: ./experiments/NAME)",
    )
    p.add_argument("--no-figures", action="store_true", help="print the table only")
    p.add_argument("--quick", action="store_true", help="a smaller run, in seconds")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    p.set_defaults(run=_experiment_cmd)

    from .tune import add_parser as add_tune_parser

    add_tune_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad argument reported by _Parser.error (2)
        return 0 if e.code is None else e.code
    from .training import TrainingDivergedError

    try:
        return args.run(args)
    except TrainingDivergedError as e:
        print(f"fastnn {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (UsageError, ValueError, TypeError, OSError) as e:
        # Bad flag values and bad files: one line, no traceback.
        message = (
            str(e)
            if not isinstance(e, OSError) or not e.filename
            else f"{e.filename}: {e.strerror}"
        )
        # One line, whatever the message: its own lines become "; "-separated parts.
        parts = [part.strip() for part in message.splitlines() if part.strip()]
        message = "".join(
            p + ("" if i == len(parts) - 1 else " " if p.endswith(":") else "; ")
            for i, p in enumerate(parts)
        )
        print(f"fastnn {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
