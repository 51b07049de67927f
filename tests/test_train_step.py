"""fit's train step traced per batch shape (keras_s2s.train_step), where the LSTMs unroll."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.models import MAX_UNROLLED_STEPS, BahdanauAttentionRNN, HoistedLSTM, build_seq2seq
from keras_s2s.train_step import PerShapeTrainFunction, UncompiledTestFunction, use_per_shape_train_function
from keras_s2s.training import compile_as_configured, compile_trainer

SOURCE_VOCAB, TARGET_VOCAB = 11, 13
WHILE_OPS = {"While", "StatelessWhile"}


def config(**fields) -> Seq2SeqConfig:
    defaults = dict(dataset="toy", embedding_size=8, hidden_size=16, cell="lstm", bidirectional=True,
                    attention="luong", dropout=0.0)
    return Seq2SeqConfig(**{**defaults, **fields})


def bucketed_batches(lengths=(3, 5, 5, 7), batch=4, seed=0) -> list:
    """((source_ids, decoder_input_ids), target_ids) batches, each [batch, length] int32 with
    right padding in some rows, one batch per entry of ``lengths`` (repeated lengths: one shape)."""
    rng = np.random.default_rng(seed)
    batches = []
    for length in lengths:
        real = rng.integers(1, length + 1, size=batch)
        pad = np.arange(length)[None, :] >= real[:, None]
        source = np.where(pad, 0, rng.integers(3, SOURCE_VOCAB, size=(batch, length))).astype(np.int32)
        target = np.where(pad, 0, rng.integers(3, TARGET_VOCAB, size=(batch, length))).astype(np.int32)
        decoder_input = np.concatenate([np.full((batch, 1), 1, np.int32), target[:, :-1]], axis=1)
        batches.append(((source, decoder_input), target))
    return batches


def as_dataset(batches) -> tf.data.Dataset:
    dataset = None
    for batch in batches:
        single = tf.data.Dataset.from_tensors(batch)
        dataset = single if dataset is None else dataset.concatenate(single)
    return dataset


def trained_weights(train_function_of, batches, epochs=2, **fields) -> tuple[keras.Model, list[np.ndarray]]:
    """(the trainer, its weights) after ``fit`` on ``batches`` from the same initial weights, the
    trainer's train_function set by ``train_function_of(trainer)``; ``fields`` change the config."""
    keras.utils.set_random_seed(0)
    trainer = build_seq2seq(config(**fields), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, learning_rate=0.01, jit_compile=False)
    train_function_of(trainer)
    trainer.fit(as_dataset(batches), epochs=epochs, verbose=0, shuffle=False)
    return trainer, trainer.get_weights()


def keras_own(trainer):
    trainer.make_train_function(force=True)


def graph_op_types(concrete_function) -> set[str]:
    """Op types of a concrete function's graph and of every function it calls."""
    graph = concrete_function.graph
    types = {op.type for op in graph.get_operations()}
    for function in graph._functions.values():
        types |= {node.op for node in function.definition.node_def}
    return types


def xla_compiled(concrete_function) -> bool:
    return concrete_function.function_def.attr["_XlaMustCompile"].b


def test_an_xla_trainer_evaluates_uncompiled_with_the_numbers_of_keras_own_compiled_evaluation():
    """XLA would compile the test step once per batch shape, for a validation split of a few
    batches per shape; evaluation (and so fit's validation) runs uncompiled instead, in at most
    two traces, and gives what Keras' own XLA-compiled evaluation gives."""
    keras.utils.set_random_seed(0)
    trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=True)
    assert trainer.jit_compile and isinstance(trainer.test_function, UncompiledTestFunction)
    batches = bucketed_batches(lengths=(3, 5, 7, 9))

    ours = trainer.evaluate(as_dataset(batches), verbose=0, return_dict=True)
    assert 1 <= len(trainer.test_function.traces) <= 2
    assert not any(xla_compiled(trace) for trace in trainer.test_function.traces)
    assert xla_compiled(tf.function(trainer.test_step, jit_compile=True).get_concrete_function(batches[0]))

    trainer.make_test_function(force=True)  # Keras' own, XLA-compiled (its trainer's jit_compile)
    keras_own = trainer.evaluate(as_dataset(batches), verbose=0, return_dict=True)
    assert ours.keys() == keras_own.keys()
    for name in ours:
        assert ours[name] == pytest.approx(keras_own[name], rel=1e-5), name


def test_a_trainer_without_xla_keeps_keras_own_test_function():
    trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=False)
    assert trainer.test_function is None  # Keras makes its own, uncompiled, at evaluate


