"""The serving functions of the encoder and decoder graphs (``tf.function`` with named inputs).

    encoder: {source_ids [?, ?] int32} -> {state_* [?, H] float32}
    decoder: {token_ids [?, ?] int32, state_* [?, H] float32} -> {logits [?, ?, V], next_state_* [?, H]}
    greedy:  {source_ids [?, ?] int32} -> {output_ids [?, ?] int32, output_lengths, log_prob, finished [?]}
             (the SavedModel also has it as the XLA-compiled signature ``greedy_xla``)
    beam:    {source_ids [?, ?] int32, beam_width [] int32, nbest [] int32, length_penalty [] float32}
             -> {output_ids [?, K, ?] int32, output_lengths, score, log_prob, finished [?, K]}
             (SavedModel only; also XLA-compiled as ``beam_xla``)
    translate: {text [?] string} -> {output_text [?] string, score, ... (keras_s2s.export.translate)}

The SavedModel version checks its inputs in-graph (a TF Serving client that sends an id
outside the vocabulary or an empty tensor gets an InvalidArgument error naming the input,
not a crash deep in a Gather); the ONNX version leaves the checks to the caller (the
runtimes validate feeds against metadata.json before running).
"""

from __future__ import annotations

import tensorflow as tf

from keras_s2s.constants import BEAM_WIDTH, LENGTH_PENALTY, NBEST
from keras_s2s.export.beam import beam_decode
from keras_s2s.export.greedy import greedy_decode
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature


def serving_function(model, signature: GraphSignature, *, check_inputs: bool) -> tf.types.experimental.GenericFunction:
    """A tf.function over ``model`` whose single argument is a dict of the signature's inputs."""
    return _serving(signature, lambda feeds: model(feeds, training=False), check_inputs)


def greedy_serving_function(
    encoder, step_decoder, signature: GraphSignature, decoding: DecodingInterface, max_length: int, *,
    check_inputs: bool, compile_small_batches: bool = False,
) -> tf.types.experimental.GenericFunction:
    """A tf.function ``{source_ids} -> greedy outputs`` (keras_s2s.export.greedy) over an
    encoder and a one-step decoder (``models.single_step_decoder``); ``compile_small_batches``:
    XLA for batches below ``DROP_FINISHED_MIN_BATCH`` (never for ONNX)."""
    return _serving(
        signature,
        lambda feeds: greedy_decode(
            encoder, step_decoder, decoding, feeds[decoding.source_input], max_length,
            compile_small_batches=compile_small_batches,
        ),
        check_inputs,
    )


def beam_serving_function(
    encoder, step_decoder, signature: GraphSignature, decoding: DecodingInterface, max_length: int, *, compiled: bool
) -> tf.types.experimental.GenericFunction:
    """A tf.function ``{source_ids, beam_width, nbest, length_penalty} -> the n-best``
    (keras_s2s.export.beam), inputs checked in-graph (SavedModel only); ``compiled``: XLA."""

    def search(feeds):
        width, nbest, alpha = feeds[BEAM_WIDTH], feeds[NBEST], feeds[LENGTH_PENALTY]
        checks = [
            tf.debugging.assert_positive(width, message=f"beam input '{BEAM_WIDTH}' must be >= 1"),
            tf.debugging.assert_positive(nbest, message=f"beam input '{NBEST}' must be >= 1"),
            tf.debugging.assert_less_equal(nbest, width, message=f"beam input '{NBEST}' must be <= '{BEAM_WIDTH}'"),
            tf.debugging.Assert(
                tf.logical_and(tf.math.is_finite(alpha), alpha >= 0.0),
                [f"beam input '{LENGTH_PENALTY}' must be a finite number >= 0, got", alpha],
            ),
        ]
        with tf.control_dependencies(checks):
            return beam_decode(
                encoder, step_decoder, decoding, feeds[decoding.source_input], max_length, width, nbest, alpha,
                compiled=compiled,
            )

    return _serving(signature, search, check_inputs=True)


def translate_serving_function(
    encoder, step_decoder, decoding: DecodingInterface, tables, *, config, strategy, check_inputs: bool
) -> tf.types.experimental.GenericFunction:
    """A tf.function ``{text} -> translate outputs`` (keras_s2s.export.translate) over an
    encoder, a one-step decoder and the vocabulary tables (``TextTables``), decoding with
    ``strategy`` (Greedy() or Beam(...))."""
    from keras_s2s.export.translate import translate_signature, translate_texts

    signature = translate_signature(strategy)
    return _serving(
        signature,
        lambda feeds: translate_texts(
            encoder, step_decoder, decoding, tables, feeds[signature.inputs[0].name],
            source_spec=config.source_spec(), target_spec=config.target_spec(),
            max_source_length=config.max_source_length, reverse_source=config.reverse_source,
            max_decode_length=config.max_decode_length, strategy=strategy,
        ),
        check_inputs,
    )


def _serving(signature: GraphSignature, compute, check_inputs: bool) -> tf.types.experimental.GenericFunction:
    specs = {t.name: tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in signature.inputs}
    output_names = [t.name for t in signature.outputs]

    # autograph off (as in Keras' own export and train functions): the decoding loops are
    # explicit tf.while_loop / tf.cond, and converting their Python took ~3 s of a 12-14-s
    # toy export (benchmarks/RESULTS.md, "autograph").
    @tf.function(input_signature=[specs], autograph=False)
    def serve(feeds):
        checks = _input_checks(signature, feeds) if check_inputs else []
        with tf.control_dependencies(checks):
            outputs = compute(feeds)
        return {name: tf.identity(outputs[name], name=name) for name in output_names}

    return serve


def _input_checks(signature: GraphSignature, feeds: dict) -> list:
    checks = []
    for info in signature.inputs:
        value = feeds[info.name]
        needed = "one row" if len(info.shape) == 1 else "one row and one step"
        checks.append(tf.debugging.assert_positive(
            tf.size(value), message=f"{signature.name} input '{info.name}': empty tensor; send at least {needed}"
        ))
        if info.id_range is not None:
            low, high = info.id_range
            checks.append(tf.debugging.assert_greater_equal(
                value, tf.constant(low, value.dtype), message=f"{signature.name} input '{info.name}': ids must be >= {low}"
            ))
            checks.append(tf.debugging.assert_less(
                value, tf.constant(high, value.dtype),
                message=f"{signature.name} input '{info.name}': ids must be < {high} (the vocabulary size)",
            ))
    return checks
