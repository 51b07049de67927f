"""The masked loss and metric of training: PAD target tokens never count.

Both are registered as ``keras_s2s>MaskedSparseCrossEntropy`` / ``keras_s2s>MaskedTokenAccuracy``:
importing this module is what lets ``keras.models.load_model`` read a saved trainer.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_s2s.constants import PAD_ID


@keras.saving.register_keras_serializable(package="keras_s2s")
class MaskedSparseCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy over the non-PAD target tokens of a batch.

    y_true [B, T] int32 (PAD=0 ignored), y_pred [B, T, V] logits -> scalar.

    ``label_smoothing`` = e: the target puts 1 - e on the reference token and e / V on every
    token, i.e. per token (1 - e) * NLL(reference) + e * mean over the vocabulary of -log p.

    Under a tf.distribute strategy with several replicas (``keras-s2s train --strategy``), each
    replica gets a slice of the global batch and returns its share of the global batch's
    mean: its own tokens' cross-entropy divided by the token count of all replicas (one
    scalar all-reduce). Keras sums the replicas' gradients and logs the replicas' mean of
    ``N x`` each share, so both are exactly those of the whole batch on one device.
    """

    def __init__(self, name: str = "masked_sparse_cross_entropy", label_smoothing: float = 0.0, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        per_token = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        if self.label_smoothing:
            uniform = -ops.mean(ops.log_softmax(y_pred, axis=-1), axis=-1)
            per_token = (1.0 - self.label_smoothing) * per_token + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), per_token.dtype)
        return ops.sum(per_token * mask) / ops.maximum(_global_token_count(ops.sum(mask)), 1.0)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _global_token_count(count):
    """``count`` summed over the replicas of the strategy running this step (the count itself
    outside one or with a single replica). Not ``loss / N``, Keras' scaling for the losses it
    reduces itself, which would give the mean of the replicas' means: slices of a padded
    batch hold different numbers of real tokens."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return count
    return context.all_reduce("sum", tf.stop_gradient(count))


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
