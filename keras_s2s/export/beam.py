"""Beam search as one graph, with the n-best: ``keras_s2s.decoding``'s ``Beam`` in-graph.

    beam_decode(..., source_ids [B, S] int32, width W, nbest K, length_penalty a)
        -> {output_ids [B, K, L] int32, output_lengths [B, K] int32, score [B, K] float32,
            log_prob [B, K] float32, finished [B, K] bool}

W, K and a are Python numbers (the translate graph: fixed at export) or scalar tensors (the
beam graph: ``beam_width``, ``nbest`` and ``length_penalty`` inputs, any beam per request).

The same search as ``decoding._beam``, step for step: row ``b * W + k`` of the expanded batch
is beam k of source b; only beam 0 is live at first; a finished beam is extended only by EOS
at log-probability 0; candidates are ranked by ``log_prob / lp(len)`` (GNMT length penalty),
ties going to the lowest parent beam, then the lowest token id (``tf.math.top_k`` keeps the
lower index first); per source the K best come out finished before unfinished, each by score.
Scores are summed in float32 here (float64 in numpy), so hypotheses whose scores differ by
less than ~1e-6 may swap places.

``compiled``: the search runs as one XLA-compiled function (``jit_compile``), as the greedy
graph's ``greedy_xla`` signature does for small batches (keras_s2s.export.greedy), here at every
batch size (the beam's shapes do not change inside the loop). XLA compiles once per batch size,
source length bucket, width and nbest.
"""

from __future__ import annotations

import tensorflow as tf

from keras_s2s.constants import (
    BEAM_WIDTH, EOS_ID, FINISHED, LENGTH_PENALTY, LOG_PROB, NBEST, OUTPUT_IDS, OUTPUT_LENGTHS, PAD_ID, SCORE, SOS_ID,
)
from keras_s2s.export.greedy import padded_for_compilation
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature, TensorInfo

COMPILED_BEAM_SIGNATURE = "beam_xla"
"""The beam SavedModel's XLA-compiled signature (``serving_default``: the same search uncompiled)."""

_STEPS = "steps"


def beam_signature(encoder_signature: GraphSignature, decoding: DecodingInterface) -> GraphSignature:
    """The beam graph's inputs (the encoder's source ids and the beam's scalars) and outputs."""
    return GraphSignature(
        "beam",
        (
            encoder_signature.input(decoding.source_input),
            TensorInfo(BEAM_WIDTH, "int32", ()),
            TensorInfo(NBEST, "int32", ()),
            TensorInfo(LENGTH_PENALTY, "float32", ()),
        ),
        (
            TensorInfo(FINISHED, "bool", (None, None)),
            TensorInfo(LOG_PROB, "float32", (None, None)),
            TensorInfo(OUTPUT_IDS, "int32", (None, None, None)),
            TensorInfo(OUTPUT_LENGTHS, "int32", (None, None)),
            TensorInfo(SCORE, "float32", (None, None)),
        ),
    )


def beam_decode(
    encoder, decoder, decoding: DecodingInterface, source_ids: tf.Tensor, max_length: int,
    width, nbest, length_penalty, *, compiled: bool = False,
) -> dict[str, tf.Tensor]:
    """source_ids [B, S] int32 -> the K best hypotheses per row (module docstring), in-graph.

    ``encoder`` and ``decoder`` are callables over dicts of named tensors (Keras models; the
    decoder a one-step one). ``output_ids[b, k, :output_lengths[b, k]]`` are the generated ids
    without the final EOS, PAD after them."""
    if compiled:
        search = tf.function(
            lambda ids, w, k, a: _search(encoder, decoder, decoding, ids, max_length, w, k, a),
            jit_compile=True, autograph=False,
        )
        found = search(
            padded_for_compilation(source_ids), tf.convert_to_tensor(width, tf.int32),
            tf.convert_to_tensor(nbest, tf.int32), tf.convert_to_tensor(length_penalty, tf.float32),
        )
    else:
        found = _search(encoder, decoder, decoding, source_ids, max_length, width, nbest, length_penalty)
    steps = found.pop(_STEPS)
    return {**found, OUTPUT_IDS: found[OUTPUT_IDS][:, :, :steps]}


