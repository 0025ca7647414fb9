"""Everything users imported from fastnn before its code was reshaped into packages still
imports, from the same module names: the names below are the ``__all__`` of each public module
as it was (and, for the modules that had none, the names their docs list)."""

import importlib
import subprocess
import sys

import pytest

import fastnn

BEFORE = {
    "fastnn": [
        "BatchNorm",
        "Dropout",
        "ELU",
        "History",
        "Identity",
        "LeakyReLU",
        "Linear",
        "MLP",
        "MSELoss",
        "Maxout",
        "Module",
        "Parameter",
        "ReLU",
        "Sequential",
        "Sigmoid",
        "Softmax",
        "SoftmaxCrossEntropy",
        "Step",
        "Tanh",
        "TrainingDivergedError",
        "callbacks",
        "datasets",
        "evaluate",
        "fit",
        "get_num_threads",
        "gradcheck",
        "gradient_ascent",
        "gradient_descent",
        "graph",
        "init",
        "load",
        "numerical_gradient",
        "optim",
        "pack_parameters",
        "perceptron",
        "preprocessing",
        "save",
        "set_num_threads",
        "sum_squared_error",
        "threading_layer",
    ],
    "fastnn.optim": [
        "AdaDelta",
        "AdaGrad",
        "Adadelta",
        "Adagrad",
        "Adam",
        "AdamW",
        "Momentum",
        "Nesterov",
        "Optimizer",
        "RMSprop",
        "SGD",
        "clip_grad_norm",
        "get",
    ],
    "fastnn.datasets": [
        "ChecksumError",
        "DatasetNotFoundError",
        "FASHION_MNIST_CLASSES",
        "FASHION_MNIST_MD5",
        "FASHION_MNIST_MIRRORS",
        "IDX_DTYPES",
        "MNIST_FILES",
        "MNIST_MD5",
        "MNIST_MIRRORS",
        "SAMPLE_SIZE",
        "cache_dir",
        "load_fashion_mnist",
        "load_mnist",
        "load_mnist_sample",
        "read_idx",
        "write_idx",
    ],
    "fastnn.sklearn": ["MLPClassifier", "MLPRegressor"],
    "fastnn.distributed": [
        "abort_on_error",
        "evaluate",
        "fit",
        "parameters_agree",
        "share_of_cores",
        "world",
    ],
    # add_parser, the hook the command line used to take ``fastnn tune`` from the library,
    # is the command line's own now: fastnn.cli.tune.add_parser (see test_moved_names).
    "fastnn.tune": [
        "Choice",
        "LogUniform",
        "SearchFailedError",
        "SearchResult",
        "SerialExecutor",
        "Trial",
        "Uniform",
        "make_executor",
        "mlp_trial",
        "random_search",
        "search_rounds",
        "validation_split",
    ],
    "fastnn.perceptron": [
        "AND",
        "GATE_INPUTS",
        "NAND",
        "OR",
        "Perceptron",
        "PerceptronNetwork",
        "XOR",
        "train_perceptron",
        "train_xor_network",
    ],
    "fastnn.graph": ["AddLayer", "MulLayer", "Value"],
    "fastnn.experiments": [
        "EXPERIMENTS",
        "activation_table",
        "activations",
        "batchnorm",
        "gates",
        "gradient_descent",
        "hyperparameter_search",
        "list_experiments",
        "optimizer_paths",
        "optimizers_mnist",
        "overfitting",
        "preprocessing",
        "run",
        "symmetric_weights",
        "tuning",
        "vanishing_gradients",
        "weight_init_histograms",
        "weight_init_mnist",
    ],
    "fastnn.init": [
        "calculate_gain",
        "constant_",
        "he_normal_",
        "he_uniform_",
        "kaiming_normal_",
        "kaiming_uniform_",
        "lecun_normal_",
        "lecun_uniform_",
        "lsuv_",
        "normal_",
        "orthogonal_",
        "resolve",
        "uniform_",
        "xavier_normal_",
        "xavier_uniform_",
        "zeros_",
    ],
    "fastnn.callbacks": [
        "Callback",
        "CosineLR",
        "EarlyStopping",
        "ExponentialLR",
        "LearningRateSchedule",
        "ModelCheckpoint",
        "StepLR",
    ],
    "fastnn.preprocessing": [
        "MinMaxScaler",
        "Standardizer",
        "batches",
        "min_max_scale",
        "normalize",
        "one_hot",
        "split_indices",
        "train_val_test_split",
    ],
    "fastnn.files": [
        "FORMAT",
        "FastnnFile",
        "HEADER",
        "VERSION",
        "architecture",
        "build",
        "load",
        "model_from",
        "read",
        "save",
        "save_checkpoint",
        "write_npz",
    ],
    "fastnn.training": ["History", "TrainingDivergedError", "evaluate", "fit"],
    "fastnn.cli": ["main", "demo", "build_parser"],
}


@pytest.mark.parametrize("module", sorted(BEFORE))
def test_every_name_still_imports(module):
    if module == "fastnn.sklearn":
        pytest.importorskip("sklearn")
    mod = importlib.import_module(module)
    missing = [name for name in BEFORE[module] if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"
    # Each module's __all__ (where it has one) still lists them.
    if hasattr(mod, "__all__") and module not in ("fastnn.cli", "fastnn.files"):
        assert set(BEFORE[module]) <= set(mod.__all__), set(BEFORE[module]) - set(mod.__all__)


@pytest.mark.parametrize(
    "old, new",
    [
        ("fastnn.callbacks", "fastnn.training.callbacks"),
        ("fastnn.datasets", "fastnn.data.datasets"),
        ("fastnn.distributed", "fastnn.training.distributed"),
        ("fastnn.experiments", "fastnn.course.experiments"),
        ("fastnn.experiments.gates", "fastnn.course.experiments.gates"),
        ("fastnn.graph", "fastnn.course.graph"),
        ("fastnn.init", "fastnn.nn.init"),
        ("fastnn.perceptron", "fastnn.course.perceptron"),
        ("fastnn.preprocessing", "fastnn.data.preprocessing"),
    ],
)
def test_old_module_names_are_the_new_modules(old, new):
    # The very module, not a copy: monkeypatching one patches the other.
    assert importlib.import_module(old) is importlib.import_module(new)


def test_old_import_statements_work_in_a_fresh_interpreter():
    code = (
        "import fastnn.datasets, fastnn.callbacks\n"
        "from fastnn.callbacks import EarlyStopping\n"
        "from fastnn.experiments.gates import gates\n"
        "from fastnn.distributed import fit\n"
        "from fastnn.preprocessing import one_hot\n"
        "import fastnn.tune, fastnn.optim, fastnn.files\n"
        "print(fastnn.datasets.__name__, EarlyStopping.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fastnn.data.datasets", "fastnn.training.callbacks"]


def test_moved_names():
    from fastnn.cli.tune import add_parser

    assert callable(add_parser)
    assert not hasattr(fastnn.tune, "add_parser")  # the library no longer holds CLI code
