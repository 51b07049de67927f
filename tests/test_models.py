"""Encoder, decoder and trainer (functional Keras models): names, shapes, step-by-step decoding
equals teacher forcing, PAD masking in the encoder, save/load; masked loss and accuracy."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import LOGITS, SOURCE_IDS, TOKEN_IDS
from keras_s2s.losses import MaskedSparseCrossEntropy, MaskedTokenAccuracy
from keras_s2s.models import (
    HoistedLSTM,
    PhiloxDropout,
    build_decoder,
    build_encoder,
    build_seq2seq,
    float32_copy,
    make_rnn_layer,
    next_state_name,
    split_trainer,
    state_names,
)
from keras_s2s.training import compile_trainer

SOURCE_VOCAB = 11
TARGET_VOCAB = 13
EMBEDDING = 8
HIDDEN = 16
BATCH = 3
CELLS = ("lstm", "gru", "rnn")
CONFIGS = list(itertools.product(CELLS, (1, 2)))


def model_config(**fields) -> Seq2SeqConfig:
    """A config with this module's tiny sizes (the toy dataset needs no files)."""
    return Seq2SeqConfig(dataset="toy", embedding_size=EMBEDDING, hidden_size=HIDDEN, **fields)


def config_id(config):
    cell, layers = config
    return f"{cell}-{layers}layer"


@pytest.fixture(scope="module", params=CONFIGS, ids=config_id)
def seq2seq(request):
    cell, num_layers = request.param
    keras.utils.set_random_seed(0)
    model = build_seq2seq(model_config(cell=cell, num_layers=num_layers), SOURCE_VOCAB, TARGET_VOCAB)
    return cell, num_layers, model


def source_batch():
    return tf.constant([[4, 5, 6, 7, 8], [9, 10, 4, 0, 0], [5, 0, 0, 0, 0]], tf.int32)


def token_batch():
    return tf.constant([[2, 4, 5, 6, 7, 8], [2, 9, 10, 11, 12, 4], [2, 3, 4, 5, 0, 0]], tf.int32)


def numpy_dict(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


# --- names and shapes -----------------------------------------------------------------------
def test_state_names_list_h_then_c_per_layer():
    assert state_names("lstm", 2) == ["state_h_0", "state_c_0", "state_h_1", "state_c_1"]
    assert state_names("gru", 2) == ["state_h_0", "state_h_1"]
    assert state_names("rnn", 1) == ["state_h_0"]
    assert next_state_name("state_c_1") == "next_state_c_1"


def test_encoder_outputs_are_the_named_final_states(seq2seq):
    cell, num_layers, model = seq2seq
    states = model.encoder({SOURCE_IDS: source_batch()})
    assert sorted(states) == sorted(state_names(cell, num_layers))
    for value in states.values():
        assert tuple(value.shape) == (BATCH, HIDDEN)


def test_decoder_outputs_logits_and_next_states(seq2seq):
    cell, num_layers, model = seq2seq
    names = state_names(cell, num_layers)
    tokens = token_batch()
    states = {n: tf.zeros((BATCH, HIDDEN)) for n in names}
    outputs = model.decoder({TOKEN_IDS: tokens, **states})
    assert sorted(outputs) == sorted([LOGITS, *(next_state_name(n) for n in names)])
    assert tuple(outputs[LOGITS].shape) == (BATCH, tokens.shape[1], TARGET_VOCAB)
    for name in names:
        assert tuple(outputs[next_state_name(name)].shape) == (BATCH, HIDDEN)


def test_decoder_input_names_are_token_ids_and_the_states(seq2seq):
    cell, num_layers, model = seq2seq
    assert sorted(t.name for t in model.decoder.inputs) == sorted([TOKEN_IDS, *state_names(cell, num_layers)])
    assert [t.name for t in model.encoder.inputs] == [SOURCE_IDS]


def test_trainer_maps_source_and_decoder_input_to_logits(seq2seq):
    _, _, model = seq2seq
    logits = model.trainer([source_batch(), token_batch()])
    assert tuple(logits.shape) == (BATCH, 6, TARGET_VOCAB)


def test_trainer_is_the_decoder_run_on_the_encoder_states(seq2seq):
    _, _, model = seq2seq
    states = model.encoder({SOURCE_IDS: source_batch()})
    expected = model.decoder({TOKEN_IDS: token_batch(), **states})[LOGITS]
    np.testing.assert_allclose(model.trainer([source_batch(), token_batch()]), expected, atol=1e-6)


def test_encoder_and_decoder_share_weights_with_the_trainer(seq2seq):
    _, _, model = seq2seq
    trainer_weights = {id(w) for w in model.trainer.weights}
    assert {id(w) for w in model.encoder.weights} <= trainer_weights
    assert {id(w) for w in model.decoder.weights} <= trainer_weights
    assert len(trainer_weights) == len(model.encoder.weights) + len(model.decoder.weights)


# --- the key property: one decoder for teacher forcing and for stepping ------------------------
def test_stepping_the_decoder_one_token_at_a_time_equals_the_whole_sequence(seq2seq):
    cell, num_layers, model = seq2seq
    names = state_names(cell, num_layers)
    tokens = token_batch()
    initial = model.encoder({SOURCE_IDS: source_batch()})
    whole = np.asarray(model.decoder({TOKEN_IDS: tokens, **initial})[LOGITS])

    state = {n: initial[n] for n in names}
    stepped = []
    for t in range(tokens.shape[1]):
        outputs = model.decoder({TOKEN_IDS: tokens[:, t : t + 1], **state})
        assert tuple(outputs[LOGITS].shape) == (BATCH, 1, TARGET_VOCAB)
        stepped.append(np.asarray(outputs[LOGITS]))
        state = {n: outputs[next_state_name(n)] for n in names}
    np.testing.assert_allclose(np.concatenate(stepped, axis=1), whole, atol=1e-5)


def test_final_next_state_of_the_whole_sequence_equals_the_last_step_state(seq2seq):
    cell, num_layers, model = seq2seq
    names = state_names(cell, num_layers)
    tokens = token_batch()
    initial = model.encoder({SOURCE_IDS: source_batch()})
    whole = numpy_dict(model.decoder({TOKEN_IDS: tokens, **initial}))
    state = dict(initial)
    for t in range(tokens.shape[1]):
        outputs = model.decoder({TOKEN_IDS: tokens[:, t : t + 1], **state})
        state = {n: outputs[next_state_name(n)] for n in names}
    for n in names:
        np.testing.assert_allclose(np.asarray(state[n]), whole[next_state_name(n)], atol=1e-5)


def test_initial_state_changes_the_decoder_output(seq2seq):
    cell, num_layers, model = seq2seq
    names = state_names(cell, num_layers)
    zeros = {n: tf.zeros((BATCH, HIDDEN)) for n in names}
    ones = {n: tf.ones((BATCH, HIDDEN)) * 0.5 for n in names}
    a = np.asarray(model.decoder({TOKEN_IDS: token_batch(), **zeros})[LOGITS])
    b = np.asarray(model.decoder({TOKEN_IDS: token_batch(), **ones})[LOGITS])
    assert not np.allclose(a, b, atol=1e-4)


# --- PAD masking in the encoder --------------------------------------------------------------
def test_encoder_state_of_a_right_padded_source_equals_the_unpadded_source(seq2seq):
    _, _, model = seq2seq
    padded = numpy_dict(model.encoder({SOURCE_IDS: source_batch()}))
    for row, length in enumerate((5, 3, 1)):
        alone = numpy_dict(model.encoder({SOURCE_IDS: source_batch()[row : row + 1, :length]}))
        for name, value in alone.items():
            np.testing.assert_allclose(padded[name][row : row + 1], value, atol=1e-5, err_msg=name)


def test_extra_padding_does_not_change_the_encoder_state(seq2seq):
    _, _, model = seq2seq
    short = numpy_dict(model.encoder({SOURCE_IDS: tf.constant([[4, 5, 0]], tf.int32)}))
    long = numpy_dict(model.encoder({SOURCE_IDS: tf.constant([[4, 5, 0, 0, 0, 0, 0, 0, 0]], tf.int32)}))
    for name in short:
        np.testing.assert_allclose(short[name], long[name], atol=1e-5)


def test_encoder_state_depends_on_every_real_token(seq2seq):
    _, _, model = seq2seq
    a = numpy_dict(model.encoder({SOURCE_IDS: tf.constant([[4, 5, 6]], tf.int32)}))
    b = numpy_dict(model.encoder({SOURCE_IDS: tf.constant([[7, 5, 6]], tf.int32)}))
    assert any(not np.allclose(a[n], b[n], atol=1e-6) for n in a)


# --- construction and serialisation ----------------------------------------------------------
def test_unknown_cell_is_rejected_with_the_allowed_values():
    with pytest.raises(ValueError, match=r"argument `cell`, expected one of \['gru', 'lstm', 'rnn'\], got 'transformer'"):
        make_rnn_layer("transformer", 4, "x")


def test_dropout_is_inactive_at_inference():
    keras.utils.set_random_seed(1)
    encoder = build_encoder(model_config(cell="gru", dropout=0.5), SOURCE_VOCAB)
    first = numpy_dict(encoder({SOURCE_IDS: source_batch()}, training=False))
    second = numpy_dict(encoder({SOURCE_IDS: source_batch()}, training=False))
    np.testing.assert_array_equal(first["state_h_0"], second["state_h_0"])


def all_layers(model: keras.Model) -> list:
    """Every layer of a trainer, those of the encoder and decoder models inside included."""
    return [layer for inner in (model, *split_trainer(model)[:2]) for layer in inner.layers]


def test_every_dropout_of_the_models_draws_with_philox():
    config = model_config(num_layers=2, dropout=0.3, bidirectional=True, attention="luong")
    layers = all_layers(build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB).trainer)
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    assert len({id(layer) for layer in dropouts}) == 5, "two per side (one per layer) and one before the logits"
    assert all(isinstance(layer, PhiloxDropout) for layer in dropouts)


@pytest.mark.parametrize("jit_compile", [False, True], ids=["eager-graph", "xla"])
def test_philox_dropout_drops_the_rate_scales_the_rest_and_draws_a_new_mask_per_call(jit_compile):
    layer = PhiloxDropout(0.25, seed=3)
    inputs = tf.ones([64, 10, 32])
    training_call = tf.function(lambda x: layer(x, training=True), jit_compile=jit_compile)
    first, second = np.asarray(training_call(inputs)), np.asarray(training_call(inputs))
    assert set(np.unique(first)) == {0.0, np.float32(1 / 0.75)}
    assert abs((first == 0).mean() - 0.25) < 0.01  # 20,480 draws: 4 standard deviations is 0.012
    assert (first != second).any(), "the seed state advances at every call"
    np.testing.assert_array_equal(layer(inputs, training=False), inputs)


@pytest.mark.parametrize("dtype_policy", ["float32", "mixed_bfloat16"])
def test_an_attention_trainer_with_dropout_learns_a_batch_under_xla(dtype_policy):
    keras.utils.set_random_seed(4)
    config = model_config(dropout=0.2, dtype_policy=dtype_policy, bidirectional=True, bridge="sum", attention="luong")
    model = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
    compile_trainer(model.trainer, learning_rate=0.02, jit_compile=True)
    target = token_batch()[:, 1:]
    decoder_input = token_batch()[:, :-1]
    losses = model.trainer.fit([source_batch(), decoder_input], target, epochs=30, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]


def test_philox_dropout_keeps_the_keras_mask_and_rejects_a_noise_shape():
    token_ids = tf.constant([[1, 2, 0]])
    embedding = keras.layers.Embedding(5, 4, mask_zero=True)
    padding_mask = embedding.compute_mask(token_ids)
    np.testing.assert_array_equal(PhiloxDropout(0.5).compute_mask(embedding(token_ids), padding_mask), [[True, True, False]])
    with pytest.raises(ValueError, match="noise_shape is not supported"):
        PhiloxDropout(0.5, noise_shape=(1, 1, 4))


def lstm_outputs_and_gradients(layer, inputs, mask, initial_state):
    """(sequence, final h and c, and the gradients of their sum of squares by the inputs, the
    initial state and each weight) of ``layer`` called in training mode."""
    with tf.GradientTape() as tape:
        tape.watch([inputs, *initial_state])
        results = layer(inputs, mask=mask, initial_state=initial_state, training=True)
        loss = sum(tf.reduce_sum(tf.cast(r, tf.float32) ** 2) for r in results)
    gradients = tape.gradient(loss, [inputs, *initial_state, *layer.trainable_weights])
    return [np.asarray(tf.cast(t, tf.float32)) for t in (*results, *gradients)]


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backward"])
# float32: to rounding; bfloat16 (8-bit mantissa) sums in a different order: to 2% of each tensor's norm
@pytest.mark.parametrize("dtype_policy, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_the_hoisted_lstm_trains_with_the_outputs_states_and_gradients_of_keras_lstm(go_backwards, dtype_policy, tolerance):
    """HoistedLSTM's training loop (input projection and weight casts out of the loop) is Keras'
    LSTM: right-padded rows masked, either direction, a given initial state, both dtype policies."""
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(BATCH, 6, EMBEDDING)), tf.float32)
    mask = tf.constant(np.arange(6)[None, :] < np.array([6, 4, 1])[:, None])
    initial_state = [tf.constant(rng.normal(size=(BATCH, HIDDEN)) * 0.5, tf.float32) for _ in range(2)]
    options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards, dtype=dtype_policy)
    keras_lstm, hoisted = keras.layers.LSTM(HIDDEN, **options), HoistedLSTM(HIDDEN, **options)
    keras_lstm.build(inputs.shape)
    hoisted.build(inputs.shape)
    hoisted.set_weights([w + rng.normal(size=w.shape) * 0.3 for w in keras_lstm.get_weights()])  # a non-zero bias too
    keras_lstm.set_weights(hoisted.get_weights())
    expected = lstm_outputs_and_gradients(keras_lstm, inputs, mask, initial_state)
    actual = lstm_outputs_and_gradients(hoisted, inputs, mask, initial_state)
    for want, got in zip(expected, actual, strict=True):
        assert np.linalg.norm(got - want) <= tolerance * np.linalg.norm(want)
    unmasked = lstm_outputs_and_gradients(keras_lstm, inputs, None, initial_state)
    assert np.abs(unmasked[1] - expected[1]).max() > 0.01, "the mask is in effect (the final states differ)"


def test_the_hoisted_lstm_in_bfloat16_keeps_its_cell_state_in_float32():
    """Under mixed bfloat16 only the matmuls round to bfloat16. A cell state that adds 0.01 at
    each of 300 steps (input and forget gates open, g = 0.01) ends at 3.0 in float32; in
    bfloat16 (8 significant bits) the additions round to 1/128 or 1/64 once c passes 1."""
    units, steps = 4, 300
    gate_bias = np.concatenate([np.full(units, 30.0), np.full(units, 30.0), np.full(units, np.arctanh(0.01)), np.zeros(units)])
    final_cells = {}
    for name, kind in (("keras", keras.layers.LSTM), ("hoisted", HoistedLSTM)):
        layer = kind(units, return_state=True, dtype="mixed_bfloat16")
        layer.build((1, steps, 1))
        layer.set_weights([np.zeros((1, 4 * units)), np.zeros((units, 4 * units)), gate_bias])
        for training in (True, False):  # validation under a mixed policy runs the training loop too
            _, _, cell = layer(tf.zeros([1, steps, 1]), training=training)
            final_cells[name, training] = np.asarray(tf.cast(cell, tf.float32))
    for training in (True, False):
        np.testing.assert_allclose(final_cells["hoisted", training], 3.0, atol=0.02)  # 3.0 rounded to bfloat16
        assert np.abs(final_cells["keras", training] - 3.0).min() > 0.1


def test_lstm_models_use_the_hoisted_lstm_and_float32_inference_keeps_keras_loop():
    layer = make_rnn_layer("lstm", HIDDEN, "lstm")
    assert isinstance(layer, HoistedLSTM) and type(make_rnn_layer("gru", HIDDEN, "gru")) is keras.layers.GRU
    inputs = tf.constant(np.random.default_rng(1).normal(size=(BATCH, 4, EMBEDDING)), tf.float32)
    keras_lstm = keras.layers.LSTM(HIDDEN, return_sequences=True, return_state=True)
    keras_lstm.build(inputs.shape)
    layer.build(inputs.shape)
    layer.set_weights(keras_lstm.get_weights())
    for got, want in zip(layer(inputs, training=False), keras_lstm(inputs, training=False), strict=True):
        np.testing.assert_array_equal(got, want)


def test_separately_built_models_have_the_documented_names():
    encoder = build_encoder(model_config(), SOURCE_VOCAB)
    decoder = build_decoder(model_config(), TARGET_VOCAB)
    assert (encoder.name, decoder.name) == ("encoder", "decoder")


@pytest.mark.parametrize("attention", ["none", "luong", "bahdanau"])
def test_a_mixed_bfloat16_model_computes_in_bfloat16_but_its_logits_and_float32_copy_do_not(attention):
    config = model_config(dtype_policy="mixed_bfloat16", bidirectional=True, bridge="sum", attention=attention)
    mixed = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
    assert keras.config.dtype_policy().name == "float32", "the build leaves the process-wide policy alone"
    decoder = mixed.decoder
    assert decoder.get_layer(LOGITS).dtype_policy.name == "float32"
    assert {layer.dtype_policy.name for layer in decoder.layers if layer.name != LOGITS and layer.weights} == {"mixed_bfloat16"}
    assert all(weight.dtype == "float32" for weight in mixed.trainer.weights)

    source = np.array([[5, 6, 7, 0], [8, 9, 4, 4]], np.int32)
    targets = np.array([[1, 5, 6], [1, 7, 8]], np.int32)
    logits = mixed.trainer([source, targets])
    assert logits.dtype == "float32"

    copy = float32_copy(mixed.trainer, config)
    assert {layer.dtype_policy.name for layer in all_layers(copy.trainer)} == {"float32"}
    for ours, theirs in zip(copy.trainer.get_weights(), mixed.trainer.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    # The same function, computed with 8 mantissa bits instead of 24.
    np.testing.assert_allclose(copy.trainer([source, targets]), logits, atol=0.05)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # the optimizer was never built
@pytest.mark.parametrize("cell, num_layers", [("lstm", 2), ("gru", 1)])
def test_saved_and_reloaded_trainer_gives_identical_logits(tmp_path, cell, num_layers):
    keras.utils.set_random_seed(2)
    model = build_seq2seq(model_config(cell=cell, num_layers=num_layers), SOURCE_VOCAB, TARGET_VOCAB)
    compile_trainer(model.trainer, jit_compile=False)
    path = tmp_path / "model.keras"
    model.trainer.save(path)
    loaded = keras.models.load_model(path)
    inputs = [source_batch(), token_batch()]
    np.testing.assert_array_equal(np.asarray(loaded(inputs)), np.asarray(model.trainer(inputs)))
    assert isinstance(loaded.loss, MaskedSparseCrossEntropy)

    parts = split_trainer(loaded)
    assert (parts.encoder.name, parts.decoder.name, parts.trainer) == ("encoder", "decoder", loaded)
    original_states = numpy_dict(model.encoder({SOURCE_IDS: source_batch()}))
    loaded_states = numpy_dict(parts.encoder({SOURCE_IDS: source_batch()}))
    assert sorted(loaded_states) == sorted(state_names(cell, num_layers))
    for name, value in original_states.items():
        np.testing.assert_array_equal(loaded_states[name], value)
    step = {TOKEN_IDS: token_batch()[:, :1], **{n: tf.constant(v) for n, v in loaded_states.items()}}
    np.testing.assert_array_equal(
        np.asarray(parts.decoder(step)[LOGITS]), np.asarray(model.decoder(step)[LOGITS])
    )


# --- masked loss and accuracy ----------------------------------------------------------------
# Real positions have logits ln(1..4): softmax [0.1, 0.2, 0.3, 0.4], argmax 3.
REAL = [math.log(1), math.log(2), math.log(3), math.log(4)]
Y_TRUE = [[3, 2, 0], [1, 0, 0]]  # three real tokens, three PAD positions


def logits_with_pad(pad_logits):
    return tf.constant([[REAL, REAL, pad_logits], [REAL, pad_logits, pad_logits]], tf.float32)


GOLDEN_LOSS = -(math.log(0.4) + math.log(0.3) + math.log(0.2)) / 3  # 1.2432338


@pytest.mark.parametrize("pad_logits", [[0.0, 0.0, 0.0, 0.0], [50.0, -50.0, 3.0, 7.0], [-9.0, 99.0, 0.0, 1.0]])
def test_masked_cross_entropy_is_the_mean_over_non_pad_tokens(pad_logits):
    loss = MaskedSparseCrossEntropy()(tf.constant(Y_TRUE), logits_with_pad(pad_logits))
    assert float(loss) == pytest.approx(GOLDEN_LOSS, abs=1e-5)


# With smoothing e over V=4 tokens the target is 1 - e + e/4 on the reference, e/4 elsewhere;
# -mean(log p) over the real positions' softmax [0.1, 0.2, 0.3, 0.4]:
MEAN_NEG_LOG_P = -(math.log(0.1) + math.log(0.2) + math.log(0.3) + math.log(0.4)) / 4


@pytest.mark.parametrize("pad_logits", [[0.0, 0.0, 0.0, 0.0], [50.0, -50.0, 3.0, 7.0]])
def test_label_smoothing_mixes_the_reference_nll_with_the_uniform_cross_entropy(pad_logits):
    loss = MaskedSparseCrossEntropy(label_smoothing=0.1)(tf.constant(Y_TRUE), logits_with_pad(pad_logits))
    assert float(loss) == pytest.approx(0.9 * GOLDEN_LOSS + 0.1 * MEAN_NEG_LOG_P, abs=1e-5)


def test_label_smoothing_survives_the_loss_config_round_trip():
    restored = MaskedSparseCrossEntropy.from_config(MaskedSparseCrossEntropy(label_smoothing=0.2).get_config())
    assert restored.label_smoothing == 0.2


def test_masked_cross_entropy_of_an_all_pad_batch_is_zero():
    loss = MaskedSparseCrossEntropy()(tf.zeros((2, 3), tf.int32), tf.random.normal((2, 3, 4)))
    assert float(loss) == 0.0


@pytest.mark.parametrize("pad_logits", [[9.0, 0.0, 0.0, 0.0], [0.0, 9.0, 0.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
def test_masked_token_accuracy_ignores_pad_positions(pad_logits):
    # argmax is 3 at every real position: right for the 3, wrong for the 2 and the 1.
    metric = MaskedTokenAccuracy()
    metric.update_state(tf.constant(Y_TRUE), logits_with_pad(pad_logits))
    assert float(metric.result()) == pytest.approx(1 / 3, abs=1e-6)


def test_masked_token_accuracy_accumulates_and_resets():
    metric = MaskedTokenAccuracy()
    metric.update_state(tf.constant(Y_TRUE), logits_with_pad([9.0, 0, 0, 0]))  # 1 of 3
    metric.update_state(tf.constant([[3, 3, 0]]), tf.constant([[REAL, REAL, [9.0, 0, 0, 0]]]))  # 2 of 2
    assert float(metric.result()) == pytest.approx(3 / 5, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_compiled_trainer_reports_the_masked_loss_and_accuracy():
    keras.utils.set_random_seed(3)
    model = build_seq2seq(Seq2SeqConfig(dataset="toy", cell="gru", embedding_size=4, hidden_size=4), 5, 4)
    compile_trainer(model.trainer, jit_compile=False)
    # Zero all weights: uniform logits over 4 target ids, so the loss is ln 4 whatever the padding.
    for weight in model.trainer.weights:
        weight.assign(tf.zeros_like(weight))
    source = tf.constant([[4, 0, 0]], tf.int32)
    decoder_input = tf.constant([[2, 1, 0, 0]], tf.int32)
    target = tf.constant([[1, 3, 0, 0]], tf.int32)
    results = model.trainer.evaluate([source, decoder_input], target, verbose=0, return_dict=True)
    assert results["loss"] == pytest.approx(math.log(4), abs=1e-5)
    # The argmax of uniform logits is id 0 (PAD): right at the two PAD positions, which must not count.
    assert results["token_accuracy"] == 0.0
    assert set(results) == {"loss", "token_accuracy"}


def test_weight_decay_shrinks_kernels_and_embeddings_by_rate_times_decay_but_not_biases():
    """AdamW's step is Adam's step minus ``learning_rate * weight_decay * w`` (decoupled decay)."""
    config = model_config(bidirectional=True, bridge="sum", attention="luong")
    batch = ([source_batch(), token_batch()[:, :-1]], token_batch()[:, 1:])
    stepped = {}
    for weight_decay in (0.0, 0.1):
        keras.utils.set_random_seed(5)
        model = build_seq2seq(config, SOURCE_VOCAB, TARGET_VOCAB)
        initial = [np.asarray(w) for w in model.trainer.trainable_weights]
        compile_trainer(model.trainer, learning_rate=0.01, weight_decay=weight_decay, jit_compile=False)
        model.trainer.train_on_batch(*batch)
        stepped[weight_decay] = [np.asarray(w) for w in model.trainer.trainable_weights]
    names = [w.path for w in model.trainer.trainable_weights]
    biases = [i for i, name in enumerate(names) if name.endswith("bias")]
    assert biases and len(biases) < len(names)
    for i, name in enumerate(names):
        expected_shrink = 0.0 if i in biases else 0.01 * 0.1 * initial[i]
        np.testing.assert_allclose(stepped[0.0][i] - stepped[0.1][i], expected_shrink, atol=1e-6, err_msg=name)


# --- all-PAD rows (keras_s2s.data's full_batches) -----------------------------------------------
PAD_ROW_MODELS = {
    "lstm": dict(cell="lstm"),
    "bi-lstm-luong-bfloat16": dict(cell="lstm", bidirectional=True, bridge="sum", attention="luong",
                                   dtype_policy="mixed_bfloat16"),
    "bi-gru-bahdanau": dict(cell="gru", bidirectional=True, attention="bahdanau"),
    "rnn-2layer-luong-dot": dict(cell="rnn", num_layers=2, attention="luong", attention_score="dot"),
}


# Every kind in graph mode, and the demo's under XLA (its attention softmax on a row without a
# real source token)
PAD_ROW_CASES = [(name, False) for name in PAD_ROW_MODELS] + [("bi-lstm-luong-bfloat16", True)]


@pytest.mark.slow  # gradients traced, two of them XLA-compiled
@pytest.mark.parametrize("model, jit_compile", PAD_ROW_CASES, ids=[f"{m}-{'xla' if j else 'graph'}" for m, j in PAD_ROW_CASES])
def test_all_pad_rows_change_neither_the_loss_nor_its_gradients(model, jit_compile):
    """A bucket's last batch is filled up with all-PAD rows for training: their forward pass
    must stay finite (no real source token to attend to) and add nothing."""
    keras.utils.set_random_seed(0)
    trainer = build_seq2seq(model_config(**PAD_ROW_MODELS[model]), SOURCE_VOCAB, TARGET_VOCAB).trainer
    loss = MaskedSparseCrossEntropy(label_smoothing=0.1)

    @tf.function(jit_compile=jit_compile)
    def loss_and_gradients(source_ids, decoder_input_ids, target_ids):
        with tf.GradientTape() as tape:
            value = loss.call(target_ids, trainer((source_ids, decoder_input_ids), training=True))
        return value, tape.gradient(value, trainer.trainable_weights)

    decoder_input_ids = token_batch()
    target_ids = tf.concat([decoder_input_ids[:, 1:], tf.zeros([BATCH, 1], tf.int32)], axis=1)
    batch = (source_batch(), decoder_input_ids, target_ids)
    filled = [tf.pad(ids, [[0, 2], [0, 0]]) for ids in batch]
    value, gradients = loss_and_gradients(*batch)
    filled_value, filled_gradients = loss_and_gradients(*filled)
    assert np.isfinite(filled_value.numpy())
    np.testing.assert_allclose(filled_value, value, rtol=1e-6, atol=1e-6)
    for gradient, filled_gradient in zip(gradients, filled_gradients, strict=True):
        gradient, filled_gradient = (tf.convert_to_tensor(g).numpy() for g in (gradient, filled_gradient))
        assert np.isfinite(filled_gradient).all()
        np.testing.assert_allclose(filled_gradient, gradient, rtol=1e-5, atol=1e-6)
