"""Greedy decoding as one graph: source ids in, output ids out, one call per batch.

    greedy: {source_ids [B, S] int32}
         -> {output_ids [B, L] int32, output_lengths [B] int32,
             log_prob [B] float32, finished [B] bool}

A ``tf.while_loop`` over the same Keras encoder and decoder that the step-by-step runtimes
use (the decoder with T=1), threading the carries of the decoding interface exactly as
``keras_s2s.decoding.decode`` does. It is exported as the in-graph decode signature of a
SavedModel and, through tf2onnx, as an ONNX ``Loop``: one call per batch instead of one per
output token, whose per-call overhead is what limits the step loop at batch 1.

Per row, the outputs are ``decode(..., Greedy())``'s hypothesis: ``output_ids[:length]``
are the generated ids without the final EOS (PAD after them), ``log_prob`` sums the
log-probabilities of every generated token, EOS included, and ``finished`` says whether EOS
came within ``max_length`` steps. L is the number of steps run: decoding stops when every
row has produced EOS, or after ``max_length`` steps.
"""

from __future__ import annotations

import tensorflow as tf

from keras_s2s.constants import EOS_ID, FINISHED, LOG_PROB, OUTPUT_IDS, OUTPUT_LENGTHS, PAD_ID, SOS_ID
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature, TensorInfo

assert PAD_ID == 0, "greedy_decode pads output_ids by multiplying with 0"


def greedy_signature(encoder_signature: GraphSignature, decoding: DecodingInterface) -> GraphSignature:
    """The greedy graph's inputs (the encoder's source ids) and outputs."""
    return GraphSignature(
        "greedy",
        (encoder_signature.input(decoding.source_input),),
        (
            TensorInfo(FINISHED, "bool", (None,)),
            TensorInfo(LOG_PROB, "float32", (None,)),
            TensorInfo(OUTPUT_IDS, "int32", (None, None)),
            TensorInfo(OUTPUT_LENGTHS, "int32", (None,)),
        ),
    )


def greedy_decode(encoder, decoder, decoding: DecodingInterface, source_ids: tf.Tensor, max_length: int) -> dict:
    """source_ids [B, S] int32 -> the greedy outputs (see the module docstring), in-graph.

    ``encoder`` and ``decoder`` are callables over dicts of named tensors (Keras models).
    The loop body only steps and records each step's token and its log-probability; the
    bookkeeping (where each row's EOS is, its length and log-probability) happens once
    after the loop, which keeps the ONNX ``Loop`` body small (every op is a kernel call per
    step)."""
    encoded = encoder({decoding.source_input: source_ids}, training=False)
    constants = {c.input: encoded[c.init_from] for c in decoding.carries if c.update_from is None}
    carried = [c for c in decoding.carries if c.update_from is not None]
    batch = tf.shape(source_ids)[0]

    def step(t, tokens, states, ended, ids, log_probs):
        feeds = {decoding.token_input: tokens, **constants, **{c.input: s for c, s in zip(carried, states)}}
        outputs = decoder(feeds, training=False)
        # Everything stays [B, 1] (the decoder's T=1): the next input needs no reshaping.
        step_log_probs = tf.nn.log_softmax(outputs[decoding.logits_output])
        next_ids = tf.argmax(step_log_probs, axis=-1, output_type=tf.int32)
        ids = ids.write(t, next_ids)
        # The argmax's own log-probability is the row maximum: one ReduceMax instead of a
        # gather at next_ids (Cast, Unsqueeze, GatherND in ONNX); kept [B, 1, 1], which
        # tf2onnx writes as one GlobalMaxPool (without keepdims: plus a Squeeze).
        log_probs = log_probs.write(t, tf.reduce_max(step_log_probs, axis=-1, keepdims=True))
        # float, so the loop condition's ReduceMin feeds Less without a Cast in ONNX
        ended = tf.maximum(ended, tf.cast(tf.equal(next_ids, EOS_ID), tf.float32))
        new_states = tuple(outputs[c.update_from] for c in carried)
        return t + 1, next_ids, new_states, ended, ids, log_probs

    def not_done(t, tokens, states, ended, ids, log_probs):
        return tf.less(tf.reduce_min(ended), 0.5)

    start = (
        tf.constant(0),
        tf.fill([batch, 1], tf.constant(SOS_ID, tf.int32)),
        tuple(encoded[c.init_from] for c in carried),
        tf.zeros([batch, 1], tf.float32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, 1])),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, 1, 1])),
    )
    _, _, _, _, ids, log_probs = tf.while_loop(not_done, step, start, maximum_iterations=max_length)
    # Bookkeeping on the [L, B] stacks, in few ops (each is a kernel call per request).
    ids, log_probs = ids.stack()[:, :, 0], log_probs.stack()[:, :, 0, 0]  # [L, B]
    is_eos = tf.cast(tf.equal(ids, EOS_ID), tf.int32)
    eos_so_far = tf.cumsum(is_eos, axis=0)  # EOS among steps 0..t
    emitted = tf.cast(tf.equal(eos_so_far, 0), tf.int32)  # the steps before the first EOS
    counted = tf.cast(tf.equal(eos_so_far - is_eos, 0), tf.float32)  # ... and the first EOS itself
    return {
        OUTPUT_IDS: tf.transpose(ids * emitted),  # PAD_ID is 0 after the emitted ids
        OUTPUT_LENGTHS: tf.reduce_sum(emitted, axis=0),
        LOG_PROB: tf.reduce_sum(log_probs * counted, axis=0),
        FINISHED: tf.greater(tf.reduce_max(is_eos, axis=0), 0),
    }
