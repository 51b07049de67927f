"""Checkpoint averaging: the final model as the mean of the last K epochs' weights.

Averaging the weights of the last few checkpoints of one run (Junczys-Dowmunt et al. 2016;
OpenNMT's ``average_checkpoints``) gives a smoother model than any single epoch. During
training ``EpochWeights`` keeps the last K epochs' weights in the run's ``checkpoints/``
directory as ``epoch-NNNN.npz`` (the model's variables in ``get_weights()`` order, no optimizer
state); at the end ``average_epoch_weights`` loads their mean into the model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras
import numpy as np

from keras_s2s.errors import KerasS2SError

_EPOCH_FILE = re.compile(r"epoch-(\d+)\.npz")


def epoch_weights_path(directory: Path, epoch: int) -> Path:
    """The weights file of ``epoch`` (counted from 1) in ``directory``."""
    return directory / f"epoch-{epoch:04d}.npz"


def saved_epochs(directory: Path) -> list[int]:
    """Epochs (from 1) whose weights ``directory`` holds, ascending."""
    if not directory.is_dir():
        return []
    return sorted(int(match.group(1)) for path in directory.iterdir() if (match := _EPOCH_FILE.fullmatch(path.name)))


class EpochWeights(keras.callbacks.Callback):
    """Saves the model's weights after every epoch and keeps the files of the last ``keep`` epochs.

    A resumed run rewrites the files of the epochs it trains again, so the files always belong
    to the epochs of the run's history."""

    def __init__(self, directory: str | Path, keep: int) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        path = epoch_weights_path(self.directory, epoch + 1)
        partial = path.with_name(f".{path.stem}.partial.npz")
        np.savez(partial, *self.model.get_weights())
        os.replace(partial, path)
        for old in saved_epochs(self.directory):
            if old <= epoch + 1 - self.keep or old > epoch + 1:
                epoch_weights_path(self.directory, old).unlink()


def average_epoch_weights(model: keras.Model, directory: Path, epochs: list[int]) -> None:
    """Sets ``model``'s weights to the element-wise mean of those saved for ``epochs``.

    Raises KerasS2SError naming the missing file when an epoch's weights are not there, or
    when a file does not match the model's variables."""
    expected = [weight.shape for weight in model.get_weights()]
    total = [np.zeros(shape, dtype=np.float64) for shape in expected]
    for epoch in epochs:
        path = epoch_weights_path(directory, epoch)
        if not path.is_file():
            raise KerasS2SError(f"checkpoint averaging: the weights of epoch {epoch} are missing ({path})")
        with np.load(path) as saved:
            arrays = [saved[f"arr_{index}"] for index in range(len(saved.files))]
        if [array.shape for array in arrays] != expected:
            raise KerasS2SError(
                f"checkpoint averaging: {path} holds {len(arrays)} arrays that do not match the model's "
                f"{len(expected)} variables (was it written by another model?)"
            )
        for sum_, array in zip(total, arrays):
            sum_ += array
    model.set_weights([(sum_ / len(epochs)).astype(weight.dtype) for sum_, weight in zip(total, model.get_weights())])
