"""String in, string out, in one graph: what TF Serving's ``translate`` model runs.

    translate: {text [B] tf.string}
            -> {output_text [B] tf.string, score [B] float32, log_prob [B] float32,
                output_lengths [B] int32, finished [B] bool,
                source_lengths [B] int32, truncated [B] bool, unknown_tokens [B] int32}

Inside: normalization and tokenization with tensorflow-text (``keras_s2s.tf_tokenization``,
the spec the model was trained with), source vocabulary lookup (a hash table saved with the
model), the first ``max_source_length`` tokens (reversed when the model reads reversed
sources), greedy decoding (``keras_s2s.export.greedy``: a ``tf.while_loop`` over the same
encoder and decoder weights), and detokenization with the target vocabulary. Per input it
gives what ``Translator.translate_inputs`` gives: the best hypothesis as text with its score
and log-probability, and nothing silent: how many tokens the input had, whether it was cut to
``max_source_length``, and how many of the tokens read are unknown to the vocabulary.

An input with no tokens gives "" with score 0 (as the Translator does); ``output_lengths`` is
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
from keras_s2s.export.greedy import greedy_decode
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature, TensorInfo
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

TRANSLATE_SIGNATURE = GraphSignature(
    "translate",
    (TensorInfo(TEXT_INPUT, "string", (None,)),),
    (
        TensorInfo(FINISHED, "bool", (None,)),
        TensorInfo(LOG_PROB, "float32", (None,)),
        TensorInfo(OUTPUT_LENGTHS, "int32", (None,)),
        TensorInfo(OUTPUT_TEXT, "string", (None,)),
        TensorInfo(SCORE, "float32", (None,)),
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

    decoded = greedy_decode(encoder, step_decoder, decoding, source_ids, max_decode_length)
    has_tokens = read_lengths > 0
    output_ids = decoded[OUTPUT_IDS]
    # What Vocabulary.decode keeps: the ids before EOS (PAD after them), without PAD or SOS.
    kept = tf.logical_and(tf.not_equal(output_ids, PAD_ID), tf.not_equal(output_ids, SOS_ID))
    kept = tf.logical_and(kept, has_tokens[:, None])
    output_tokens = tf.ragged.boolean_mask(tf.gather(tables.target_tokens, output_ids), kept)
    output_text = tf.strings.reduce_join(output_tokens, axis=1, separator=" " if target_spec.level == "word" else "")
    if target_spec.level == "char":
        output_text = tf.strings.regex_replace(output_text, SPACE_TOKEN, " ")
    log_prob = tf.where(has_tokens, decoded[LOG_PROB], 0.0)
    return {
        OUTPUT_TEXT: output_text,
        SCORE: log_prob,  # greedy: the log-probability (beam search would length-penalize it)
        LOG_PROB: log_prob,
        OUTPUT_LENGTHS: tf.cast(output_tokens.row_lengths(), tf.int32),
        FINISHED: tf.logical_or(decoded[FINISHED], tf.logical_not(has_tokens)),
        SOURCE_LENGTHS: source_lengths,
        TRUNCATED: source_lengths > read_lengths,
        UNKNOWN_TOKENS: unknown,
    }