def _search(encoder, decoder, decoding: DecodingInterface, source_ids, max_length: int, width, nbest, length_penalty) -> dict:
    """The search, with ``output_ids`` [B, K, max_length] (PAD after each hypothesis) and the
    number of steps run under ``"steps"``: no shape depends on a value, so XLA can compile it."""
    batch = tf.shape(source_ids)[0]
    encoded = encoder({decoding.source_input: source_ids}, training=False)
    expand = lambda value: tf.repeat(value, width, axis=0)  # noqa: E731  [B, ...] -> [B * W, ...]
    constants = {c.input: expand(encoded[c.init_from]) for c in decoding.carries if c.update_from is None}
    carried = [c for c in decoding.carries if c.update_from is not None]
    beam_rows = tf.range(batch)[:, None] * width  # [B, 1]: row of beam 0 of each source
    step_index = tf.range(max_length)

    def penalty(length):
        return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, length_penalty)

    def step(t, tokens, states, log_prob, length, finished, ids):
        feeds = {decoding.token_input: tokens, **constants, **{c.input: s for c, s in zip(carried, states)}}
        outputs = decoder(feeds, training=False)
        step_log_probs = tf.nn.log_softmax(outputs[decoding.logits_output][:, -1, :])  # [B * W, V]
        vocab = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(step_log_probs, [batch, width, vocab])
        eos_only = tf.where(tf.equal(tf.range(vocab), EOS_ID), 0.0, float("-inf"))
        step_log_probs = tf.where(finished[..., None], eos_only, step_log_probs)
        total = log_prob[..., None] + step_log_probs  # [B, W, V]
        new_length = length + tf.cast(tf.logical_not(finished), tf.int32)
        score = total / penalty(new_length)[..., None]
        best = tf.math.top_k(tf.reshape(score, [batch, -1]), k=width).indices  # [B, W]
        parent, token = best // vocab, best % vocab
        log_prob = tf.gather(tf.reshape(total, [batch, -1]), best, batch_dims=1)
        length = tf.gather(new_length, parent, batch_dims=1)
        finished = tf.logical_or(tf.gather(finished, parent, batch_dims=1), tf.equal(token, EOS_ID))
        ids = tf.where(tf.equal(step_index, t), token[..., None], tf.gather(ids, parent, batch_dims=1))
        rows = tf.reshape(beam_rows + parent, [-1])
        states = tuple(tf.gather(outputs[c.update_from], rows) for c in carried)
        return t + 1, tf.reshape(token, [-1, 1]), states, log_prob, length, finished, ids

    def not_done(t, tokens, states, log_prob, length, finished, ids):
        return tf.logical_not(tf.reduce_all(finished))

    start = (
        tf.constant(0),
        tf.fill([batch * width, 1], tf.constant(SOS_ID, tf.int32)),
        tuple(expand(encoded[c.init_from]) for c in carried),
        tf.tile(tf.where(tf.range(width) == 0, 0.0, float("-inf"))[None], [batch, 1]),  # only beam 0 is live
        tf.zeros([batch, width], tf.int32),
        tf.zeros([batch, width], tf.bool),
        tf.fill([batch, width, max_length], tf.constant(EOS_ID, tf.int32)),
    )
    # Batch and width may be static in one trace and not after a step (a width fed as a tensor).
    any_rows = lambda value: tf.TensorShape([None]).concatenate(value.shape[1:])  # noqa: E731
    invariants = (
        tf.TensorShape([]), tf.TensorShape([None, 1]), tuple(any_rows(s) for s in start[2]),
        *(tf.TensorShape([None] * value.shape.rank) for value in start[3:]),
    )
    steps, _, _, log_prob, length, finished, ids = tf.while_loop(
        not_done, step, start, shape_invariants=invariants, maximum_iterations=max_length
    )
    score = log_prob / penalty(length)
    # Best first: by score (ties: lowest beam), then finished before unfinished before impossible.
    by_score = tf.argsort(score, axis=1, direction="DESCENDING", stable=True)
    category = tf.where(tf.math.is_inf(log_prob), 2, tf.where(finished, 0, 1))
    order = tf.gather(by_score, tf.argsort(tf.gather(category, by_score, batch_dims=1), axis=1, stable=True), batch_dims=1)
    order = order[:, :nbest]
    pick = lambda value: tf.gather(value, order, batch_dims=1)  # noqa: E731
    lengths = pick(length) - tf.cast(pick(finished), tf.int32)
    return {
        _STEPS: steps,
        OUTPUT_IDS: tf.where(tf.range(max_length) < lengths[..., None], pick(ids), PAD_ID),
        OUTPUT_LENGTHS: lengths,
        SCORE: pick(score),
        LOG_PROB: pick(log_prob),
        FINISHED: pick(finished),
    }
