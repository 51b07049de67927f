"""Vocabulary: token <-> id, with the reserved ids PAD=0, UNK=1, SOS=2, EOS=3.

Saved as UTF-8 text, one token per line, line ``i`` holding the token of id ``i - 1``.
Unknown tokens map to UNK. The strings of the reserved tokens are never looked up as
text: a literal ``<s>`` in an input maps to UNK, so text can never inject PAD or EOS.
TensorFlow is imported only by ``lookup_table``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

from keras_s2s.constants import EOS_ID, PAD_ID, RESERVED_TOKENS, SOS_ID, UNK_ID
from keras_s2s.errors import VocabularyError


class Vocabulary:
    """An ordered list of tokens; the first four are the reserved tokens."""

    def __init__(self, tokens: Sequence[str], *, origin: str = "vocabulary") -> None:
        tokens = list(tokens)
        for index, reserved in enumerate(RESERVED_TOKENS):
            found = tokens[index] if index < len(tokens) else None
            if found != reserved:
                raise VocabularyError(
                    f"{origin}: line {index + 1}: expected the reserved token {reserved!r} "
                    f"(lines 1-{len(RESERVED_TOKENS)} must be {list(RESERVED_TOKENS)}), got {found!r}"
                )
        self._ids: dict[str, int] = {}
        for index, token in enumerate(tokens):
            if not token or any(c in token for c in "\n\r"):
                raise VocabularyError(f"{origin}: line {index + 1}: empty token or token with a line break")
            if token in self._ids:
                raise VocabularyError(
                    f"{origin}: line {index + 1}: duplicate token {token!r} (first on line {self._ids[token] + 1})"
                )
            self._ids[token] = index
        self.tokens: tuple[str, ...] = tuple(tokens)

    # --- building and files ----------------------------------------------------
    @classmethod
    def build(
        cls, counts: Counter, *, min_frequency: int = 1, max_size: Optional[int] = None
    ) -> "Vocabulary":
        """Most frequent first (ties by token, so builds are deterministic)."""
        candidates = [
            (token, count)
            for token, count in counts.items()
            if count >= min_frequency and token not in RESERVED_TOKENS
        ]
        candidates.sort(key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            candidates = candidates[: max_size - len(RESERVED_TOKENS)]
        return cls(list(RESERVED_TOKENS) + [token for token, _ in candidates])

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VocabularyError(f"vocabulary file not found: {path}") from None
        except UnicodeDecodeError as err:
            raise VocabularyError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
        return cls(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), origin=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(token + "\n" for token in self.tokens), encoding="utf-8")

    # --- lookups --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def token_id(self, token: str) -> int:
        index = self._ids.get(token, UNK_ID)
        return UNK_ID if index < len(RESERVED_TOKENS) else index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.token_id(token) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first EOS; PAD and SOS are dropped."""
        out = []
        for index in ids:
            index = int(index)
            if index == EOS_ID:
                break
            if index in (PAD_ID, SOS_ID):
                continue
            out.append(self.tokens[index])
        return out

    def lookup_table(self):
        """A ``tf.lookup.StaticHashTable`` string -> int32 id (UNK for unknown strings)."""
        import tensorflow as tf

        real = self.tokens[len(RESERVED_TOKENS):]
        initializer = tf.lookup.KeyValueTensorInitializer(
            keys=tf.constant(real or [""], tf.string),
            values=tf.constant(
                list(range(len(RESERVED_TOKENS), len(self.tokens))) if real else [UNK_ID], tf.int32
            ),
        )
        return tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)


def count_tokens(token_lists: Iterable[Iterable[str]]) -> Counter:
    counts: Counter = Counter()
    for tokens in token_lists:
        counts.update(tokens)
    return counts
