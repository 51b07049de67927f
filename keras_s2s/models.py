"""The encoder, the decoder and their teacher-forcing composition, as Keras functional models.

    encoder:  {source_ids [B, S] int32}
              -> {state_h_0 [B, H], (state_c_0,) ... per layer,
                  (attention only) memory [B, S, M] float32, source_mask [B, S] float32}
    decoder:  {token_ids [B, T] int32, state_* [B, H] ..., (attention) memory, source_mask}
              -> {logits [B, T, V] float32, next_state_* [B, H] ...,
                  (attention) attention_weights [B, T, S] float32}
    trainer:  [source_ids, decoder_input_ids] -> logits [B, T, V]

This module is the one source of truth for the graphs' inputs, outputs and shapes (their
names are constants in ``keras_s2s.constants``): the export signatures and the decoding
interface are read off the built models (``keras_s2s.signatures.signatures_from_models``).

The encoder's final hidden (and, for LSTM, cell) state of each layer is the context that
initialises the same layer of the decoder; a bidirectional layer's forward and backward
states are bridged into one ``[B, H]`` state, so the decoder's interface never changes.
There is ONE decoder: training calls it on the whole shifted target (teacher forcing),
inference on one token at a time (T=1) with the states it returned at the previous step.
The encoder masks PAD (id 0), so right-padded sources get the state of their last real
token (and a backward layer never reads padding); the decoder needs no mask because it is
causal and PAD positions are excluded from the loss instead.

Attention (``config.attention``), M = memory width (H, or 2H when bidirectional):
- ``bahdanau``: additive attention inside the recurrence of the first decoder layer
  (Bahdanau et al. 2015): the previous hidden state queries the memory, the context joins
  the cell's input; ``tanh(W [h; context])`` feeds the output layer.
- ``luong``: multiplicative attention over the top decoder layer's outputs (Luong et al.
  2015, without input feeding), so the recurrence is the stock Keras layer;
  ``tanh(W [context; h])`` feeds the output layer. The decoding loops' one-step decoder
  reads the memory projected once per source instead (``step_encoder``: the attention is
  linear in the memory, so per step it reads H x H weights instead of H x M and (M + H) x H).
Padding positions get exactly zero weight (their score is -1e9 before the softmax).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple, Optional

import keras
from keras import ops
from keras.src import backend as keras_backend

from keras_s2s.config import Cell, Seq2SeqConfig
from keras_s2s.constants import (
    ATTENTION_BIAS,
    ATTENTION_CELL_VALUES,
    ATTENTION_KEYS,
    ATTENTION_VALUES,
    ATTENTION_WEIGHTS,
    DECODER_INPUT_IDS,
    LOGITS,
    MEMORY,
    PAD_ID,
    SOURCE_IDS,
    SOURCE_MASK,
    TOKEN_IDS,
)

_NEG_INF = -1e9
# Longest static time length that HoistedLSTM (in training) and BahdanauAttentionRNN unroll (the
# G2P buckets reach 32); a longer one keeps the while loop, so long-sentence batches do not build
# huge graphs.
MAX_UNROLLED_STEPS = 48
_RNN_CELLS = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell, "rnn": keras.layers.SimpleRNNCell}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # blocks of H columns in a cell's kernels


def _unrolls(time_steps: Optional[int]) -> bool:
    """Whether a recurrence over ``time_steps`` (a static int, or None when unknown) is unrolled."""
    return time_steps is not None and time_steps <= MAX_UNROLLED_STEPS


def state_names(cell: Cell, num_layers: int) -> list[str]:
    """Context states, layer by layer: ``state_h_0, state_c_0, state_h_1, ...`` (c for LSTM only)."""
    return [f"state_{kind}_{layer}" for layer in range(num_layers) for kind in _state_kinds(cell)]


def next_state_name(name: str) -> str:
    """The decoder output that carries state ``name`` to the next step."""
    return f"next_{name}"


def _state_kinds(cell: Cell) -> tuple[str, ...]:
    return ("h", "c") if cell == "lstm" else ("h",)


def _check_cell(cell: str) -> None:
    if cell not in _RNN_CELLS:
        raise ValueError(
            f"Received an invalid value for argument `cell`, expected one of {sorted(_RNN_CELLS)}, got {cell!r}."
        )


def make_rnn_layer(cell: Cell, units: int, name: str) -> keras.layers.Layer:
    """The RNN layer factory of both sides: full sequence out, final state(s) out."""
    _check_cell(cell)
    return _RNN_LAYERS[cell](units, return_sequences=True, return_state=True, name=name)


def make_rnn_cell(cell: Cell, units: int, name: str) -> keras.layers.Layer:
    """The cell of the same kind (same weights as the layer), for recurrences written around
    it (Bahdanau attention) and for the one-step decoder."""
    _check_cell(cell)
    return _RNN_CELLS[cell](units, name=name)


# --- layers ------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="keras_s2s")
class SourceMask(keras.layers.Layer):
    """source_ids [B, S] int32 -> [B, S] float32: 1.0 on real tokens, 0.0 on PAD."""

    def call(self, source_ids):
        return ops.cast(ops.not_equal(source_ids, PAD_ID), "float32")

    def compute_output_spec(self, source_ids):
        return keras.KerasTensor(source_ids.shape, "float32")


@keras.saving.register_keras_serializable(package="keras_s2s")
class EncoderMemory(keras.layers.Layer):
    """The top encoder layer's outputs [B, S, M] with padding positions zeroed, and without
    a Keras mask attached (the decoder receives the mask explicitly as ``source_mask``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, outputs, source_mask):
        return outputs * ops.expand_dims(source_mask, -1)

    def compute_mask(self, inputs, previous_mask=None):
        return None


