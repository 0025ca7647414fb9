"""``fastnn train``: train an MLP on a data set and save it; with ``--distributed``, on every
rank of an MPI job."""

import os
import sys
import time
from functools import partial

import numpy as np

from .. import optim, training
from ..data.sources import as_images, flatten, load_data
from ..errors import FastnnError
from ..files import save
from ..nn import ACTIVATIONS, CONV_NETS, MLP
from ..optim import OPTIMIZERS
from ..threads import set_num_threads
from ..training import TrainingDivergedError, callbacks, distributed
from . import tabular
from .args import DefaultsHelp, UsageError, check_folder, init_arg, integer, real, sizes

DEFAULT_OUTPUT = "fastnn-model.npz"
# The most parameters a model of fastnn train may have: 2**30 (4 GiB of float32 weights, and
# as much again for gradients and optimizer state). More is a typo in --layers, or labels that
# are not class numbers, rather than a network to train on a CPU.
MAX_PARAMETERS = 2**30


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train an MLP and save it (default: the embedded MNIST sample)",
        formatter_class=DefaultsHelp,
    )
    p.add_argument(
        "--data",
        default="sample",
        help="sample, mnist, fashion-mnist, a folder of IDX files, an .npz with x, y, or a "
        "CSV table of numbers (with --target)",
    )
    tabular.add_train_arguments(p)
    p.add_argument(
        "--model",
        choices=["mlp", *CONV_NETS],
        default="mlp",
        help="mlp (--layers, --activation, --init, --batchnorm shape it), or a convolutional "
        "network for images: simple-cnn (the course's SimpleConvNet) or lenet5",
    )
    p.add_argument(
        "--layers", type=sizes, default=[256, 128], help="hidden layer sizes, comma-separated"
    )
    p.add_argument(
        "--activation",
        default="relu",
        choices=list(ACTIVATIONS),
    )
    p.add_argument(
        "--init",
        type=init_arg,
        default=None,
        help="he, xavier, ..., or a std; default: he for ReLU-like, xavier otherwise",
    )
    p.add_argument(
        "--optimizer",
        default="adam",
        choices=list(OPTIMIZERS),
    )
    p.add_argument(
        "--lr", type=real("--lr", low=0.0, closed="right"), default=1e-3, help="learning rate"
    )
    p.add_argument("--batch-size", type=integer("--batch-size", low=1), default=64)
    p.add_argument("--epochs", type=integer("--epochs", low=1), default=20)
    p.add_argument(
        "--batchnorm", action="store_true", help="batch normalisation after each hidden Linear"
    )
    p.add_argument(
        "--dropout",
        type=real("--dropout", 0.0, 1.0, "left"),
        default=None,
        help="dropout probability (default: 0.2 for mlp, 0.5 before a conv net's last "
        "affine layer)",
    )
    p.add_argument("--weight-decay", type=real("--weight-decay", low=0.0), default=0.0)
    p.add_argument(
        "--clip-norm",
        type=real("--clip-norm", low=0.0, closed="right"),
        default=None,
        metavar="MAX",
        help="clip the gradient's global norm to MAX before each update (None: no clipping)",
    )
    p.add_argument(
        "--schedule",
        choices=["none", "step", "cosine"],
        default=None,
        help="learning-rate schedule (default: none for mlp, cosine for a conv net)",
    )
    p.add_argument(
        "--validation-split",
        type=real("--validation-split", 0.0, 1.0, "left"),
        default=0.0,
        help="fraction of the training data held out for validation",
    )
    p.add_argument(
        "--patience",
        type=integer("--patience", low=1),
        default=None,
        help="stop after this many epochs without improvement (and keep the best)",
    )
    p.add_argument("--seed", type=integer("--seed", low=0), default=0)
    p.add_argument(
        "--threads",
        type=integer("--threads", low=1),
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
        type=integer("--checkpoint-every", low=1),
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
    return p


def _checkpoint_path(output):
    stem = output[:-4] if output.endswith(".npz") else output
    return stem + ".ckpt.npz"


# --dropout and --schedule when not given: what trains each kind of model well on the MNIST
# sample (a conv net overfits 8,000 images; with these its test accuracy stays above 98 %).
MODEL_DEFAULTS = {"mlp": {"dropout": 0.2, "schedule": "none"}}
CONV_DEFAULTS = {"dropout": 0.5, "schedule": "cosine"}


def train(args):
    for name, value in MODEL_DEFAULTS.get(args.model, CONV_DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if getattr(args, "distributed", False):
        return _train_distributed(args)
    return _train_model(args)


def _train_distributed(args):
    """``train`` on every rank of MPI.COMM_WORLD (under mpiexec): only rank 0 prints and saves.

    An error on any rank is printed (by rank 0 when it has it too) and aborts the whole job
    with the usual exit code (2 for bad input, 1 otherwise), so no rank is left waiting."""
    try:
        comm = distributed.world()
    except ImportError as e:
        raise UsageError(f"--distributed: {e}") from None
    distributed.abort_on_error(comm)
    if comm.Get_size() == 1:
        return _train_model(args, comm)
    try:
        return _train_model(args, comm)
    except (FastnnError, OSError) as e:  # a user's error (a bug aborts with its traceback)
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
        distributed.abort(comm, 1 if isinstance(e, TrainingDivergedError) else 2)


def _train_model(args, comm=None):
    fit, evaluate = training.fit, training.evaluate
    root = comm is None or comm.Get_rank() == 0
    if comm is not None:
        threads = "auto" if args.threads is None else args.threads
        fit = partial(distributed.fit, comm=comm, threads=threads)
        evaluate = partial(distributed.evaluate, comm=comm)
    elif args.threads is not None:
        set_num_threads(args.threads)
    say = print if root else _silent
    if tabular.is_table(args.data):
        if args.model != "mlp":
            raise UsageError(
                f"--model {args.model}: a convolutional network takes images, "
                f"not a table ({args.data})"
            )
        data = tabular.training_data(args)
    else:
        tabular.refuse_table_flags(args)
        data = _training_data(args, images=args.model != "mlp")
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if root:
        check_folder(args.output, "--output")
        if args.checkpoint:
            check_folder(args.checkpoint, "--checkpoint")
    if args.model == "mlp":
        model, described = _mlp(args, x_train.shape[1], data.outputs)
    else:
        model = CONV_NETS[args.model](
            in_shape=x_train.shape[1:],
            classes=data.outputs,
            dropout=args.dropout,
            seed=args.seed,
            dtype=args.dtype,
        )
        described = f"{args.model} for {'x'.join(map(str, x_train.shape[1:]))} images"
    opt = optim.get(args.optimizer, model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    checkpoint = args.checkpoint or _checkpoint_path(args.output)
    hooks = [callbacks.ModelCheckpoint(checkpoint, every=args.checkpoint_every)]
    if args.schedule == "cosine":
        hooks.append(callbacks.CosineLR())
    elif args.schedule == "step":
        hooks.append(callbacks.StepLR(max(1, args.epochs // 3), 0.1))
    if args.patience is not None:
        monitor = "val_loss" if args.validation_split else "loss"
        hooks.append(callbacks.EarlyStopping(monitor, args.patience, restore_best_weights=True))
    resume = None
    if args.resume:
        resume = checkpoint if args.resume is True else args.resume
        if not os.path.isfile(resume):
            raise UsageError(f"--resume: no checkpoint at {resume}")
    batch = args.batch_size
    if data.tabular is not None and batch > len(x_train):
        # A small table: one batch of all its training rows rather than an error.
        batch = len(x_train)
        data.lines.append(f"batch: {batch}, every training row (--batch-size {args.batch_size})")
    for line in data.lines:
        say(line)
    if comm is not None:
        say(f"distributed: {comm.Get_size()} ranks, global batch {batch}")
    say(
        f"model: {described}, {model.num_parameters()} parameters; {args.optimizer} lr "
        f"{args.lr}, batch {batch}"
    )
    began = time.perf_counter()
    history = fit(
        model,
        x_train,
        y_train,
        loss=data.loss,
        optimizer=opt,
        epochs=args.epochs,
        batch_size=batch,
        validation_split=args.validation_split or None,
        callbacks=hooks,
        verbose=0 if args.quiet else 1,
        seed=args.seed,
        resume=resume,
        clip_norm=args.clip_norm,
    )
    seconds = time.perf_counter() - began
    if data.loss == "mse":
        figures = tabular.regression_report(model, data)
    else:
        result = evaluate(model, x_test, y_test)
        figures = f"test accuracy {result['accuracy']:.4f}  test loss {result['loss']:.4f}"
    if root:
        save(model, args.output, tabular=data.tabular)
    say(f"{figures}  ({len(x_test)} {data.unit}; {history.epochs} epochs in {seconds:.1f} s)")
    say(f"saved the model to {args.output} (checkpoint: {checkpoint})")
    return 130 if history.interrupted else 0


def _mlp(args, features, outputs):
    """(the MLP of --layers, --activation, ..., its description), within MAX_PARAMETERS."""
    sizes = [features, *args.layers, outputs]
    parameters = sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    if parameters > MAX_PARAMETERS:
        raise UsageError(
            f"--layers {','.join(map(str, args.layers))}: a {'-'.join(map(str, sizes))} "
            f"network has {parameters:,} parameters; fastnn train allows {MAX_PARAMETERS:,}"
        )
    model = MLP(
        sizes,
        activation=args.activation,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        init=args.init,
        seed=args.seed,
        dtype=args.dtype,
    )
    return model, f"{'-'.join(map(str, sizes))} {args.activation}"


def _training_data(args, images=False):
    """``TrainingData`` for images or an .npz of x and y (class labels): rows (n, features),
    or with ``images`` (a convolutional network) images (n, channels, height, width)."""
    (x_train, y_train), (x_test, y_test) = load_data(args.data, args.seed)
    shape = as_images if images else flatten
    x_train, x_test = shape(x_train), shape(x_test)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    for x, y, part in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if x.ndim != (4 if images else 2) or len(x) == 0:
            expected = "(n >= 1, channels, height, width)" if images else "(n >= 1, features)"
            raise UsageError(
                f"--data {args.data}: expected {part} inputs of shape {expected}, got {x.shape}"
            )
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise UsageError(
                f"--data {args.data}: expected integer class labels (n,) in y, got "
                f"{y.dtype} {y.shape}"
            )
    if x_test.shape[1:] != x_train.shape[1:]:
        if images:
            train, test = ("x".join(map(str, x.shape[1:])) for x in (x_train, x_test))
            raise UsageError(
                f"--data {args.data}: the training images are {train}, the test images {test}"
            )
        raise UsageError(
            f"--data {args.data}: the training inputs have {x_train.shape[1]} features, the "
            f"test inputs {x_test.shape[1]}"
        )
    classes = int(max(y_train.max(), y_test.max())) + 1
    if classes > len(x_train):
        raise UsageError(
            f"--data {args.data}: the labels go up to {classes - 1}, more classes than the "
            f"{len(x_train)} training rows; expected class numbers 0, 1, ..., k - 1"
        )
    lines = [
        f"data: {args.data}, {len(x_train)} training and {len(x_test)} test "
        + (
            f"images of {'x'.join(map(str, x_train.shape[1:]))}"
            if images
            else f"rows of {x_train.shape[1]} features"
        )
        + f", {classes} classes"
    ]
    return tabular.TrainingData(
        x_train, y_train, x_test, y_test, classes, lines=lines, unit="images"
    )


def _silent(*args, **kwargs):
    pass
