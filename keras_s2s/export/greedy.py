"""Greedy decoding as one graph: source ids in, output ids out, one call per batch.

    greedy: {source_ids [B, S] int32}
         -> {output_ids [B, L] int32, output_lengths [B] int32,
             log_prob [B] float32, finished [B] bool}

A ``tf.while_loop`` over the Keras encoder and decoder that the step-by-step runtimes use,
as the export builds them for loops (``models.step_encoder``, ``models.single_step_decoder``:
the same function with the decoder's T=1 and what a step can share computed once per source),
threading the carries of their decoding interface exactly as ``keras_s2s.decoding.decode``
does. It is exported as the in-graph decode signature of a SavedModel and, through tf2onnx, as
an ONNX ``Loop``: one call per batch instead of one per output token, whose per-call overhead
is what limits the step loop at batch 1.

Per row, the outputs are ``decode(..., Greedy())``'s hypothesis: ``output_ids[:length]``
are the generated ids without the final EOS (PAD after them), ``log_prob`` sums the
log-probabilities of every generated token, EOS included, and ``finished`` says whether EOS
came within ``max_length`` steps. L is the number of steps run: decoding stops when every
row has produced EOS, or after ``max_length`` steps.

The batch size picks one of two loops (a ``tf.cond``; an ONNX ``If``). Small batches step
every row until the last one ends: the fewest ops per step, which is what a batch-1 step costs.
From ``DROP_FINISHED_MIN_BATCH`` rows on, each step drops the rows that produced EOS from the
batch it carries (their states, attention memory and mask with them): a large batch otherwise
steps every row as long as its longest output, ~30% wasted row-steps on CMUdict words at batch
256, while the dropping costs a scatter of each step's outputs and a gather of the kept rows.

With ``compile_small_batches`` the small-batch branch, encoder included, is one XLA-compiled
function (``jit_compile``): TensorFlow's executor costs ~50 µs per op call on CPU, which is
most of a batch-1 step, and XLA runs the whole loop as one compiled kernel (the SavedModel's
``greedy_xla`` signature: 1.6–1.8× the uncompiled signature at batch 1, benchmarks/RESULTS.md).
XLA compiles once per input shape, so the source is padded to a multiple of
``COMPILED_SOURCE_LENGTH_MULTIPLE`` steps (the encoder masks the padding) and the steps are
recorded into arrays of ``max_length`` (the compiled loop still stops at the last EOS). TF
Serving runs such a signature only with ``--xla_cpu_compilation_enabled``, so it is an extra
signature beside the uncompiled ``serving_default``, and ONNX export never compiles.
"""

from __future__ import annotations

import tensorflow as tf

from keras_s2s.constants import EOS_ID, FINISHED, LOG_PROB, OUTPUT_IDS, OUTPUT_LENGTHS, PAD_ID, SOS_ID
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature, TensorInfo

DROP_FINISHED_MIN_BATCH = 16
"""Batches of at least this many rows drop finished rows from the decoding loop (measured with
benchmarks/greedy_drop_finished.py: benchmarks/RESULTS.md, "Decoding: a loop that drops finished rows")."""

COMPILED_GREEDY_SIGNATURE = "greedy_xla"
"""The greedy SavedModel's signature that compiles small batches with XLA (``serving_default``
is the same decoding uncompiled: TF Serving runs XLA only with --xla_cpu_compilation_enabled)."""

COMPILED_SOURCE_LENGTH_MULTIPLE = 8
"""The compiled loop pads source ids to a multiple of this many steps: one XLA compilation per
batch size and length bucket instead of one per source length."""

assert PAD_ID == 0, "greedy_decode pads output_ids by multiplying with 0, and the compiled loop pads source ids with 0"


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


