"""String in, string out, in one graph: what TF Serving's ``translate`` model runs.

    translate: {text [B] tf.string}
            -> {output_text [B] tf.string, score [B] float32, log_prob [B] float32,
                output_lengths [B] int32, finished [B] bool,
                source_lengths [B] int32, truncated [B] bool, unknown_tokens [B] int32}

Exported with beam search (``Beam(width=W, nbest=K)``, fixed at export), the hypothesis
outputs hold the K best per input, best first: output_text, score, log_prob, output_lengths and
finished are [B, K]; score is the length-penalized log-probability.

Inside: normalization and tokenization with tensorflow-text (``keras_s2s.tf_tokenization``,
the spec the model was trained with), source vocabulary lookup (a hash table saved with the
model), the first ``max_source_length`` tokens (reversed when the model reads reversed
sources), greedy decoding or beam search (``keras_s2s.export.greedy`` / ``.beam``: a
``tf.while_loop`` over the same encoder and decoder weights), and detokenization with the target vocabulary. Per input it
gives what ``Translator.translate_inputs`` gives: the best hypothesis as text with its score
and log-probability, and nothing silent: how many tokens the input had, whether it was cut to
``max_source_length``, and how many of the tokens read are unknown to the vocabulary.

An input with no tokens gives "" with score 0 (as the Translator does; with beam search, K of them); ``output_lengths`` is
the number of tokens in ``output_text``.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from keras_s2s import tf_tokenization
from keras_s2s.constants import (
    FINISHED, LOG_PROB, OUTPUT_IDS, OUTPUT_LENGTHS, OUTPUT_TEXT, PAD_ID, SCORE, SOS_ID, SOURCE_LENGTHS, SPACE_TOKEN,
    TEXT_INPUT, TRUNCATED, UNK_ID, UNKNOWN_TOKENS,
)
from keras_s2s.decoding import Greedy, Strategy
from keras_s2s.export.beam import beam_decode
from keras_s2s.export.greedy import greedy_decode
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature, TensorInfo
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

def translate_signature(strategy: Strategy = Greedy()) -> GraphSignature:
    """The translate graph's input (``text`` [B] string) and outputs: per hypothesis [B] for
    greedy decoding, [B, K] for beam search with ``nbest=K``; per input [B]."""
    per_hypothesis = (None,) if isinstance(strategy, Greedy) else (None, strategy.nbest)
    return GraphSignature(
        "translate",
        (TensorInfo(TEXT_INPUT, "string", (None,)),),
        (
            TensorInfo(FINISHED, "bool", per_hypothesis),
            TensorInfo(LOG_PROB, "float32", per_hypothesis),
            TensorInfo(OUTPUT_LENGTHS, "int32", per_hypothesis),
            TensorInfo(OUTPUT_TEXT, "string", per_hypothesis),
            TensorInfo(SCORE, "float32", per_hypothesis),
            TensorInfo(SOURCE_LENGTHS, "int32", (None,)),
            TensorInfo(TRUNCATED, "bool", (None,)),
            TensorInfo(UNKNOWN_TOKENS, "int32", (None,)),
        ),
    )


class TextTables(tf.Module):
    """The vocabulary tables of a translate graph, as one trackable (so they are saved with
    the SavedModel and initialized when it loads): source token -> id (a hash table, UNK for
    unknown tokens) and target id -> token (a constant)."""

    def __init__(self, source_vocab: Vocabulary, target_vocab: Vocabulary) -> None:
        super().__init__(name="text_tables")
        self.source_ids = source_vocab.lookup_table()
        self.target_tokens = tf.constant(target_vocab.tokens, tf.string)


def translate_texts(
    encoder,
    step_decoder,
    decoding: DecodingInterface,
    tables: TextTables,
    texts: tf.Tensor,
    *,
    source_spec: TextSpec,
    target_spec: TextSpec,
    max_source_length: Optional[int],
    reverse_source: bool,
    max_decode_length: int,
    strategy: Strategy = Greedy(),
) -> dict[str, tf.Tensor]:
    """texts [B] tf.string -> the translate outputs (module docstring), in-graph."""
    tokens = tf_tokenization.tokenize(source_spec, texts)  # [B, (n)] tf.string
    source_lengths = tf.cast(tokens.row_lengths(), tf.int32)
    if max_source_length is not None:
        tokens = tokens[:, :max_source_length]
    ids = tf.ragged.map_flat_values(tables.source_ids.lookup, tokens)
    read_lengths = tf.cast(ids.row_lengths(), tf.int32)
    unknown = tf.reduce_sum(tf.cast(tf.equal(ids, UNK_ID), tf.int32), axis=1)
    # At least one column, so that a batch of empty inputs still has a valid [B, 1] shape.
    width = tf.maximum(tf.reduce_max(tf.concat([read_lengths, [0]], 0)), 1)
    source_ids = ids.to_tensor(default_value=PAD_ID, shape=tf.stack([tf.size(texts), width]))
    if reverse_source:
        source_ids = tf.reverse_sequence(source_ids, read_lengths, seq_axis=1, batch_axis=0)

    has_tokens = read_lengths > 0
    if isinstance(strategy, Greedy):
        decoded = greedy_decode(encoder, step_decoder, decoding, source_ids, max_decode_length)
        decoded = {**{name: value[:, None] for name, value in decoded.items()}, SCORE: decoded[LOG_PROB][:, None]}
    else:
        decoded = beam_decode(
            encoder, step_decoder, decoding, source_ids, max_decode_length,
            strategy.width, strategy.nbest, strategy.length_penalty,
        )
    hypotheses = _as_text(decoded, has_tokens, tables.target_tokens, target_spec)  # [B, K] each
    if isinstance(strategy, Greedy):
        hypotheses = {name: value[:, 0] for name, value in hypotheses.items()}
    return {
        **hypotheses,
        SOURCE_LENGTHS: source_lengths,
        TRUNCATED: source_lengths > read_lengths,
        UNKNOWN_TOKENS: unknown,
    }


def _as_text(decoded: dict, has_tokens: tf.Tensor, target_tokens: tf.Tensor, target_spec: TextSpec) -> dict:
    """Hypotheses as ids ({output_ids [B, K, L], output_lengths, score, log_prob, finished [B, K]})
    -> as text; inputs without tokens get "" with score 0."""
    output_ids = decoded[OUTPUT_IDS]
    shape = tf.shape(output_ids)  # [B, K, L]
    flat_ids = tf.reshape(output_ids, [shape[0] * shape[1], shape[2]])
    # What Vocabulary.decode keeps: the ids before EOS (PAD after them), without PAD or SOS.
    kept = tf.logical_and(tf.not_equal(flat_ids, PAD_ID), tf.not_equal(flat_ids, SOS_ID))
    kept = tf.logical_and(kept, tf.repeat(has_tokens, shape[1])[:, None])
    output_tokens = tf.ragged.boolean_mask(tf.gather(target_tokens, flat_ids), kept)  # [B * K, (n)]
    output_text = tf.strings.reduce_join(output_tokens, axis=1, separator=" " if target_spec.level == "word" else "")
    if target_spec.level == "char":
        output_text = tf.strings.regex_replace(output_text, SPACE_TOKEN, " ")
    per_hypothesis = shape[:2]
    empty = tf.logical_not(has_tokens)[:, None]
    return {
        OUTPUT_TEXT: tf.reshape(output_text, per_hypothesis),
        SCORE: tf.where(empty, 0.0, decoded[SCORE]),
        LOG_PROB: tf.where(empty, 0.0, decoded[LOG_PROB]),
        OUTPUT_LENGTHS: tf.reshape(tf.cast(output_tokens.row_lengths(), tf.int32), per_hypothesis),
        FINISHED: tf.logical_or(decoded[FINISHED], empty),
    }