def test_compile_trainer_gives_fit_the_per_shape_train_step():
    trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=False)
    assert isinstance(trainer.train_function, PerShapeTrainFunction)


@pytest.mark.parametrize("bucket_width, per_shape", [(4, True), (0, False)], ids=["bucketed", "unbucketed"])
def test_train_model_traces_the_step_per_shape_only_for_length_bucketed_batches(bucket_width, per_shape):
    """Unbucketed batches are padded to their longest row, so they come in many shapes."""
    bucketed_or_not = config(bucket_width=bucket_width)
    trainer = build_seq2seq(bucketed_or_not, SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_as_configured(trainer, bucketed_or_not, jit_compile=False)
    assert isinstance(trainer.train_function, PerShapeTrainFunction) is per_shape


def test_under_a_distribution_strategy_keras_own_train_step_stays():
    """A distributed iterator yields per-replica values, which only Keras' function handles."""
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
        compile_trainer(trainer, jit_compile=False)
        assert not use_per_shape_train_function(trainer)
    assert trainer.train_function is None


@pytest.mark.slow  # trains or traces a train step
@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_fit_with_the_per_shape_step_trains_the_weights_keras_own_step_does(attention):
    # 2 rows of length 5 after 4 rows of it: a bucket's partial last batch, which shares the
    # shape-generic trace. 2 rows of a new length 9 (a bucket smaller than a batch, or batches
    # sized by tokens) get a trace of their own.
    partial_last = bucketed_batches(lengths=(5,), batch=2, seed=1)
    new_length_fewer_rows = bucketed_batches(lengths=(9,), batch=2, seed=2)
    batches = bucketed_batches() + partial_last + new_length_fewer_rows
    _, expected = trained_weights(keras_own, batches, attention=attention)
    trainer, actual = trained_weights(lambda trainer: None, batches, attention=attention)
    assert trainer.train_function.traced_shapes == 4  # 4 rows of lengths 3, 5, 7; 2 rows of length 9
    assert trainer.train_function._any_shape.experimental_get_tracing_count() == 1
    for want, got in zip(expected, actual, strict=True):
        np.testing.assert_allclose(got, want, atol=2e-5)
    assert not all(np.allclose(w, v) for w, v in zip(expected, build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer.get_weights())), \
        "training changed the weights"


@pytest.mark.slow  # trains or traces a train step
def test_shapes_past_the_limit_share_one_trace_with_unknown_lengths_and_train_the_same():
    batches = bucketed_batches(lengths=(3, 5, 7, 9, 7))
    _, expected = trained_weights(keras_own, batches, epochs=1)

    def limited(trainer):
        trainer.train_function = PerShapeTrainFunction(trainer, max_shapes=2)

    trainer, actual = trained_weights(limited, batches, epochs=1)
    assert trainer.train_function.traced_shapes == 2
    for want, got in zip(expected, actual, strict=True):
        np.testing.assert_allclose(got, want, atol=2e-5)


@pytest.mark.slow  # trains or traces a train step
def test_a_per_shape_trace_has_no_while_loop_and_the_shape_generic_one_has():
    """The point of the per-shape trace: every LSTM (bidirectional encoder, decoder) unrolls."""
    batch = bucketed_batches(lengths=(6,))[0]
    trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=False)
    function = trainer.train_function
    assert not graph_op_types(function._per_shape.get_concrete_function(batch)) & WHILE_OPS
    unknown_length = tf.nest.map_structure(lambda t: tf.TensorSpec([None, None], tf.int32), batch)
    assert graph_op_types(function._any_shape.get_concrete_function(unknown_length)) & WHILE_OPS


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("zero_output_for_mask", [False, True], ids=["previous-output", "zero-output"])
def test_the_unrolled_hoisted_lstm_equals_its_while_loop(go_backwards, zero_output_for_mask):
    """Static time length (unrolled) and unknown time length (tf.while_loop): the same outputs,
    states and gradients, right-padded rows masked; longer than MAX_UNROLLED_STEPS stays a loop.
    (Backward with zero outputs for the mask is the backward half of a Bidirectional layer, which
    Keras' own unrolled loop gets wrong.)"""
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(3, 6, 8)), tf.float32)
    mask = tf.constant(np.arange(6)[None, :] < np.array([6, 4, 1])[:, None])
    layer = HoistedLSTM(16, return_sequences=True, return_state=True, go_backwards=go_backwards,
                        zero_output_for_mask=zero_output_for_mask)
    layer.build(inputs.shape)
    layer.set_weights([w + rng.normal(size=w.shape) * 0.3 for w in layer.get_weights()])

    def outputs_and_gradients(x, m):
        with tf.GradientTape() as tape:
            tape.watch(x)
            results = layer(x, mask=m, training=True)
            loss = sum(tf.reduce_sum(r ** 2) for r in results)
        return [*results, *tape.gradient(loss, [x, *layer.trainable_weights])]

    static = tf.function(outputs_and_gradients)
    unknown = tf.function(outputs_and_gradients, input_signature=[
        tf.TensorSpec([None, None, 8], tf.float32), tf.TensorSpec([None, None], tf.bool)])
    for want, got in zip(unknown(inputs, mask), static(inputs, mask), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert not graph_op_types(static.get_concrete_function(inputs, mask)) & WHILE_OPS
    assert graph_op_types(unknown.get_concrete_function()) & WHILE_OPS
    long_inputs = tf.zeros([1, MAX_UNROLLED_STEPS + 1, 8])
    assert graph_op_types(static.get_concrete_function(long_inputs, tf.ones([1, MAX_UNROLLED_STEPS + 1], tf.bool))) & WHILE_OPS


def test_an_xla_trainer_keeps_keras_own_train_step():
    """XLA compiles per concrete shape anyway; unrolled, it compiled slower and trained no faster."""
    trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=True)
    assert trainer.train_function is None


@pytest.mark.slow  # trains or traces a train step
def test_train_on_batch_with_numpy_arrays_runs_the_per_shape_step_as_keras_does():
    (source, decoder_input), target = bucketed_batches(lengths=(5,))[0]
    losses = {}
    for name, train_function_of in (("keras", keras_own), ("per shape", lambda trainer: None)):
        keras.utils.set_random_seed(0)
        trainer = build_seq2seq(config(), SOURCE_VOCAB, TARGET_VOCAB).trainer
        compile_trainer(trainer, learning_rate=0.01, jit_compile=False)
        train_function_of(trainer)
        losses[name] = [trainer.train_on_batch([source, decoder_input], target, return_dict=True)["loss"]
                        for _ in range(3)]
    np.testing.assert_allclose(losses["per shape"], losses["keras"], rtol=1e-5)
    assert losses["keras"][2] < losses["keras"][0]


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_a_trainer_with_nothing_to_unroll_keeps_keras_own_train_step(cell):
    """HoistedLSTM and the Bahdanau decoder unroll; Keras' GRU and SimpleRNN would pay the
    traces for nothing."""
    trainer = build_seq2seq(config(cell=cell), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(trainer, jit_compile=False)
    assert trainer.train_function is None
    with_bahdanau = build_seq2seq(config(cell=cell, attention="bahdanau"), SOURCE_VOCAB, TARGET_VOCAB).trainer
    compile_trainer(with_bahdanau, jit_compile=False)
    assert isinstance(with_bahdanau.train_function, PerShapeTrainFunction)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_unrolled_bahdanau_decoder_equals_its_while_loop(cell):
    """Outputs, contexts, attention weights, final states and gradients; padded memory masked."""
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.normal(size=(3, 5, 8)), tf.float32)
    memory = tf.constant(rng.normal(size=(3, 4, 6)), tf.float32)
    source_mask = tf.constant(np.arange(4)[None, :] < np.array([4, 2, 1])[:, None], tf.float32)
    states = [tf.constant(rng.normal(size=(3, 16)) * 0.5, tf.float32) for _ in range(2 if cell == "lstm" else 1)]
    layer = BahdanauAttentionRNN(cell, 16)
    layer.build(inputs.shape, [s.shape for s in states], memory.shape, source_mask.shape)

    def outputs_and_gradients(x, memory, source_mask, *states):
        with tf.GradientTape() as tape:
            tape.watch([x, memory])
            results = layer(x, list(states), memory, source_mask)
            loss = sum(tf.reduce_sum(r ** 2) for r in results)
        return [*results, *tape.gradient(loss, [x, memory, *layer.trainable_weights])]

    static = tf.function(outputs_and_gradients)
    unknown = tf.function(outputs_and_gradients, input_signature=[
        tf.TensorSpec([None, None, 8]), tf.TensorSpec([None, None, 6]), tf.TensorSpec([None, None]),
        *[tf.TensorSpec([None, 16]) for _ in states]])
    for want, got in zip(unknown(inputs, memory, source_mask, *states), static(inputs, memory, source_mask, *states), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert not graph_op_types(static.get_concrete_function(inputs, memory, source_mask, *states)) & WHILE_OPS
    assert graph_op_types(unknown.get_concrete_function()) & WHILE_OPS
