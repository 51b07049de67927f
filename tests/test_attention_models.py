"""Bidirectional encoders and attention decoders: the decoder interface stays [B, H] states,
attention puts zero weight on padding, stepping equals teacher forcing, the models save,
reload and train under XLA, and the export signatures are read off the models."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import (
    ATTENTION_BIAS,
    ATTENTION_CELL_VALUES,
    ATTENTION_KEYS,
    ATTENTION_VALUES,
    ATTENTION_WEIGHTS,
    LOGITS,
    MEMORY,
    SOURCE_IDS,
    SOURCE_MASK,
    TOKEN_IDS,
)
from keras_s2s.errors import ConfigError
from keras_s2s.models import (
    build_seq2seq,
    next_state_name,
    single_step_decoder,
    split_trainer,
    state_names,
    step_encoder,
)
from keras_s2s.signatures import decoding_interface, signatures_from_models
from keras_s2s.training import compile_trainer

SOURCE_VOCAB = 11
TARGET_VOCAB = 13
HIDDEN = 8

ATTENTION_CONFIGS = {
    "bi-bahdanau": dict(bidirectional=True, attention="bahdanau"),
    "bi-luong": dict(bidirectional=True, attention="luong"),
    "uni-luong-dot": dict(attention="luong", attention_score="dot"),
    "bahdanau-gru-2layer": dict(attention="bahdanau", cell="gru", num_layers=2),
    "bi-luong-rnn-2layer-sum": dict(bidirectional=True, attention="luong", cell="rnn", num_layers=2, bridge="sum"),
    "bi-luong-dot-2layer-summed-outputs": dict(
        bidirectional=True, attention="luong", attention_score="dot", num_layers=2, encoder_merge="sum"
    ),
}
BIDIRECTIONAL_CONFIGS = {
    f"{cell}-{layers}layer-{bridge}": dict(bidirectional=True, cell=cell, num_layers=layers, bridge=bridge)
    for cell, layers, bridge in itertools.product(("lstm", "gru"), (1, 2), ("dense", "sum"))
}


def model_config(**fields) -> Seq2SeqConfig:
    return Seq2SeqConfig(dataset="toy", embedding_size=6, hidden_size=HIDDEN, **fields)


def build(fields, seed=0):
    keras.utils.set_random_seed(seed)
    return build_seq2seq(model_config(**fields), SOURCE_VOCAB, TARGET_VOCAB)


SOURCE = tf.constant([[4, 5, 6, 7, 8], [9, 10, 4, 0, 0], [5, 0, 0, 0, 0]], tf.int32)
TOKENS = tf.constant([[2, 4, 5, 6, 7], [2, 9, 10, 11, 12], [2, 3, 4, 5, 0]], tf.int32)


def decoder_feeds(model, source=SOURCE, *, encoder=None, decoder=None):
    """The decoder's carried inputs, taken from the encoder outputs of the same names."""
    encoder, decoder = encoder or model.encoder, decoder or model.decoder
    encoded = encoder({SOURCE_IDS: source})
    return {name: encoded[name] for name in decoder.input if name != TOKEN_IDS}


@pytest.fixture(scope="module", params=list(ATTENTION_CONFIGS), ids=str)
def attention_model(request):
    return build(ATTENTION_CONFIGS[request.param])


# --- attention -------------------------------------------------------------------------------
def test_attention_weights_sum_to_one_over_real_source_tokens_and_are_zero_on_padding(attention_model):
    weights = np.asarray(attention_model.decoder({TOKEN_IDS: TOKENS, **decoder_feeds(attention_model)})[ATTENTION_WEIGHTS])
    assert weights.shape == (3, 5, 5)  # [batch, target steps, source positions]
    real = np.asarray(SOURCE) != 0
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    for row in range(3):
        assert np.all(weights[row][:, ~real[row]] == 0.0), f"row {row} attends to padding"
        assert np.all(weights[row][:, real[row]] > 0.0)


