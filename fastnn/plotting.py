"""Plots of training histories (the optional ``plot`` extra: matplotlib, drawn headless)."""

from .errors import InvalidValueError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'fastnn[plot]'") from None
    # Draw off-screen unless the user already chose a backend.
    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history, metrics=None):
    """A Figure with one panel per figure of ``history`` (loss, accuracy, ...): the training
    curve and, when there is one, the validation curve, against the epoch (1-based)."""
    plt = _pyplot()
    names = metrics or [
        k for k in history.keys() if not k.startswith("val_") and k not in ("lr", "seconds")
    ]
    if not names:
        raise InvalidValueError("the history holds no figures to plot")
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    epochs = range(1, history.epochs + 1)
    for ax, name in zip(axes[0], names, strict=True):
        if name not in history:
            raise InvalidValueError(
                f"the history has no {name!r}; it has {', '.join(history.keys())}"
            )
        ax.plot(epochs, history[name], marker="o", markersize=3, label="train")
        if "val_" + name in history:
            ax.plot(epochs, history["val_" + name], marker="o", markersize=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig
