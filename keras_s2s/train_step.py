"""The step functions ``fit`` runs: the train step traced once per batch shape, so that the
recurrences unroll, and (``UncompiledTestFunction``, at the end) evaluation without XLA.

Keras' train function reads each batch from the iterator inside its own trace and traces the
step with ``reduce_retracing``, so the time dimension is unknown in the graph and every LSTM
runs as a ``tf.while_loop``. Length-bucketed batches come in a handful of shapes (the G2P
configs: 8 lengths, each with its full batches and one smaller last batch), and a trace per
shape lets ``HoistedLSTM`` and ``BahdanauAttentionRNN`` unroll their time steps: the Luong
attention config (no XLA) trained 1.11–1.25× faster in four rounds, the Bahdanau one 1.08–1.13×
in two (benchmarks/RESULTS.md, 2026-12-06). The tensors and updates are the same ops in another
arrangement. ``train_model`` fills a bucket's smaller last batch of an epoch up to the full batch
(``keras_s2s.data.teacher_forcing_dataset``'s ``full_batches``); other datasets' smaller
batches share the shape-generic trace: a trace each cost more first-epoch time than unrolling
them saves (the attention config on 40k CMUdict pairs, AVX2 VM: 9 traces instead of 11, first
epoch 78 s against 90-103 s; in later epochs its 4 such batches took 0.5 of 49 s). A batch of
lengths not traced yet gets its own trace whatever its rows (a bucket smaller than one batch;
batches sized by tokens). ``train_model`` keeps Keras' step for unbucketed batches
(``bucket_width`` 0), whose shapes are many: the toy config's 4-epoch training took 12.5-13.0 s
with Keras' step against 15.2-18.6 s traced per shape.

Not under XLA (``jit_compile``): XLA compiles a step per concrete batch shape anyway, and there
the unrolled steps trained no faster (the plain config: 29.0k–31.7k against 31.1k–31.6k target
tokens/s; the attention config on an AVX2 VM: 8,354 against 7,828–8,748) while compiling them
took ~1 minute (plain) to ~3 minutes (attention, AVX2) more in the first epoch.
"""

from __future__ import annotations

from typing import Iterator

import keras
import tensorflow as tf

from keras_s2s.models import BahdanauAttentionRNN, HoistedLSTM

# Distinct batch shapes that get their own trace; batches of any further new shape share one
# trace with unknown lengths (Keras' own behaviour), so an unbucketed run (each batch padded to
# its longest row) cannot pile up traces.
MAX_TRACED_SHAPES = 64


class PerShapeTrainFunction:
    """A ``train_function`` for Keras' ``fit``: called with the batch iterator, runs
    ``trainer.train_step`` on its next batch and returns the step's logs (StopIteration when the
    iterator is exhausted), as Keras' own does with ``steps_per_execution`` 1.

    The first ``max_shapes`` distinct batch shapes each get a trace with static shapes (XLA
    compiled when the trainer is); later new shapes go to one shape-generic trace, and so does
    a batch with fewer rows than a traced one of the same lengths (a length bucket's last batch
    of an epoch: one per bucket, not worth a trace each). Only for a
    trainer outside any ``tf.distribute`` strategy: a distributed iterator yields per-replica
    values, which Keras' own function handles (``use_per_shape_train_function`` says when).
    """

    def __init__(self, trainer: keras.Model, max_shapes: int = MAX_TRACED_SHAPES) -> None:
        # autograph off as in Keras' own: train_step's Python control flow is static
        self._per_shape = tf.function(trainer.train_step, jit_compile=trainer.jit_compile, autograph=False)
        self._any_shape = tf.function(
            trainer.train_step, jit_compile=trainer.jit_compile, autograph=False, reduce_retracing=True)
        self._max_shapes = max_shapes
        self._shapes: set[tuple] = set()
        self._rows_by_lengths: dict[tuple, int] = {}  # the batch shape without its rows -> most rows traced

    @property
    def traced_shapes(self) -> int:
        """How many batch shapes have a trace of their own."""
        return len(self._shapes)

    def __call__(self, iterator: Iterator) -> dict:
        batch = next(iterator)
        # None: train_on_batch's missing sample weights
        shape = tuple(None if tensor is None else tuple(tensor.shape) for tensor in tf.nest.flatten(batch))
        rows, lengths = shape[0][0], tuple(None if dims is None else dims[1:] for dims in shape)
        fewer_rows = rows < self._rows_by_lengths.get(lengths, 0)
        if not fewer_rows and (shape in self._shapes or len(self._shapes) < self._max_shapes):
            self._shapes.add(shape)
            self._rows_by_lengths[lengths] = rows
            return self._per_shape(batch)
        return self._any_shape(batch)


def use_per_shape_train_function(trainer: keras.Model) -> bool:
    """Give a compiled ``trainer`` a ``PerShapeTrainFunction`` when it has a layer that unrolls
    (``HoistedLSTM``: the LSTM configs, ``BahdanauAttentionRNN``: every Bahdanau decoder; Keras'
    GRU and SimpleRNN would only pay the traces) and is neither XLA-compiled, nor run eagerly,
    nor under a ``tf.distribute`` strategy (then Keras' own function stays). -> whether it got
    one."""
    if trainer.jit_compile or _needs_keras_own_functions(trainer):
        return False
    # _flatten_layers: every nested layer, Bidirectional's two directions included (Keras 3)
    unrolling = (HoistedLSTM, BahdanauAttentionRNN)
    if not any(isinstance(layer, unrolling) for layer in trainer._flatten_layers(include_self=False)):
        return False
    trainer.train_function = PerShapeTrainFunction(trainer)  # compile() resets it to None; fit keeps a set one
    return True


class UncompiledTestFunction:
    """A ``test_function`` for Keras' ``evaluate`` (and ``fit``'s validation), called as Keras
    calls its own: runs ``trainer.test_step`` on the iterator's next batch, not XLA-compiled, one
    trace shared by every batch shape.

    For an XLA-compiled trainer, whose own test function XLA compiles once per batch shape:
    ~2.4-3.1 s each for the demo's model, whose validation split is 13 batches in 5 shapes. The
    first calls of those 5 shapes took 13.4 s compiled and 2.0 s not, and then 0.37 s against
    0.41 s per pass over the five (benchmarks/RESULTS.md, "validation without XLA"), so a
    validation split would need hundreds of batches per shape before compiling paid.
    """

    def __init__(self, trainer: keras.Model) -> None:
        self._step = tf.function(trainer.test_step, autograph=False, reduce_retracing=True)

    @property
    def traces(self) -> list:
        """The step's concrete functions so far (one per batch shape until a trace with
        unknown lengths covers the rest)."""
        return self._step._list_all_concrete_functions()

    def __call__(self, iterator: Iterator) -> dict:
        return self._step(next(iterator))


def use_uncompiled_test_function(trainer: keras.Model) -> bool:
    """Give a compiled, XLA-compiled ``trainer`` an ``UncompiledTestFunction``, unless it runs
    eagerly or under a ``tf.distribute`` strategy (whose iterators yield per-replica values;
    Keras' own function stays). -> whether it got one."""
    if not trainer.jit_compile or _needs_keras_own_functions(trainer):
        return False
    trainer.test_function = UncompiledTestFunction(trainer)  # compile() resets it to None; evaluate keeps a set one
    return True


def _needs_keras_own_functions(trainer: keras.Model) -> bool:
    """Whether only Keras' own step functions fit ``trainer``: run eagerly, or compiled under a
    ``tf.distribute`` strategy (its iterators yield per-replica values)."""
    return trainer.run_eagerly or tf.distribute.has_strategy()