def test_stepping_an_attention_decoder_equals_the_whole_sequence(attention_model):
    feeds = decoder_feeds(attention_model)
    whole = attention_model.decoder({TOKEN_IDS: TOKENS, **feeds})
    signatures = signatures_from_models(attention_model.encoder, attention_model.decoder)
    state = dict(feeds)
    logits, weights = [], []
    for t in range(TOKENS.shape[1]):
        out = attention_model.decoder({TOKEN_IDS: TOKENS[:, t : t + 1], **state})
        logits.append(np.asarray(out[LOGITS]))
        weights.append(np.asarray(out[ATTENTION_WEIGHTS]))
        state = {c.input: state[c.input] if c.update_from is None else out[c.update_from] for c in signatures.decoding.carries}
    np.testing.assert_allclose(np.concatenate(logits, axis=1), np.asarray(whole[LOGITS]), atol=1e-6)
    np.testing.assert_allclose(np.concatenate(weights, axis=1), np.asarray(whole[ATTENTION_WEIGHTS]), atol=1e-6)


ONE_STEP_CONFIGS = {
    **ATTENTION_CONFIGS, "bi-bahdanau-rnn": dict(bidirectional=True, attention="bahdanau", cell="rnn"),
    "plain-lstm": {}, "gru-2layer": dict(cell="gru", num_layers=2), "rnn": dict(cell="rnn"),
}


@pytest.mark.parametrize("fields", ONE_STEP_CONFIGS.values(), ids=list(ONE_STEP_CONFIGS))
def test_the_one_step_decoder_of_the_export_loops_equals_the_decoder_on_one_token(fields):
    """``single_step_decoder`` (the body of the greedy and beam graphs: cells called on [B, D]
    tensors), started by ``step_encoder``, gives the decoder's outputs, step after step."""
    model = build(fields)
    config = model_config(**fields)
    step_decoder = single_step_decoder(model.decoder, config)
    loop_encoder = step_encoder(model.encoder, model.decoder, config)
    carries = signatures_from_models(model.encoder, model.decoder).decoding.carries
    loop_carries = decoding_interface(loop_encoder, step_decoder).carries
    state, loop_state = decoder_feeds(model), decoder_feeds(model, encoder=loop_encoder, decoder=step_decoder)
    for t in range(3):
        expected = model.decoder({TOKEN_IDS: TOKENS[:, t : t + 1], **state})
        got = step_decoder({TOKEN_IDS: TOKENS[:, t : t + 1], **loop_state})
        assert set(got) == set(expected)
        for name in expected:
            assert got[name].shape == expected[name].shape
            np.testing.assert_allclose(np.asarray(got[name]), np.asarray(expected[name]), atol=1e-6)
        state = {c.input: state[c.input] if c.update_from is None else expected[c.update_from] for c in carries}
        loop_state = {c.input: loop_state[c.input] if c.update_from is None else got[c.update_from] for c in loop_carries}


@pytest.mark.parametrize("fields", [ATTENTION_CONFIGS["bi-luong"], ATTENTION_CONFIGS["bi-bahdanau"]], ids=["luong", "bahdanau"])
def test_the_export_loops_project_the_memory_once_per_source(fields):
    """The loops' step reads what the encoder projected from the memory [B, S, 2H] once per
    source: no weight of the step decoder has the memory's width."""
    model = build(fields)
    config = model_config(**fields)
    step_decoder = single_step_decoder(model.decoder, config)
    loop_encoder = step_encoder(model.encoder, model.decoder, config)
    assert MEMORY not in step_decoder.input and MEMORY not in loop_encoder.output
    assert all(2 * HIDDEN not in tuple(w.shape) for w in step_decoder.weights)
    assert any(2 * HIDDEN in tuple(w.shape) for w in model.decoder.weights)
    encoded = {name: np.asarray(value) for name, value in loop_encoder({SOURCE_IDS: SOURCE}).items()}
    padding = np.asarray(SOURCE) == 0
    keys = encoded[ATTENTION_KEYS]
    if config.attention == "luong":
        assert keys.shape == (3, HIDDEN, 5)  # [B, H, S]: a step's scores are one matmul
        keys = keys.transpose(0, 2, 1)
    else:
        assert encoded[ATTENTION_CELL_VALUES].shape == (3, 5, 4 * HIDDEN)  # the LSTM's 4 gates
    assert keys.shape == encoded[ATTENTION_VALUES].shape == (3, 5, HIDDEN)
    assert np.all(keys[padding] == 0.0) and np.abs(keys[~padding]).max() > 0.0
    np.testing.assert_array_equal(encoded[ATTENTION_BIAS][:, 0], np.where(padding, -1e9, 0.0).astype(np.float32))


def test_without_attention_the_loops_start_from_the_encoder_itself():
    model = build({})
    assert step_encoder(model.encoder, model.decoder, model_config()) is model.encoder


def test_attention_output_depends_on_the_memory(attention_model):
    feeds = decoder_feeds(attention_model)
    changed = dict(feeds, **{MEMORY: feeds[MEMORY] * 2.0 + 0.5})
    first = np.asarray(attention_model.decoder({TOKEN_IDS: TOKENS, **feeds})[LOGITS])
    second = np.asarray(attention_model.decoder({TOKEN_IDS: TOKENS, **changed})[LOGITS])
    assert np.abs(first - second).max() > 1e-4


def test_attention_memory_is_zero_on_padding_and_the_mask_marks_real_tokens(attention_model):
    encoded = attention_model.encoder({SOURCE_IDS: SOURCE})
    mask = np.asarray(encoded[SOURCE_MASK])
    np.testing.assert_array_equal(mask, (np.asarray(SOURCE) != 0).astype(np.float32))
    memory = np.asarray(encoded[MEMORY])
    assert np.all(memory[mask == 0] == 0.0) and np.abs(memory[mask == 1]).max() > 0.0


def test_the_signatures_carry_memory_and_mask_unchanged_and_states_step_by_step(attention_model):
    signatures = signatures_from_models(attention_model.encoder, attention_model.decoder)
    carries = {c.input: c.update_from for c in signatures.decoding.carries}
    assert carries[MEMORY] is None and carries[SOURCE_MASK] is None
    for name in (n for n in carries if n.startswith("state_")):
        assert carries[name] == next_state_name(name)
    outputs = {t.name: t for t in signatures.decoder.outputs}
    assert outputs[ATTENTION_WEIGHTS].shape == (None, None, None)
    assert outputs[LOGITS].shape == (None, None, TARGET_VOCAB)
    inputs = {t.name: t for t in signatures.decoder.inputs}
    assert inputs[TOKEN_IDS].id_range == (0, TARGET_VOCAB)
    assert signatures.encoder.input(SOURCE_IDS).id_range == (0, SOURCE_VOCAB)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("name", ["bi-bahdanau", "bi-luong"])
