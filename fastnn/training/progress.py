"""What ``fit`` prints, as callbacks: a progress bar per epoch on a terminal, else one line
every ``log_every`` epochs. ``fit`` adds one of them when ``verbose`` is on."""

import sys

from .callbacks import Callback

_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}


def format_logs(epoch, epochs, logs):
    """One line for an epoch: ``epoch 3/10  loss 0.1234  accuracy 0.9600  lr 0.001  1.20 s``."""
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for k, v in logs.items():
        if k == "lr":
            parts.append(f"lr {v:.3g}")
        elif k == "seconds":
            parts.append(f"{v:.2f} s")
        else:
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)


def _figures(logs):
    return "  ".join(
        f"{_SHORT.get(k, k)} {v:.4f}" for k, v in logs.items() if k not in ("lr", "seconds")
    )


class EpochLog(Callback):
    """Print one line per epoch (every ``every`` epochs, and the last)."""

    def __init__(self, every=1):
        self.every = every

    def on_epoch_end(self, trainer, epoch, logs):
        if (epoch + 1) % self.every == 0 or epoch + 1 == trainer.epochs:
            trainer.log(format_logs(epoch, trainer.epochs, logs))


class ProgressBar(Callback):
    """A tqdm bar per epoch, with the running loss and accuracy, closed with the epoch's
    figures."""

    def __init__(self):
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=trainer.steps,
            desc=f"epoch {epoch + 1}/{trainer.epochs}",
            unit="step",
            file=sys.stdout,
            leave=True,
            mininterval=0.2,
            bar_format=(
                "{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
                "{postfix}"
            ),
        )

    def on_step_end(self, trainer, step, loss, accuracy):
        bar = self.bar
        bar.update(1)
        # Formatting the figures costs more than the update: do it only when the bar redraws.
        if bar.n == bar.total or bar.last_print_n == bar.n:
            logs = {"loss": loss} if accuracy is None else {"loss": loss, "accuracy": accuracy}
            bar.set_postfix_str(_figures(logs), refresh=False)

    def on_epoch_end(self, trainer, epoch, logs):
        self.bar.set_postfix_str(_figures(logs), refresh=True)
        self.close()

    def on_train_end(self, trainer):
        self.close()  # an interrupted epoch's bar

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
