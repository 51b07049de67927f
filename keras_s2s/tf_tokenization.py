"""tensorflow-text implementation of a TextSpec (see keras_s2s.tokenization), for tf.data.

``tokenize`` maps a batch of strings ``[batch]`` to a RaggedTensor of tokens
``[batch, (tokens)]`` (tf.string), exactly as ``TextSpec.tokenize`` does in Python.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from keras_s2s.constants import SPACE_TOKEN
from keras_s2s.tokenization import TextSpec

_WHITESPACE_TOKENIZER = tf_text.WhitespaceTokenizer()
# tf_text.WhitespaceTokenizer leaves stray bytes of multi-byte spaces (U+00A0, U+3000...)
# in its tokens, so every Unicode White_Space character is mapped to " " first.
_UNICODE_SPACES = r"[\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
_CHAR_TOKENIZER = tf_text.UnicodeCharTokenizer()


def normalize(spec: TextSpec, texts: tf.Tensor) -> tf.Tensor:
    """Case folding and Unicode normalisation of ``texts`` ([batch] tf.string)."""
    if spec.lowercase:
        texts = tf_text.case_fold_utf8(texts)
    if spec.normalization != "none":
        texts = tf_text.normalize_utf8(texts, spec.normalization)
    return texts


def tokenize(spec: TextSpec, texts: tf.Tensor) -> tf.RaggedTensor:
    """``texts`` [batch] tf.string -> tokens [batch, (tokens)] tf.string."""
    texts = tf.strings.regex_replace(normalize(spec, texts), _UNICODE_SPACES, " ")
    words = _WHITESPACE_TOKENIZER.tokenize(texts)
    if spec.level == "word":
        return words
    joined = tf.strings.reduce_join(words, axis=-1, separator=SPACE_TOKEN)
    code_points = _CHAR_TOKENIZER.tokenize(joined)  # [batch, (chars)] int32
    # One string per code point: encode each code point as its own 1-char row.
    return tf.strings.unicode_encode(tf.expand_dims(code_points, -1), "UTF-8")