def test_attention_models_save_and_reload_with_identical_outputs(tmp_path, name):
    model = build(ATTENTION_CONFIGS[name], seed=3)
    compile_trainer(model.trainer, jit_compile=False)
    model.trainer.save(tmp_path / "model.keras")
    loaded = split_trainer(keras.models.load_model(tmp_path / "model.keras"))
    np.testing.assert_array_equal(
        np.asarray(loaded.trainer([SOURCE, TOKENS])), np.asarray(model.trainer([SOURCE, TOKENS]))
    )
    step = {TOKEN_IDS: TOKENS[:, :1], **decoder_feeds(loaded)}
    np.testing.assert_array_equal(
        np.asarray(loaded.decoder(step)[ATTENTION_WEIGHTS]), np.asarray(model.decoder(step)[ATTENTION_WEIGHTS])
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bi-bahdanau", "bi-luong"])
def test_attention_models_train_under_xla(name):
    """A Dense inside the Bahdanau loop once made the XLA gradient fail to compile."""
    model = build(ATTENTION_CONFIGS[name], seed=4)
    compile_trainer(model.trainer, learning_rate=0.05, jit_compile=True)
    targets = tf.concat([TOKENS[:, 1:], tf.fill([3, 1], 3)], axis=1)
    losses = [float(model.trainer.train_on_batch([SOURCE, TOKENS], targets)[0]) for _ in range(15)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_luong_dot_with_a_bidirectional_encoder_is_rejected_naming_the_field():
    with pytest.raises(ConfigError, match="attention_score.*'dot'.*2 x hidden_size"):
        model_config(bidirectional=True, attention="luong", attention_score="dot")


def test_summed_bidirectional_outputs_make_a_memory_as_wide_as_one_direction():
    concat = build(dict(bidirectional=True, attention="luong", num_layers=2))
    summed = build(dict(bidirectional=True, attention="luong", num_layers=2, encoder_merge="sum"))
    assert concat.encoder({SOURCE_IDS: SOURCE})[MEMORY].shape[-1] == 2 * HIDDEN
    assert summed.encoder({SOURCE_IDS: SOURCE})[MEMORY].shape[-1] == HIDDEN
    assert summed.trainer.count_params() < concat.trainer.count_params()  # layer 2 and attention read H, not 2H


# --- bidirectional encoder -------------------------------------------------------------------
@pytest.fixture(scope="module", params=list(BIDIRECTIONAL_CONFIGS), ids=str)
def bidirectional_model(request):
    fields = BIDIRECTIONAL_CONFIGS[request.param]
    return fields, build(fields)


def test_bidirectional_states_keep_the_decoder_interface_of_one_state_per_layer(bidirectional_model):
    fields, model = bidirectional_model
    states = model.encoder({SOURCE_IDS: SOURCE})
    assert sorted(states) == sorted(state_names(fields["cell"], fields["num_layers"]))
    assert all(tuple(value.shape) == (3, HIDDEN) for value in states.values())


def test_bidirectional_state_of_a_right_padded_source_equals_the_unpadded_source(bidirectional_model):
    """The backward direction must start at the last real token, never in the padding."""
    _, model = bidirectional_model
    padded = model.encoder({SOURCE_IDS: tf.constant([[9, 10, 4, 0, 0, 0, 0]], tf.int32)})
    unpadded = model.encoder({SOURCE_IDS: tf.constant([[9, 10, 4]], tf.int32)})
    for name in unpadded:
        np.testing.assert_allclose(np.asarray(padded[name]), np.asarray(unpadded[name]), atol=1e-6, err_msg=name)


def test_each_direction_reaches_the_bridged_state_of_its_layer(bidirectional_model):
    """Zeroing one direction's weights changes every state bridged from that layer: a bridge
    that dropped the backward (or forward) states would not notice."""
    fields, model = bidirectional_model
    source = {SOURCE_IDS: tf.constant([[4, 5, 6, 7]], tf.int32)}
    before = {n: np.asarray(v) for n, v in model.encoder(source).items()}
    for layer, direction in itertools.product(range(fields["num_layers"]), ("forward_layer", "backward_layer")):
        weights = getattr(model.encoder.get_layer(f"bidirectional_{layer}"), direction).weights
        saved = [w.numpy() for w in weights]
        try:
            for weight in weights:
                weight.assign(tf.zeros_like(weight))
            after = model.encoder(source)
        finally:
            for weight, value in zip(weights, saved):
                weight.assign(value)
        for name in (n for n in before if n.endswith(f"_{layer}")):
            assert np.abs(np.asarray(after[name]) - before[name]).max() > 1e-5, f"{direction} {layer}: {name}"


def test_sum_bridge_adds_forward_and_backward_states():
    model = build(dict(bidirectional=True, cell="gru", bridge="sum"))
    layer = model.encoder.get_layer("bidirectional_0")
    embedded = model.encoder.get_layer("embedding")(SOURCE)
    mask = tf.not_equal(SOURCE, 0)
    _, forward, backward = layer(embedded, mask=mask)
    np.testing.assert_allclose(
        np.asarray(model.encoder({SOURCE_IDS: SOURCE})["state_h_0"]), np.asarray(forward + backward), atol=1e-6
    )
