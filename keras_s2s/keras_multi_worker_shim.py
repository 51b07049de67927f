"""A shim that lets Keras 3 ``model.fit`` run under ``tf.distribute.MultiWorkerMirroredStrategy``.

Upstream bug: https://github.com/keras-team/keras/issues/20585 (open). In Keras 3.10-3.15
(and upstream main as of 2026-11), ``keras/src/backend/tensorflow/trainer.py`` fails in two
places as soon as the strategy spans more than one worker:

1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the first distributed
   batch by MEAN-reducing it across replicas, eagerly; the collective reduction of a
   ``PerReplica`` batch fails with "Attempt to convert a value (PerReplica:{...}) with an
   unsupported type ... to a Tensor". The build only needs the batch's structure and
   shapes, so the shim builds from the first local replica's batch instead.
2. ``reduce_per_replica`` reduces every log value with ``strategy.reduce("MEAN", v, axis=0)``
   in multi-worker mode; the logs (loss, metrics) are scalars, so this fails with "Invalid
   reduction dimension 0 for input with 0 dimensions". The shim reduces scalars with
   ``axis=None`` (the mean across replicas), and leaves everything else to Keras.

With both, every worker of a loopback two-worker run logs the same losses, equal to a
single-process run with the same global batch (tests/test_distribute.py).

``apply()`` patches only the Keras versions whose source was checked (``PATCHED_VERSIONS``)
and only in multi-worker mode (a single-machine ``MirroredStrategy`` takes Keras' own path).
To delete the shim once Keras is fixed: run ``tests/test_distribute.py -m slow``; its test
``test_keras_without_the_shim_still_fails_under_multi_worker`` fails on a fixed Keras. Then
delete this module, its call in ``keras_s2s.distribute`` and that test.
"""

from __future__ import annotations

import warnings

PATCHED_VERSIONS = ((3, 10), (3, 15))
"""Keras minor versions (first, last, inclusive) known to need the shim."""

_APPLIED = "_keras_s2s_multi_worker_shim"


def keras_needs_shim(version: str | None = None) -> bool:
    """True for the Keras versions (default: the installed one) that the shim was checked on."""
    if version is None:
        import keras

        version = keras.__version__
    major_minor = tuple(int(part) for part in version.split(".")[:2])
    first, last = PATCHED_VERSIONS
    return first <= major_minor <= last


def apply() -> bool:
    """Patches Keras' TensorFlow trainer for multi-worker ``fit``; idempotent. Returns whether
    the shim is in place (False on a Keras version it was not checked on, with a warning)."""
    import keras
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, _APPLIED, False):
        return True
    if not keras_needs_shim(keras.__version__):
        warnings.warn(
            f"keras {keras.__version__} is outside the versions keras_s2s's multi-worker shim was checked on "
            f"({'.'.join(map(str, PATCHED_VERSIONS[0]))}-{'.'.join(map(str, PATCHED_VERSIONS[1]))}), so it is not "
            "applied; if model.fit fails with 'PerReplica' or 'Invalid reduction dimension 0', see "
            "https://github.com/keras-team/keras/issues/20585 and keras_s2s/keras_multi_worker_shim.py",
            stacklevel=2,
        )
        return False
    _patch_symbolic_build(trainer)
    _patch_reduce_per_replica(trainer)
    setattr(trainer, _APPLIED, True)
    return True


def _patch_symbolic_build(trainer) -> None:
    """Fix 1: build from the first local replica's batch (``trainer``: Keras' TF trainer module)."""
    original = trainer.TensorFlowTrainer._maybe_symbolic_build

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        import tensorflow as tf
        from keras.src import tree

        for _, _, batches in iterator:
            data_batch = tree.map_structure(
                lambda x: strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x,
                next(batches),
            )
            break
        return original(self, data_batch=data_batch)

    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build


def _patch_reduce_per_replica(trainer) -> None:
    """Fix 2: reduce scalar logs with ``axis=None``. The trainer's step functions look the
    module-level ``reduce_per_replica`` up when they are traced, so replacing it is enough."""
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not trainer._collective_all_reduce_multi_worker(strategy):
            return original(values, strategy, reduction)
        from keras.src import tree

        def reduce(value):
            local = strategy.experimental_local_results(value)[0] if trainer._is_per_replica_instance(value) else value
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tree.map_structure(reduce, values)

    trainer.reduce_per_replica = reduce_per_replica