def greedy_decode(
    encoder, decoder, decoding: DecodingInterface, source_ids: tf.Tensor, max_length: int,
    *, compile_small_batches: bool = False,
) -> dict:
    """source_ids [B, S] int32 -> the greedy outputs (see the module docstring), in-graph.

    ``encoder`` and ``decoder`` are callables over dicts of named tensors (Keras models).
    The loop bodies only step and record each step's token and its log-probability; the
    bookkeeping (where each row's EOS is, its length and log-probability) happens once
    after the loop, which keeps the ONNX ``Loop`` body small (every op is a kernel call per
    step). ``compile_small_batches``: encode and step batches below
    ``DROP_FINISHED_MIN_BATCH`` rows in one XLA-compiled function (module docstring)."""
    batch = tf.shape(source_ids)[0]
    if compile_small_batches:
        compiled = tf.function(
            lambda padded_ids: _encode_and_step_all_rows(encoder, decoder, decoding, padded_ids, max_length),
            jit_compile=True, autograph=False,
        )

        def compiled_steps():
            steps, ids, log_probs = compiled(padded_for_compilation(source_ids))
            return ids[:steps], log_probs[:steps]

        ids, log_probs = tf.cond(
            batch >= DROP_FINISHED_MIN_BATCH,
            lambda: _steps_dropping_finished_rows(decoder, decoding, _encode(encoder, decoding, source_ids), batch, max_length),
            compiled_steps,
        )
    else:
        encoded = _encode(encoder, decoding, source_ids)
        ids, log_probs = tf.cond(
            batch >= DROP_FINISHED_MIN_BATCH,
            lambda: _steps_dropping_finished_rows(decoder, decoding, encoded, batch, max_length),
            lambda: _steps_over_all_rows(decoder, decoding, encoded, batch, max_length)[1:],
        )
    # Bookkeeping on the [L, B] stacks, in few ops (each is a kernel call per request).
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


def padded_for_compilation(source_ids: tf.Tensor) -> tf.Tensor:
    """source_ids [B, S] int32 right-padded with PAD to a multiple of
    ``COMPILED_SOURCE_LENGTH_MULTIPLE`` steps (the encoder masks PAD)."""
    multiple = COMPILED_SOURCE_LENGTH_MULTIPLE
    return tf.pad(source_ids, [[0, 0], [0, (multiple - tf.shape(source_ids)[1] % multiple) % multiple]])


def _encode(encoder, decoding: DecodingInterface, source_ids) -> dict:
    return encoder({decoding.source_input: source_ids}, training=False)


def _encode_and_step_all_rows(encoder, decoder, decoding: DecodingInterface, source_ids, max_length: int):
    """The compiled small-batch loop: source_ids [B, S] -> (steps run, ids [max_length, B]
    int32, log_probs [max_length, B] float32), rows after ``steps`` left zero."""
    encoded = _encode(encoder, decoding, source_ids)
    return _steps_over_all_rows(decoder, decoding, encoded, tf.shape(source_ids)[0], max_length, fixed_size=True)


def _step(decoder, decoding: DecodingInterface, tokens, constants: dict, carried, states):
    """One decoder step on [A, 1] tokens -> (next ids [A, 1] int32, their log-probabilities
    [A, 1, 1] float32, the next carried states)."""
    feeds = {decoding.token_input: tokens, **constants, **{c.input: s for c, s in zip(carried, states)}}
    outputs = decoder(feeds, training=False)
    # Everything stays [A, 1] (the decoder's T=1): the next input needs no reshaping.
    step_log_probs = tf.nn.log_softmax(outputs[decoding.logits_output])
    next_ids = tf.argmax(step_log_probs, axis=-1, output_type=tf.int32)
    # The argmax's own log-probability is the row maximum: one ReduceMax instead of a
    # gather at next_ids (Cast, Unsqueeze, GatherND in ONNX); kept [A, 1, 1], which
    # tf2onnx writes as one GlobalMaxPool (without keepdims: plus a Squeeze).
    best = tf.reduce_max(step_log_probs, axis=-1, keepdims=True)
    return next_ids, best, tuple(outputs[c.update_from] for c in carried)


def _step_records(size: int | None = None) -> tuple:
    """Arrays for each step's ids ([B, 1] int32) and log-probabilities ([B, 1, 1] float32):
    growing ones, or ``size`` steps long (what XLA needs: no dynamic sizes)."""
    sizes = dict(size=0, dynamic_size=True) if size is None else dict(size=size)
    return (
        tf.TensorArray(tf.int32, element_shape=tf.TensorShape([None, 1]), **sizes),
        tf.TensorArray(tf.float32, element_shape=tf.TensorShape([None, 1, 1]), **sizes),
    )


def _stacked(ids: tf.TensorArray, log_probs: tf.TensorArray) -> tuple:
    """The step records as (ids [L, B] int32, log_probs [L, B] float32)."""
    return ids.stack()[:, :, 0], log_probs.stack()[:, :, 0, 0]