@keras.saving.register_keras_serializable(package="keras_s2s")
class PhiloxDropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` whose mask is drawn with the Philox generator, named.

    Keras' TensorFlow backend leaves the algorithm to TensorFlow (``auto_select``), and under
    XLA on CPU that draw is ~40x slower: one ``[128, 10, 256]`` mask took 171 ms against 4 ms
    with ``rng_alg="philox"`` (benchmarks/RESULTS.md), which made a train step with dropout
    2-3x slower with ``jit_compile`` than without. Without XLA both take the same time.
    Same rate, scaling, mask propagation and seed state as Keras' layer; no ``noise_shape``.
    """

    def __init__(self, rate: float, **kwargs) -> None:
        if kwargs.get("noise_shape") is not None:
            raise ValueError("PhiloxDropout draws one mask per element: noise_shape is not supported")
        super().__init__(rate, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        import tensorflow as tf

        # The seed state is int64; the stateless ops need int32 to compile under XLA.
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, rng_alg="philox")


class _GatherEmbedding(keras.layers.Embedding):
    """An Embedding that is a bare gather, for the graphs converted to ONNX (the unmasked
    encoder, the one-step decoder): ``ops.take`` adds a select for negative ids, nine ONNX
    ops per call (per step inside a ``Loop``); the runtimes validate ids before."""

    def call(self, inputs):
        import tensorflow as tf

        return tf.gather(self.embeddings, inputs)


class _TokenLSTMStep(keras.layers.Layer):
    """One LSTM step of the one-step decoder's first layer, fed token ids: the embedding, the
    input projection and the bias are folded into one table, so the step is a row gather plus
    ``h @ R`` (one matmul per step fewer, and fewer ONNX ops in a decoding ``Loop``).

    token_ids [B, 1] int32, states [h, c] [B, H] -> (h [B, H], [h, c]); the same math as
    Keras' ``LSTMCell`` (gates i, f, c, o; sigmoid and tanh) on
    ``input_table = embeddings @ kernel + bias`` [V, 4H] (``single_step_decoder`` computes it).
    """

    def __init__(self, vocab_size: int, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.units = units

    def build(self, token_ids_shape, states_shape):
        self.input_table = self.add_weight(shape=(self.vocab_size, 4 * self.units), initializer="zeros", name="input_table")
        self.recurrent_kernel = self.add_weight(shape=(self.units, 4 * self.units), initializer="zeros", name="recurrent_kernel")

    def call(self, token_ids, states):
        import tensorflow as tf

        h, c = states
        inputs = tf.gather(self.input_table, tf.reshape(token_ids, [-1]))  # x W + b, one row per token
        return _lstm_update(inputs + ops.matmul(h, self.recurrent_kernel), c)

    def compute_output_spec(self, token_ids, states):
        shape = (token_ids.shape[0], self.units)
        return keras.KerasTensor(shape, "float32"), [keras.KerasTensor(shape, "float32") for _ in range(2)]

    @staticmethod
    def folded_weights(embedding: keras.layers.Embedding, lstm_cell) -> list:
        """The layer's weights from a trained embedding and the LSTM cell it feeds."""
        table = ops.matmul(embedding.embeddings, lstm_cell.kernel) + lstm_cell.bias
        return [ops.convert_to_numpy(table), ops.convert_to_numpy(lstm_cell.recurrent_kernel)]


def _lstm_update(z, c):
    """Keras' LSTMCell after its matmuls: z [B, 4H] (gates i, f, c, o, bias included), the cell
    state c [B, H] -> (h, [h, c'])."""
    i, f, g, o = ops.split(z, 4, axis=1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    h = ops.sigmoid(o) * ops.tanh(c)
    return h, [h, c]


def _attend(weights, values):
    """weights [B, 1, S] @ values [B, S, D] -> the weighted sum [B, D]."""
    return ops.squeeze(ops.matmul(weights, values), 1)


def _padding_bias(source_mask):
    """source_mask [B, S] (1 real, 0 padding) -> [B, S]: 0 on real tokens, -1e9 on padding,
    added to attention scores so that softmax gives padding exactly zero weight."""
    return (1.0 - source_mask) * _NEG_INF


def _masked_softmax(scores, source_mask):
    """scores [B, ..., S], source_mask [B, S] -> weights that are exactly 0 on padding."""
    bias = _padding_bias(source_mask)
    if len(scores.shape) == 3:
        bias = ops.expand_dims(bias, 1)
    return ops.softmax(scores + bias, axis=-1)


@keras.saving.register_keras_serializable(package="keras_s2s")
class HoistedLSTM(keras.layers.LSTM):
    """Keras' LSTM (same weights, same gates) with a faster training loop.

    When training, the input projection ``x @ kernel + bias`` of all time steps is one matmul
    before the loop, and the weights are read (and cast) once per call, not once per step as
    in Keras' loop. Under a mixed dtype policy the matmuls run in the compute dtype (bfloat16:
    the CPU's AMX tiles) while the gates, the cell state and the carried states are float32, as
    in PyTorch's autocast: TensorFlow's CPU kernels for bfloat16 element-wise ops are not
    vectorized (a [128, 256] sigmoid: 175 µs against 38 µs in float32), and a bfloat16 cell
    state drops small updates. The outputs come back in the compute dtype, as Keras' do.
    Validation under a mixed policy runs the same loop, so it scores what training computes.
    Float32 inference (the saved ``model.keras`` and every export, whose unmasked encoder
    tf2onnx fuses into one ONNX ``LSTM`` op) runs Keras' own loop.

    When the time length is static and at most ``MAX_UNROLLED_STEPS`` (the train step traced
    per batch shape, ``keras_s2s.train_step``), the loop is unrolled: no ``tf.while_loop``,
    whose per-iteration overhead cost 10-20% of a G2P layer's forward and backward pass.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        hoistable = (
            (training or self.compute_dtype != "float32")
            and not self.unroll and cell.use_bias and cell.dropout == 0 and cell.recurrent_dropout == 0
            and cell.activation is keras.activations.tanh and cell.recurrent_activation is keras.activations.sigmoid
        )
        if not hoistable:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if keras.tree.is_nested(mask):
            mask = mask[0]
        compute = self.compute_dtype
        kernel, recurrent_kernel = ops.cast(cell.kernel, compute), ops.cast(cell.recurrent_kernel, compute)
        projected = ops.cast(ops.matmul(ops.cast(sequences, compute), kernel), "float32")
        projected = projected + ops.cast(cell.bias, "float32")  # [B, T, 4H]

        def step(z_input, states):  # z_input [B, 4H], states h, c [B, H]: float32
            recurrent = ops.cast(ops.matmul(ops.cast(states[0], compute), recurrent_kernel), "float32")
            return _lstm_update(z_input + recurrent, states[1])

        initial_state = [ops.cast(s, "float32") for s in initial_state]
        if _unrolls(sequences.shape[1]):
            last, outputs, states = _unrolled_rnn(
                step, projected, initial_state, mask, go_backwards=self.go_backwards,
                zero_output_for_mask=self.zero_output_for_mask, return_sequences=self.return_sequences,
            )
        else:  # Keras' own sequence loop (the one LSTM.inner_loop runs; not public API)
            last, outputs, states = keras_backend.rnn(
                step, projected, initial_state, go_backwards=self.go_backwards, mask=mask, unroll=False,
                input_length=sequences.shape[1], zero_output_for_mask=self.zero_output_for_mask,
                return_all_outputs=self.return_sequences,
            )
        return ops.cast(last, compute), ops.cast(outputs, compute), [ops.cast(s, compute) for s in states]


def _unrolled_rnn(step, inputs, states, mask, *, go_backwards: bool, zero_output_for_mask: bool, return_sequences: bool):
    """The loop of Keras' ``rnn`` (its while-loop branch) written out over a static time length.

    ``inputs`` [B, T, D], ``states`` a list of [B, H], ``mask`` [B, T] bool or None;
    ``step(input [B, D], states) -> (output [B, H], new states)``. A masked step keeps the
    states and outputs the previous output (zeros with ``zero_output_for_mask``).
    -> (last output [B, H], outputs [B, T, H] in the order stepped (reversed when
    ``go_backwards``; [B, 1, H], the last, without ``return_sequences``), final states).
    Keras' own unrolled branch zeroes a ``go_backwards`` sequence's masked outputs at the
    mirrored time steps (Keras 3.15), so a bidirectional layer's memory would be wrong.
    """
    # unstacked, not sliced per step: a slice's gradient is a zero-filled [B, T, D] tensor per step
    step_inputs = ops.unstack(inputs, axis=1)
    step_masks = ops.unstack(ops.expand_dims(ops.cast(mask, "bool"), -1), axis=1) if mask is not None else None
    order = range(len(step_inputs) - 1, -1, -1) if go_backwards else range(len(step_inputs))
    output = ops.zeros_like(states[0])
    outputs = []
    for t in order:
        new_output, new_states = step(step_inputs[t], states)
        if mask is None:
            output, states = new_output, list(new_states)
        else:
            keep = step_masks[t]
            output = ops.where(keep, new_output, ops.zeros_like(new_output) if zero_output_for_mask else output)
            states = [ops.where(keep, new, old) for new, old in zip(new_states, states)]
        outputs.append(output)
    return output, ops.stack(outputs, axis=1) if return_sequences else ops.expand_dims(output, 1), states


# The sequence layer of each cell kind (make_rnn_layer): Keras' own, LSTM with its faster training loop.
_RNN_LAYERS = {"lstm": HoistedLSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}


@keras.saving.register_keras_serializable(package="keras_s2s")
class LuongAttention(keras.layers.Layer):
    """Multiplicative attention over the decoder outputs (Luong et al. 2015).

    query [B, T, H], memory [B, S, M], source_mask [B, S]
      -> (attentional [B, T, H] = tanh(W_c [context; query]), weights [B, T, S])
    A query of one step, [B, H], gives [B, H] and [B, S] (the one-step decoder: its Dense
    layers are then 2-D matmuls, where a 3-D Dense converts to a Tensordot, seven ONNX ops).
    ``score``: ``general`` = query W_a memory^T; ``dot`` = query memory^T (needs M == H).
    """

    def __init__(self, units: int, memory_width: int, score: str = "general", **kwargs) -> None:
        super().__init__(**kwargs)
        if score not in ("general", "dot"):
            raise ValueError(f"Received an invalid value for argument `score`, expected 'general' or 'dot', got {score!r}.")
        if score == "dot" and memory_width != units:
            raise ValueError(
                f"Luong 'dot' attention needs memory width == units, got memory_width={memory_width}, units={units}."
            )
        self.units = units
        self.memory_width = memory_width
        self.score = score
        if score == "general":
            self.query_projection = keras.layers.Dense(memory_width, use_bias=False, name="query_projection")
        self.combine = keras.layers.Dense(units, activation="tanh", name="combine")

    def build(self, query_shape, memory_shape, source_mask_shape):
        if self.score == "general":
            self.query_projection.build(query_shape)
        self.combine.build((*query_shape[:-1], self.memory_width + query_shape[-1]))

    def call(self, query, memory, source_mask):
        keys = self.query_projection(query) if self.score == "general" else query
        if len(query.shape) == 2:  # one step
            scores = ops.squeeze(ops.matmul(memory, ops.expand_dims(keys, -1)), -1)  # [B, S]
            weights = _masked_softmax(scores, source_mask)
            context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), memory), 1)  # [B, M]
        else:
            weights = _masked_softmax(ops.matmul(keys, ops.transpose(memory, (0, 2, 1))), source_mask)
            context = ops.matmul(weights, memory)
        return self.combine(ops.concatenate([context, query], axis=-1)), weights

    def compute_output_spec(self, query, memory, source_mask):
        return (
            keras.KerasTensor((*query.shape[:-1], self.units), "float32"),
            keras.KerasTensor((*query.shape[:-1], memory.shape[1]), "float32"),
        )

    def get_config(self):
        return {**super().get_config(), "units": self.units, "memory_width": self.memory_width, "score": self.score}


class LuongMemoryProjection(keras.layers.Layer):
    """The memory side of a trained ``LuongAttention``, computed once per source for the
    decoding loops (``step_encoder``): memory [B, S, M], source_mask [B, S]
    -> (keys [B, H, S], values [B, S, H], bias [B, 1, S]).

    The attention is linear in the memory: a step's score ``query W_a m`` is ``query . (m W_a^T)``
    and its context term ``context W_c[:M]`` is ``weights @ (memory W_c[:M])``. So the keys are
    ``memory W_a^T`` (``dot``: the memory itself), transposed so that a step's scores are one
    matmul, the values ``memory W_c[:M]``, and the bias the softmax's -1e9 on padding. A step
    (``ProjectedLuongStep``) then reads the H x H query half of W_c instead of W_a (H x M) and
    all of W_c ((M + H) x H): 0.25 MB of weights instead of 1.25 MB at H=256, M=512.
    """

    def __init__(self, units: int, memory_width: int, score: str = "general", **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.memory_width, self.score = units, memory_width, score

    def build(self, memory_shape, source_mask_shape):
        shape = (self.memory_width, self.units)
        if self.score == "general":
            self.key_kernel = self.add_weight(shape=shape, initializer="zeros", name="key_kernel")
        self.value_kernel = self.add_weight(shape=shape, initializer="zeros", name="value_kernel")

    def call(self, memory, source_mask):
        keys = ops.matmul(memory, self.key_kernel) if self.score == "general" else memory
        bias = ops.expand_dims(_padding_bias(source_mask), 1)
        return ops.transpose(keys, (0, 2, 1)), ops.matmul(memory, self.value_kernel), bias

    def compute_output_spec(self, memory, source_mask):
        batch, length = memory.shape[:2]
        return (
            keras.KerasTensor((batch, self.units, length), "float32"),
            keras.KerasTensor((batch, length, self.units), "float32"),
            keras.KerasTensor((batch, 1, length), "float32"),
        )

    @staticmethod
    def weights_of(attention: LuongAttention) -> list:
        """The layer's weights from a trained ``LuongAttention``."""
        memory_kernel = ops.convert_to_numpy(attention.combine.kernel)[: attention.memory_width]
        if attention.score == "dot":
            return [memory_kernel]
        return [ops.convert_to_numpy(attention.query_projection.kernel).T, memory_kernel]


class ProjectedLuongStep(keras.layers.Layer):
    """One step of a trained ``LuongAttention`` over the projected memory (``LuongMemoryProjection``):

    query [B, H], keys [B, H, S], values [B, S, H], bias [B, 1, S]
      -> (attentional [B, H] = tanh(query W_c[M:] + b + weights @ values), weights [B, 1, S])
    (the weights keep the step axis: they are the one-step decoder's output as they are).
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, query_shape, keys_shape, values_shape, bias_shape):
        self.query_kernel = self.add_weight(shape=(self.units, self.units), initializer="zeros", name="query_kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, query, keys, values, bias):
        weights = ops.softmax(ops.matmul(ops.expand_dims(query, 1), keys) + bias, axis=2)  # [B, 1, S]
        # query W + b first: ONNX Runtime fuses a MatMul and its bias Add into one Gemm.
        return ops.tanh(ops.matmul(query, self.query_kernel) + self.bias + _attend(weights, values)), weights

    def compute_output_spec(self, query, keys, values, bias):
        return keras.KerasTensor(query.shape, "float32"), keras.KerasTensor(bias.shape, "float32")

    @staticmethod
    def weights_of(attention: LuongAttention) -> list:
        """The layer's weights from a trained ``LuongAttention``."""
        combine = attention.combine
        return [ops.convert_to_numpy(combine.kernel)[attention.memory_width :], ops.convert_to_numpy(combine.bias)]


@keras.saving.register_keras_serializable(package="keras_s2s")
class BahdanauAttentionRNN(keras.layers.Layer):
    """A recurrent layer whose cell input at step t is [x_t; context_t], with context_t from
    additive attention (Bahdanau et al. 2015) queried by the previous hidden state.

    inputs [B, T, E], initial_state list of [B, H], memory [B, S, M], source_mask [B, S]
      -> (outputs [B, T, H], contexts [B, T, M], weights [B, T, S], *final_states [B, H])

    Keras 3's ``RNN`` has no ``constants`` argument (and ``keras.ops.scan`` on TensorFlow
    requires outputs shaped like the carry), so the loop is a ``tf.while_loop`` over time
    around a stock cell: it exports to SavedModel and, by tf2onnx, to an ONNX ``Loop``. Stepping one token at a time with the returned
    states gives exactly the full-sequence result. A static time length of at most
    ``MAX_UNROLLED_STEPS`` (the train step traced per batch shape) is unrolled instead.
    """

    def __init__(self, cell: str, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cell_type = cell
        self.units = units
        self.cell = make_rnn_cell(cell, units, name="cell")
        self.query_projection = keras.layers.Dense(units, use_bias=False, name="query_projection")
        self.memory_projection = keras.layers.Dense(units, use_bias=False, name="memory_projection")

    def build(self, inputs_shape, initial_state_shape, memory_shape, source_mask_shape):
        batch, memory_width = inputs_shape[0], memory_shape[-1]
        self.cell.build((batch, inputs_shape[-1] + memory_width))
        self.query_projection.build((batch, self.units))
        self.memory_projection.build(memory_shape)
        self.energy = self.add_weight(shape=(self.units,), initializer="glorot_uniform", name="energy")

    def call(self, inputs, initial_state, memory, source_mask):
        import tensorflow as tf

        keys = self.memory_projection(memory)  # [B, S, A], once per sequence
        bias = _padding_bias(source_mask)
        if inputs.shape[1] == 1:  # one step (the decoder stepped token by token): no loop op
            output, context, weights, new_states = self._step(inputs[:, 0], initial_state, keys, bias, memory)
            return (output[:, None], context[:, None], weights[:, None], *new_states)
        if _unrolls(inputs.shape[1]):  # see HoistedLSTM
            states, per_step = list(initial_state), ([], [], [])  # outputs, contexts, weights
            for x in ops.unstack(inputs, axis=1):
                *values, states = self._step(x, states, keys, bias, memory)
                for values_so_far, value in zip(per_step, values):
                    values_so_far.append(value)
            return (*(ops.stack(values, axis=1) for values in per_step), *states)
        time = tf.shape(inputs)[1]
        steps = tf.TensorArray(inputs.dtype, size=time).unstack(tf.transpose(inputs, (1, 0, 2)))
        per_step = [tf.TensorArray(inputs.dtype, size=time) for _ in range(3)]  # outputs, contexts, weights

        def step(t, states, per_step):
            output, context, weights, new_states = self._step(steps.read(t), states, keys, bias, memory)
            per_step = [array.write(t, value) for array, value in zip(per_step, (output, context, weights))]
            return t + 1, tuple(new_states), per_step

        _, final_states, per_step = tf.while_loop(
            lambda t, *_: t < time, step, (tf.constant(0), tuple(initial_state), per_step), maximum_iterations=time
        )
        batch_major = [tf.transpose(array.stack(), (1, 0, 2)) for array in per_step]
        return (*batch_major, *final_states)

    def _step(self, x, states, keys, bias, memory):
        """x [B, E], states [B, H]..., keys [B, S, A], bias [B, S], memory [B, S, M]
        -> (output [B, H], context [B, M], weights [B, S], new states)."""
        query = ops.expand_dims(self.query_projection(states[0]), 1)  # [B, 1, A]
        # v . tanh(...) as multiply-and-sum: a Dense on [B, S, A] inside the loop becomes a
        # Tensordot whose gradient XLA cannot compile.
        scores = ops.sum(ops.tanh(keys + query) * self.energy, axis=-1) + bias  # [B, S]
        weights = ops.softmax(scores, axis=-1)
        context = ops.squeeze(ops.matmul(ops.expand_dims(weights, 1), memory), 1)  # [B, M]
        # axis 1, not -1: tf2onnx needs the rank to convert a negative axis, and inside a loop
        # whose state changes shape (the greedy loop that drops finished rows) it has none.
        output, new_states = self.cell(ops.concatenate([x, context], axis=1), list(states))
        return output, context, weights, new_states

    def compute_output_spec(self, inputs, initial_state, memory, source_mask):
        batch, time = inputs.shape[0], inputs.shape[1]
        return (
            keras.KerasTensor((batch, time, self.units), "float32"),
            keras.KerasTensor((batch, time, memory.shape[-1]), "float32"),
            keras.KerasTensor((batch, time, memory.shape[1]), "float32"),
            *(keras.KerasTensor((batch, self.units), "float32") for _ in initial_state),
        )

    def get_config(self):
        return {**super().get_config(), "cell": self.cell_type, "units": self.units}


class BahdanauMemoryProjection(keras.layers.Layer):
    """The memory side of a trained ``BahdanauAttentionRNN`` and the ``attentional`` layer after
    it, computed once per source for the decoding loops (``step_encoder``): memory [B, S, M],
    source_mask [B, S] -> (keys [B, S, A], cell_values [B, S, G*H], values [B, S, H], bias [B, 1, S]).

    The context enters the first layer's cell input and the attentional layer linearly, so
    ``context W = weights @ (memory W)``: cell_values = memory times the context rows of the
    cell's input kernel (G = 4 gates for LSTM, 3 for GRU, 1 for SimpleRNN), values = memory
    times the context rows of the attentional kernel, keys = memory W_memory (as in the layer).
    A step (``ProjectedBahdanauStep``) then reads no weight of the memory's width: 1.8 MB per
    step instead of 4.9 MB for the bi-LSTM 256 (A = H = 256, M = 512, E = 64).
    """

    def __init__(self, units: int, gate_units: int, memory_width: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units, self.gate_units, self.memory_width = units, gate_units, memory_width

    def build(self, memory_shape, source_mask_shape):
        def kernel(width, name):
            return self.add_weight(shape=(self.memory_width, width), initializer="zeros", name=name)

        self.key_kernel = kernel(self.units, "key_kernel")
        self.cell_value_kernel = kernel(self.gate_units, "cell_value_kernel")
        self.value_kernel = kernel(self.units, "value_kernel")

    def call(self, memory, source_mask):
        bias = ops.expand_dims(_padding_bias(source_mask), 1)
        projections = (self.key_kernel, self.cell_value_kernel, self.value_kernel)
        return (*(ops.matmul(memory, kernel) for kernel in projections), bias)

    def compute_output_spec(self, memory, source_mask):
        batch, length = memory.shape[:2]
        return (
            *(keras.KerasTensor((batch, length, width), "float32") for width in (self.units, self.gate_units, self.units)),
            keras.KerasTensor((batch, 1, length), "float32"),
        )

    @staticmethod
    def weights_of(attention_rnn: BahdanauAttentionRNN, attentional: keras.layers.Dense) -> list:
        """The layer's weights from a trained ``BahdanauAttentionRNN`` and ``attentional`` Dense."""
        memory_width = attention_rnn.memory_projection.kernel.shape[0]
        numpy = ops.convert_to_numpy
        return [
            numpy(attention_rnn.memory_projection.kernel),
            numpy(attention_rnn.cell.kernel)[-memory_width:],  # the cell input is [x; context]
            numpy(attentional.kernel)[-memory_width:],  # the attentional input is [h; context]
        ]


class ProjectedBahdanauStep(keras.layers.Layer):
    """One step of a trained ``BahdanauAttentionRNN`` over the projected memory
    (``BahdanauMemoryProjection``), its cell's math written out on the cell input's projection:

    x [B, E], states [B, H]..., keys [B, S, A], cell_values [B, S, G*H], bias [B, 1, S]
      -> (output [B, H], weights [B, 1, S], new states)
    with weights = softmax(v . tanh(keys + h W_query) + bias) and the cell input's projection
    x W_x + weights @ cell_values (what the cell computes as [x; context] W). The cells are
    Keras' with their defaults: LSTM (gates i, f, c, o), GRU (reset_after, gates z, r, h),
    SimpleRNN (tanh).
    """

    def __init__(self, cell: str, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cell_type, self.units = cell, units
        self.gates = _GATES[cell]

    def build(self, x_shape, states_shape, keys_shape, cell_values_shape, bias_shape):
        gate_units = self.gates * self.units

        def weight(shape, name):
            return self.add_weight(shape=shape, initializer="zeros", name=name)

        self.query_kernel = weight((self.units, keys_shape[-1]), "query_kernel")
        self.energy = weight((keys_shape[-1],), "energy")
        self.input_kernel = weight((x_shape[-1], gate_units), "input_kernel")
        self.recurrent_kernel = weight((self.units, gate_units), "recurrent_kernel")
        self.cell_bias = weight((2, gate_units) if self.cell_type == "gru" else (gate_units,), "cell_bias")

    def call(self, x, states, keys, cell_values, bias):
        query = ops.expand_dims(ops.matmul(states[0], self.query_kernel), 1)  # [B, 1, A]
        scores = ops.sum(ops.tanh(keys + query) * self.energy, axis=2)  # [B, S]
        weights = ops.softmax(ops.expand_dims(scores, 1) + bias, axis=2)  # [B, 1, S]
        projected = ops.matmul(x, self.input_kernel) + _attend(weights, cell_values)
        output, new_states = self._cell(projected, states)
        return output, weights, new_states

    def _cell(self, projected, states):
        """The Keras cell on ``[x; context] W`` given as ``projected`` [B, G*H]."""
        h = states[0]
        if self.cell_type == "lstm":
            return _lstm_update(projected + ops.matmul(h, self.recurrent_kernel) + self.cell_bias, states[1])
        if self.cell_type == "gru":
            x_z, x_r, x_h = ops.split(projected + self.cell_bias[0], 3, axis=1)
            h_z, h_r, h_h = ops.split(ops.matmul(h, self.recurrent_kernel) + self.cell_bias[1], 3, axis=1)
            z, r = ops.sigmoid(x_z + h_z), ops.sigmoid(x_r + h_r)
            h = z * h + (1.0 - z) * ops.tanh(x_h + r * h_h)
            return h, [h]
        h = ops.tanh(projected + self.cell_bias + ops.matmul(h, self.recurrent_kernel))
        return h, [h]

    def compute_output_spec(self, x, states, keys, cell_values, bias):
        def state():  # a new tensor each: the functional graph tells outputs apart by identity
            return keras.KerasTensor((x.shape[0], self.units), "float32")

        return state(), keras.KerasTensor(bias.shape, "float32"), [state() for _ in states]

    @staticmethod
    def weights_of(attention_rnn: BahdanauAttentionRNN) -> list:
        """The layer's weights from a trained ``BahdanauAttentionRNN``."""
        numpy = ops.convert_to_numpy
        memory_width = attention_rnn.memory_projection.kernel.shape[0]
        cell = attention_rnn.cell
        return [
            numpy(attention_rnn.query_projection.kernel),
            numpy(attention_rnn.energy),
            numpy(cell.kernel)[:-memory_width],
            numpy(cell.recurrent_kernel),
            numpy(cell.bias),
        ]


class ProjectedAttentional(keras.layers.Layer):
    """The ``attentional`` layer after a ``ProjectedBahdanauStep``: h [B, H], weights [B, 1, S],
    values [B, S, H] -> tanh(h W_h + b + weights @ values) [B, H] (what the trained layer
    computes as tanh([h; context] W + b))."""

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, h_shape, weights_shape, values_shape):
        self.kernel = self.add_weight(shape=(h_shape[-1], self.units), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, h, weights, values):
        return ops.tanh(ops.matmul(h, self.kernel) + self.bias + _attend(weights, values))

    def compute_output_spec(self, h, weights, values):
        return keras.KerasTensor((h.shape[0], self.units), "float32")

    @staticmethod
    def weights_of(attentional: keras.layers.Dense, units: int) -> list:
        """The layer's weights from the trained ``attentional`` Dense (its first ``units`` rows read h)."""
        return [ops.convert_to_numpy(attentional.kernel)[:units], ops.convert_to_numpy(attentional.bias)]


# --- models ------------------------------------------------------------------------------
def build_encoder(
    config: Seq2SeqConfig, vocab_size: int, name: str = "encoder", *, mask_padding: bool = True
) -> keras.Model:
    """{source_ids [B, S] int32 (PAD=0 masked)} -> final states [B, H] (+ memory, source_mask).

    ``mask_padding=False`` builds the same layers (same weight order) without the Keras mask:
    its states are right only for rows without padding. It exists for the ONNX export, where
    the unmasked LSTM converts to one fused ``LSTM`` op that gets the lengths as
    ``sequence_lens`` instead (keras_s2s.export.onnx).
    """
    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_IDS)
    if mask_padding:
        embedding = keras.layers.Embedding(vocab_size, config.embedding_size, mask_zero=True, name="embedding")
    else:
        embedding = _GatherEmbedding(vocab_size, config.embedding_size, name="embedding")
    x = embedding(source_ids)
    names = iter(state_names(config.cell, config.num_layers))
    outputs: dict = {}
    for layer in range(config.num_layers):
        x = PhiloxDropout(config.dropout, name=f"dropout_{layer}")(x)
        rnn = make_rnn_layer(config.cell, config.hidden_size, f"{config.cell}_{layer}")
        if not config.bidirectional:
            x, *final_states = rnn(x)
        else:
            x, *both = keras.layers.Bidirectional(rnn, merge_mode=config.encoder_merge, name=f"bidirectional_{layer}")(x)
            half = len(both) // 2
            final_states = [
                _bridge(config, kind, layer, forward, backward)
                for kind, forward, backward in zip(_state_kinds(config.cell), both[:half], both[half:])
            ]
        for state in final_states:
            outputs[next(names)] = state
    if config.attention != "none":
        source_mask = SourceMask(name=SOURCE_MASK)(source_ids)
        outputs[MEMORY] = EncoderMemory(name=MEMORY)(x, source_mask)
        outputs[SOURCE_MASK] = source_mask
    return keras.Model({SOURCE_IDS: source_ids}, outputs, name=name)


def _bridge(config: Seq2SeqConfig, kind: str, layer: int, forward, backward):
    """Forward and backward final states [B, H] -> one decoder initial state [B, H]."""
    if config.bridge == "sum":
        return keras.layers.Add(name=f"bridge_{kind}_{layer}")([forward, backward])
    both = keras.layers.Concatenate(name=f"bridge_concat_{kind}_{layer}")([forward, backward])
    # A cell state is unbounded, so it is mapped linearly; hidden states stay in tanh's range.
    activation = None if kind == "c" else "tanh"
    return keras.layers.Dense(config.hidden_size, activation=activation, name=f"bridge_{kind}_{layer}")(both)


def memory_width(config: Seq2SeqConfig) -> int:
    """Width M of the encoder memory: one RNN's outputs, or both directions concatenated."""
    return config.hidden_size * (2 if config.bidirectional and config.encoder_merge == "concat" else 1)


def build_decoder(
    config: Seq2SeqConfig, vocab_size: int, name: str = "decoder", *, single_step: bool = False
) -> keras.Model:
    """{token_ids [B, T] int32, state_* [B, H] (, memory, source_mask)}
    -> {logits [B, T, V], next_state_* [B, H] (, attention_weights [B, T, S])}.

    ``single_step=True`` builds the inference decoder for T=1 only, for decoders that are
    themselves the body of a loop (keras_s2s.export.greedy, .beam): the step is computed on
    [B, D] tensors with the RNN cells called directly (no loop op, no per-step reshapes), only
    the outputs get their T=1 axis back, an LSTM first layer fed by the embedding has the
    two folded into one table (``_TokenLSTMStep``), and attention reads the memory projected
    once per source (inputs attention_* instead of memory and source_mask: ``step_encoder``,
    ``ProjectedLuongStep``, ``ProjectedBahdanauStep``). ``single_step_decoder`` fills in the
    weights of a trained decoder."""
    hidden = config.hidden_size
    token_ids = keras.Input(shape=(1 if single_step else None,), dtype="int32", name=TOKEN_IDS)
    names = state_names(config.cell, config.num_layers)
    inputs = {TOKEN_IDS: token_ids, **{n: keras.Input(shape=(hidden,), dtype="float32", name=n) for n in names}}
    projected = single_step and config.attention != "none"  # the inputs step_encoder makes
    if projected:
        for name, shape in _projected_memory_shapes(config).items():
            inputs[name] = keras.Input(shape=shape, dtype="float32", name=name)
    elif config.attention != "none":
        inputs[MEMORY] = keras.Input(shape=(None, memory_width(config)), dtype="float32", name=MEMORY)
        inputs[SOURCE_MASK] = keras.Input(shape=(None,), dtype="float32", name=SOURCE_MASK)
    per_layer = len(_state_kinds(config.cell))
    fold_first_layer = single_step and _folds_first_layer(config)
    if not fold_first_layer:
        embedding_layer = _GatherEmbedding if single_step else keras.layers.Embedding
        x = embedding_layer(vocab_size, config.embedding_size, name="embedding")(token_ids)
        if single_step:
            x = ops.squeeze(x, 1)  # [B, E]
    outputs: dict = {}
    for layer in range(config.num_layers):
        layer_names = names[layer * per_layer : (layer + 1) * per_layer]
        initial_state = [inputs[n] for n in layer_names]
        folded = layer == 0 and fold_first_layer  # reads token_ids itself: no embedding, no dropout
        if not folded:
            x = PhiloxDropout(config.dropout, name=f"dropout_{layer}")(x)
        if folded:
            x, new_states = _TokenLSTMStep(vocab_size, hidden, name=f"{config.cell}_{layer}")(token_ids, initial_state)
        elif layer == 0 and config.attention == "bahdanau":
            if single_step:
                step = ProjectedBahdanauStep(config.cell, hidden, name=f"bahdanau_{config.cell}_{layer}")
                x, weights, new_states = step(
                    x, initial_state, inputs[ATTENTION_KEYS], inputs[ATTENTION_CELL_VALUES], inputs[ATTENTION_BIAS]
                )
            else:
                attention_rnn = BahdanauAttentionRNN(config.cell, hidden, name=f"bahdanau_{config.cell}_{layer}")
                x, context, weights, *new_states = attention_rnn(x, initial_state, inputs[MEMORY], inputs[SOURCE_MASK])
        elif single_step:
            x, new_states = make_rnn_cell(config.cell, hidden, f"{config.cell}_{layer}")(x, initial_state)
        else:
            x, *new_states = make_rnn_layer(config.cell, hidden, f"{config.cell}_{layer}")(x, initial_state=initial_state)
        for state_name, state in zip(layer_names, new_states):
            outputs[next_state_name(state_name)] = state
    if config.attention == "bahdanau" and single_step:
        x = ProjectedAttentional(hidden, name="attentional")(x, weights, inputs[ATTENTION_VALUES])
    elif config.attention == "bahdanau":
        x = keras.layers.Concatenate(name="bahdanau_output")([x, context])
        x = keras.layers.Dense(hidden, activation="tanh", name="attentional")(x)
    elif projected:
        x, weights = ProjectedLuongStep(hidden, name="luong_attention")(
            x, inputs[ATTENTION_KEYS], inputs[ATTENTION_VALUES], inputs[ATTENTION_BIAS]
        )
    elif config.attention == "luong":
        x, weights = LuongAttention(hidden, memory_width(config), config.attention_score, name="luong_attention")(
            x, inputs[MEMORY], inputs[SOURCE_MASK]
        )
    x = PhiloxDropout(config.dropout, name="dropout_output")(x)
    # float32 under any dtype policy: the softmax and the loss need its range and precision.
    logits = keras.layers.Dense(vocab_size, name=LOGITS, dtype="float32")(x)
    outputs[LOGITS] = ops.expand_dims(logits, 1) if single_step else logits
    if config.attention != "none":
        # [B, T, S]; one step: [B, 1, S], as the projected attention layers return them
        outputs[ATTENTION_WEIGHTS] = keras.layers.Identity(name=ATTENTION_WEIGHTS)(weights)
    return keras.Model(inputs, outputs, name=name)


def _projected_memory_shapes(config: Seq2SeqConfig) -> dict:
    """The one-step decoder's attention inputs (``step_encoder``'s outputs), without the batch
    axis, in the order the memory projection layers return them."""
    hidden = config.hidden_size
    if config.attention == "luong":
        return {ATTENTION_KEYS: (hidden, None), ATTENTION_VALUES: (None, hidden), ATTENTION_BIAS: (1, None)}
    return {
        ATTENTION_KEYS: (None, hidden), ATTENTION_CELL_VALUES: (None, _GATES[config.cell] * hidden),
        ATTENTION_VALUES: (None, hidden), ATTENTION_BIAS: (1, None),
    }


def build_trainer(encoder: keras.Model, decoder: keras.Model, name: str = "seq2seq") -> keras.Model:
    """[source_ids [B, S], decoder_input_ids [B, T]] int32 -> logits [B, T, V] (teacher forcing).

    Every decoder input but ``token_ids`` is the encoder output of the same name."""
    source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_IDS)
    decoder_input_ids = keras.Input(shape=(None,), dtype="int32", name=DECODER_INPUT_IDS)
    encoded = encoder({SOURCE_IDS: source_ids})
    feeds = {name: encoded[name] for name in decoder.input if name != TOKEN_IDS}
    logits = decoder({TOKEN_IDS: decoder_input_ids, **feeds})[LOGITS]
    return keras.Model([source_ids, decoder_input_ids], logits, name=name)


class Seq2Seq(NamedTuple):
    encoder: keras.Model
    decoder: keras.Model
    trainer: keras.Model


def build_seq2seq(config: Seq2SeqConfig, source_vocab_size: int, target_vocab_size: int) -> Seq2Seq:
    """Encoder, decoder and the trainer that composes them (shared weights), their layers
    computing in ``config.dtype_policy`` (the logits always in float32)."""
    with dtype_policy_scope(config.dtype_policy):
        encoder = build_encoder(config, source_vocab_size)
        decoder = build_decoder(config, target_vocab_size)
        return Seq2Seq(encoder, decoder, build_trainer(encoder, decoder))


def float32_copy(trainer: keras.Model, config: Seq2SeqConfig) -> Seq2Seq:
    """The float32 model with ``trainer``'s weights (a ``mixed_bfloat16`` trainer's weights are
    float32 already): what a run saves, so that loading and exporting it never computes in
    bfloat16."""
    encoder, decoder, _ = split_trainer(trainer)
    copy = build_seq2seq(
        config.replace(dtype_policy="float32"),
        encoder.get_layer("embedding").input_dim,
        decoder.get_layer("embedding").input_dim,
    )
    copy.trainer.set_weights(trainer.get_weights())
    return copy


@contextlib.contextmanager
def dtype_policy_scope(policy: str) -> Iterator[None]:
    """Layers created inside take Keras dtype policy ``policy``; the global policy is restored
    after (Keras has only a process-wide setting)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def unmasked_encoder(encoder: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """A copy of ``encoder`` without the Keras mask (``build_encoder(mask_padding=False)``)."""
    with dtype_policy_scope("float32"):
        copy = build_encoder(config, encoder.get_layer("embedding").input_dim, name=encoder.name, mask_padding=False)
    copy.set_weights(encoder.get_weights())
    return copy


def single_step_decoder(decoder: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """A copy of ``decoder`` for T=1 with no loop op (``build_decoder(single_step=True)``):
    the same outputs for one token, layer weights copied by name (a folded first layer gets
    the embedding and input projection multiplied out)."""
    with dtype_policy_scope("float32"):
        copy = build_decoder(config, decoder.get_layer("embedding").input_dim, name=decoder.name, single_step=True)
    for layer in copy.layers:
        if isinstance(layer, _TokenLSTMStep):
            layer.set_weights(_TokenLSTMStep.folded_weights(decoder.get_layer("embedding"), decoder.get_layer(layer.name).cell))
        elif isinstance(layer, (ProjectedLuongStep, ProjectedBahdanauStep)):
            layer.set_weights(type(layer).weights_of(decoder.get_layer(layer.name)))
        elif isinstance(layer, ProjectedAttentional):
            layer.set_weights(ProjectedAttentional.weights_of(decoder.get_layer(layer.name), config.hidden_size))
        elif layer.weights:
            layer.set_weights(decoder.get_layer(layer.name).get_weights())
    return copy


def step_encoder(encoder: keras.Model, decoder: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """The encoder that starts the decoding loops of ``single_step_decoder(decoder, config)``:
    ``encoder`` (masked or not) itself, or with attention ``encoder`` with its memory and
    source mask replaced by what ``decoder``'s attention computes from them
    (``LuongMemoryProjection``, ``BahdanauMemoryProjection``): once per source instead of once
    per step.

    {source_ids [B, S] int32} -> {state_* [B, H], (Luong) attention_keys [B, H, S],
    attention_values [B, S, H], attention_bias [B, 1, S] float32; (Bahdanau) attention_keys
    [B, S, H], attention_cell_values [B, S, G*H], attention_values [B, S, H], attention_bias}."""
    if config.attention == "none":
        return encoder
    with dtype_policy_scope("float32"):
        source_ids = keras.Input(shape=(None,), dtype="int32", name=SOURCE_IDS)
        encoded = encoder({SOURCE_IDS: source_ids})
        if config.attention == "luong":
            projection = LuongMemoryProjection(
                config.hidden_size, memory_width(config), config.attention_score, name="memory_projection"
            )
            trained = LuongMemoryProjection.weights_of(decoder.get_layer("luong_attention"))
        else:
            projection = BahdanauMemoryProjection(
                config.hidden_size, _GATES[config.cell] * config.hidden_size, memory_width(config),
                name="memory_projection",
            )
            trained = BahdanauMemoryProjection.weights_of(
                decoder.get_layer(f"bahdanau_{config.cell}_0"), decoder.get_layer("attentional")
            )
        projected = projection(encoded[MEMORY], encoded[SOURCE_MASK])
    projection.set_weights(trained)
    outputs = {name: value for name, value in encoded.items() if name not in (MEMORY, SOURCE_MASK)}
    outputs.update(zip(_projected_memory_shapes(config), projected))
    return keras.Model({SOURCE_IDS: source_ids}, outputs, name=f"{encoder.name}_for_steps")


def _folds_first_layer(config: Seq2SeqConfig) -> bool:
    """Whether the one-step decoder folds its embedding into the first layer: an LSTM fed by
    the embedding alone (Bahdanau's first layer also takes the attention context)."""
    return config.cell == "lstm" and config.attention != "bahdanau"


def split_trainer(trainer: keras.Model) -> Seq2Seq:
    """The encoder and decoder inside a (loaded) trainer."""
    return Seq2Seq(trainer.get_layer("encoder"), trainer.get_layer("decoder"), trainer)
