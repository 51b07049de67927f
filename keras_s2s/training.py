"""What ``model.fit`` needs: masked loss and accuracy (PAD never counts), optimizer, callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import time

import keras
from keras import ops

from keras_s2s.constants import PAD_ID


@keras.saving.register_keras_serializable(package="keras_s2s")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy over the non-PAD target tokens of a batch.

    y_true [B, T] int32 (PAD=0 ignored), y_pred [B, T, V] logits -> scalar.
    """

    def __init__(self, name: str = "masked_sparse_cross_entropy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        per_token = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), per_token.dtype)
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="keras_s2s")
class MaskedTokenAccuracy(keras.metrics.Metric):
    """Fraction of non-PAD target tokens whose argmax prediction is right (teacher-forced)."""

    def __init__(self, name: str = "token_accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.not_equal(y_true, PAD_ID)
        hits = ops.logical_and(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), mask)
        self.correct.assign_add(ops.sum(ops.cast(hits, "float32")))
        self.total.assign_add(ops.sum(ops.cast(mask, "float32")))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def compile_trainer(
    trainer: keras.Model,
    *,
    learning_rate: float = 1e-3,
    clipnorm: Optional[float] = 1.0,
    jit_compile: bool = True,
) -> None:
    """Adam + masked cross-entropy + masked token accuracy."""
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=MaskedSparseCrossEntropy(),
        metrics=[MaskedTokenAccuracy()],
        jit_compile=jit_compile,
    )


def training_callbacks(
    *, checkpoint_path: str | Path, history_path: str | Path, early_stopping_patience: Optional[int]
) -> list[keras.callbacks.Callback]:
    """Best checkpoint (weights, by val_loss), CSV history, optional early stopping."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(
            str(checkpoint_path), monitor="val_loss", save_best_only=True, save_weights_only=True
        ),
        keras.callbacks.CSVLogger(str(history_path)),
    ]
    if early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping_patience)
        )
    return callbacks


class ThroughputLogger(keras.callbacks.Callback):
    """Adds ``seconds`` and ``target_tokens_per_second`` (real tokens, PAD excluded) to each
    epoch's logs; put it before CSVLogger so the history file records them."""

    def __init__(self, target_tokens_per_epoch: int) -> None:
        super().__init__()
        self.target_tokens_per_epoch = target_tokens_per_epoch
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        self.epoch_seconds.append(seconds)
        if logs is not None:
            logs["seconds"] = seconds
            logs["target_tokens_per_second"] = self.target_tokens_per_epoch / seconds
