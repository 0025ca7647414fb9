"""fastnn's scikit-learn estimators against scikit-learn's own MLPs, with default arguments, on
scikit-learn's bundled datasets (issue 16's drop-in check).

    python bench/sklearn_compare.py [--seeds 5] [--threads 2] [--datasets iris ...]

For each dataset (digits, breast cancer, wine, iris: MLPClassifier, accuracy; diabetes:
MLPRegressor, R^2) and each seed: a stratified 70/30 split (plain for diabetes), features
standardised on the training part (and the regression target too, as scikit-learn's docs
advise), then both estimators fitted with default arguments and ``random_state=seed``. Prints
mean +- std of the test score over the seeds, the median fit time, the ratio of the medians
(scikit-learn / fastnn: above 1, fastnn is faster) and the median number of epochs. Each
fastnn fit runs once before the timed ones so that compiling stays out of the timing.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastnn
import fastnn.sklearn as fsk

DATASETS = {
    "digits": (datasets.load_digits, "classifier"),
    "breast cancer": (datasets.load_breast_cancer, "classifier"),
    "wine": (datasets.load_wine, "classifier"),
    "iris": (datasets.load_iris, "classifier"),
    "diabetes": (datasets.load_diabetes, "regressor"),
}


def split(load, kind, seed):
    x, y = load(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y if kind == "classifier" else None
    )
    scaler = StandardScaler().fit(x_tr)
    x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
    if kind == "regressor":
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    return x_tr, x_te, y_tr, y_te


def run(estimator, data):
    x_tr, x_te, y_tr, y_te = data
    began = time.perf_counter()
    estimator.fit(x_tr, y_tr)
    seconds = time.perf_counter() - began
    return estimator.score(x_te, y_te), seconds, estimator.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    with threadpool_limits(args.threads):
        fastnn.set_num_threads(args.threads)
        for name in args.datasets:
            load, kind = DATASETS[name]
            ours, theirs = (
                (fsk.MLPClassifier, MLPClassifier)
                if kind == "classifier"
                else (fsk.MLPRegressor, MLPRegressor)
            )
            run(ours(random_state=0), split(load, kind, 0))  # compile
            results = {"fastnn": [], "scikit-learn": []}
            for seed in range(args.seeds):
                data = split(load, kind, seed)
                results["fastnn"].append(run(ours(random_state=seed), data))
                results["scikit-learn"].append(run(theirs(random_state=seed), data))
            row = [name, "accuracy" if kind == "classifier" else "R^2"]
            medians = {}
            for who in ("fastnn", "scikit-learn"):
                scores = [r[0] for r in results[who]]
                medians[who] = statistics.median(r[1] for r in results[who])
                epochs = statistics.median(r[2] for r in results[who])
                row += [
                    f"{np.mean(scores):.3f} +- {np.std(scores):.3f}",
                    f"{medians[who]:.3f}",
                    f"{epochs:g}",
                ]
            row.append(f"{medians['scikit-learn'] / medians['fastnn']:.1f}")
            rows.append(row)
    print(
        f"# default arguments, {args.seeds} seeds, stratified 70/30 split, standardised, "
        f"{args.threads} threads; fastnn {fastnn.__version__}"
    )
    print(
        "| dataset | score | fastnn | fit s | epochs | scikit-learn | fit s | epochs | speed-up |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
