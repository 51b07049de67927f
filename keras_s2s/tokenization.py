"""TextSpec: how one side of a pair is normalised and split into tokens.

This module is the plain-Python (no TensorFlow) implementation, used by the runtimes so
that ONNX Runtime inference works where TensorFlow is not installed.
``keras_s2s.tf_tokenization`` implements the same spec with tensorflow-text for the tf.data
pipeline; the test suite checks that both give identical tokens (CMUdict, Hangul, combining
marks, odd spaces).

Steps, in order:
1. ``lowercase``: Unicode NFKC_Casefold (what ``tf_text.case_fold_utf8`` applies).
2. ``normalization``: ``NFC``/``NFD``/``NFKC``/``NFKD`` or ``none``.
3. ``level="word"``: split on Unicode White_Space. ``level="char"``: one token per code
   point; each run of whitespace becomes one ``▁`` token; leading/trailing space dropped.

Known difference: ICU composes a Greek ypogegrammeni (U+0345) folded to iota with a
preceding accent (x + U+0301 + U+0345 -> "x", "ί"); Python keeps them apart.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Literal

from keras_s2s.constants import SPACE_TOKEN

# Unicode White_Space, as tf_text.WhitespaceTokenizer splits (Python's str.split() also
# splits on U+001C..U+001F, which are not White_Space).
_WHITESPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")

# Default_Ignorable_Code_Point: removed by NFKC_Casefold (Python's casefold keeps them).
_DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """Normalisation and tokenization of one side (source or target)."""

    level: Literal["char", "word"]
    normalization: Literal["none", "NFC", "NFD", "NFKC", "NFKD"] = "NFKC"
    lowercase: bool = False

    def normalize(self, text: str) -> str:
        if self.lowercase:
            text = nfkc_casefold(text)
        if self.normalization != "none":
            text = unicodedata.normalize(self.normalization, text)
        return text

    def tokenize(self, text: str) -> list[str]:
        words = split_whitespace(self.normalize(text))
        if self.level == "word":
            return words
        return list(SPACE_TOKEN.join(words))

    def detokenize(self, tokens: list[str]) -> str:
        if self.level == "word":
            return " ".join(tokens)
        return "".join(tokens).replace(SPACE_TOKEN, " ")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TextSpec":
        return cls(**values)


def split_whitespace(text: str) -> list[str]:
    return [word for word in _WHITESPACE.split(text) if word]


def nfkc_casefold(text: str) -> str:
    text = _DEFAULT_IGNORABLE.sub("", text)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