def _steps_over_all_rows(
    decoder, decoding: DecodingInterface, encoded: dict, batch, max_length: int, *, fixed_size: bool = False
):
    """Steps all B rows until every row has produced EOS -> (L, ids [L, B] int32, log_probs
    [L, B] float32); with ``fixed_size`` the arrays are [max_length, B], zero after step L."""
    constants = {c.input: encoded[c.init_from] for c in decoding.carries if c.update_from is None}
    carried = [c for c in decoding.carries if c.update_from is not None]

    def step(t, tokens, states, ended, ids, log_probs):
        next_ids, best, states = _step(decoder, decoding, tokens, constants, carried, states)
        # float, so the loop condition's ReduceMin feeds Less without a Cast in ONNX
        ended = tf.maximum(ended, tf.cast(tf.equal(next_ids, EOS_ID), tf.float32))
        return t + 1, next_ids, states, ended, ids.write(t, next_ids), log_probs.write(t, best)

    def not_done(t, tokens, states, ended, ids, log_probs):
        return tf.less(tf.reduce_min(ended), 0.5)

    start = (
        tf.constant(0),
        tf.fill([batch, 1], tf.constant(SOS_ID, tf.int32)),
        tuple(encoded[c.init_from] for c in carried),
        tf.zeros([batch, 1], tf.float32),
        *_step_records(max_length if fixed_size else None),
    )
    steps, *_, ids, log_probs = tf.while_loop(not_done, step, start, maximum_iterations=max_length)
    return (steps, *_stacked(ids, log_probs))


def _steps_dropping_finished_rows(decoder, decoding: DecodingInterface, encoded: dict, batch, max_length: int):
    """Steps the rows that have not produced EOS yet, A <= B of them, until none is left;
    each step's ids and log-probabilities are scattered to their rows of the batch (PAD and 0
    for dropped rows, which the bookkeeping ignores after their EOS)
    -> (ids [L, B] int32, log_probs [L, B] float32)."""
    constant_carries = [c for c in decoding.carries if c.update_from is None]
    carried = [c for c in decoding.carries if c.update_from is not None]

    # Scattered into zeros made once (captured, so read from outside the ONNX Loop); the row
    # indices are int64, what ScatterND and NonZero use: no Casts in the loop body.
    no_ids, no_log_probs = tf.zeros([batch, 1], tf.int32), tf.zeros([batch, 1, 1], tf.float32)

    def step(t, rows, tokens, states, constants, ids, log_probs):
        named_constants = {c.input: value for c, value in zip(constant_carries, constants)}
        next_ids, best, states = _step(decoder, decoding, tokens, named_constants, carried, states)
        ids = ids.write(t, tf.tensor_scatter_nd_update(no_ids, rows, next_ids))
        log_probs = log_probs.write(t, tf.tensor_scatter_nd_update(no_log_probs, rows, best))
        kept = tf.where(tf.not_equal(tf.reshape(next_ids, [-1]), EOS_ID))  # [A', 1] among the A rows
        keep = lambda values: tuple(tf.gather_nd(value, kept) for value in values)  # noqa: E731
        return t + 1, *keep((rows, next_ids)), keep(states), keep(constants), ids, log_probs

    def not_done(t, rows, *_):
        return tf.size(rows, out_type=tf.int64) > 0

    states = tuple(encoded[c.init_from] for c in carried)
    constants = tuple(encoded[c.init_from] for c in constant_carries)
    start = (
        tf.constant(0),
        tf.range(tf.cast(batch, tf.int64))[:, None],  # [A, 1]: the rows still decoding, scatter indices
        tf.fill([batch, 1], tf.constant(SOS_ID, tf.int32)),
        states,
        constants,
        *_step_records(),
    )
    rows_axis = lambda value: tf.TensorShape([None]).concatenate(value.shape[1:])  # noqa: E731
    invariants = (
        tf.TensorShape([]), tf.TensorShape([None, 1]), tf.TensorShape([None, 1]),
        tuple(rows_axis(s) for s in states), tuple(rows_axis(c) for c in constants),
        tf.TensorShape(None), tf.TensorShape(None),
    )
    *_, ids, log_probs = tf.while_loop(not_done, step, start, shape_invariants=invariants, maximum_iterations=max_length)
    return _stacked(ids, log_probs)
