"""The encoder, the decoder and their teacher-forcing composition, as Keras functional models.

    encoder:  {source_ids [B, S] int32} -> {state_h_0 [B, H], (state_c_0,) ..., per layer}
    decoder:  {token_ids [B, T] int32, state_* [B, H]...}
              -> {logits [B, T, V] float32, next_state_* [B, H]...}
    trainer:  [source_ids, decoder_input_ids] -> logits [B, T, V]

The encoder's final hidden (and, for LSTM, cell) state of each layer is the context that
initialises the same layer of the decoder. There is ONE decoder: training calls it on the
whole shifted target (teacher forcing), inference on one token at a time (T=1) with the
states it returned at the previous step. The encoder masks PAD (id 0) so right-padded
sources get the state of their last real token; the decoder needs no mask because it is
causal and PAD positions are excluded from the loss instead.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import keras

from keras_s2s.signatures import LOGITS, SOURCE_IDS, TOKEN_IDS, next_state_name, state_names

Cell = Literal["lstm", "gru", "rnn"]

_RNN_LAYERS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


def make_rnn_layer(cell: Cell, units: int, name: str) -> keras.layers.Layer:
    """The one RNN factory of both sides: full sequence out, final state(s) out."""
    if cell not in _RNN_LAYERS:
        raise ValueError(f"Received an invalid value for argument `cell`, expected one of {sorted(_RNN_LAYERS)}, got {cell!r}.")
    return _RNN_LAYERS[cell](units, return_sequences=True, return_state=True, name=name)


def build_encoder(
    vocab_size: int,
    *,
    cell: Cell = "lstm",
    num_layers: int = 1,
    embedding_size: int = 64,
    hidden_size: int = 256,
    dropout: float = 0.0,
    name: str = "encoder",
) -> keras.Model:
    """{source_ids [B, S] int32 (PAD=0 masked)} -> dict of final states, each [B, hidden_size]."""
    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_IDS)
    x = keras.layers.Embedding(vocab_size, embedding_size, mask_zero=True, name="embedding")(source_ids)
    states: dict = {}
    names = iter(state_names(cell, num_layers))
    for layer in range(num_layers):
        x = keras.layers.Dropout(dropout, name=f"dropout_{layer}")(x)
        x, *final_states = make_rnn_layer(cell, hidden_size, f"{cell}_{layer}")(x)
        for state in final_states:
            states[next(names)] = state
    return keras.Model({SOURCE_IDS: source_ids}, states, name=name)


def build_decoder(
    vocab_size: int,
    *,
    cell: Cell = "lstm",
    num_layers: int = 1,
    embedding_size: int = 64,
    hidden_size: int = 256,
    dropout: float = 0.0,
    name: str = "decoder",
) -> keras.Model:
    """{token_ids [B, T] int32, state_* [B, H]} -> {logits [B, T, V], next_state_* [B, H]}."""
    token_ids = keras.Input(shape=(None,), dtype="int32", name=TOKEN_IDS)
    names = state_names(cell, num_layers)
    state_inputs = {n: keras.Input(shape=(hidden_size,), dtype="float32", name=n) for n in names}
    per_layer = len(names) // num_layers
    x = keras.layers.Embedding(vocab_size, embedding_size, name="embedding")(token_ids)
    outputs: dict = {}
    for layer in range(num_layers):
        layer_names = names[layer * per_layer : (layer + 1) * per_layer]
        x = keras.layers.Dropout(dropout, name=f"dropout_{layer}")(x)
        x, *new_states = make_rnn_layer(cell, hidden_size, f"{cell}_{layer}")(
            x, initial_state=[state_inputs[n] for n in layer_names]
        )
        for state_name, state in zip(layer_names, new_states):
            outputs[next_state_name(state_name)] = state
    x = keras.layers.Dropout(dropout, name="dropout_output")(x)
    logits = keras.layers.Dense(vocab_size, name=LOGITS)(x)
    return keras.Model({TOKEN_IDS: token_ids, **state_inputs}, {LOGITS: logits, **outputs}, name=name)


def build_trainer(encoder: keras.Model, decoder: keras.Model, name: str = "seq2seq") -> keras.Model:
    """[source_ids [B, S], decoder_input_ids [B, T]] int32 -> logits [B, T, V] (teacher forcing)."""
    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_IDS)
    decoder_input_ids = keras.Input(shape=(None,), dtype="int32", name="decoder_input_ids")
    states = encoder({SOURCE_IDS: source_ids})
    logits = decoder({TOKEN_IDS: decoder_input_ids, **states})[LOGITS]
    return keras.Model([source_ids, decoder_input_ids], logits, name=name)


class Seq2Seq(NamedTuple):
    encoder: keras.Model
    decoder: keras.Model
    trainer: keras.Model


def build_seq2seq(
    source_vocab_size: int,
    target_vocab_size: int,
    *,
    cell: Cell = "lstm",
    num_layers: int = 1,
    embedding_size: int = 64,
    hidden_size: int = 256,
    dropout: float = 0.0,
) -> Seq2Seq:
    """Encoder, decoder and the trainer that composes them (shared weights)."""
    sizes = dict(cell=cell, num_layers=num_layers, embedding_size=embedding_size, hidden_size=hidden_size, dropout=dropout)
    encoder = build_encoder(source_vocab_size, **sizes)
    decoder = build_decoder(target_vocab_size, **sizes)
    return Seq2Seq(encoder, decoder, build_trainer(encoder, decoder))


def split_trainer(trainer: keras.Model) -> Seq2Seq:
    """The encoder and decoder inside a (loaded) trainer."""
    return Seq2Seq(trainer.get_layer("encoder"), trainer.get_layer("decoder"), trainer)
