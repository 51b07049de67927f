"""Sequence scores: edit distance, error rates, exact match, BLEU and chrF, with multiple references.

G2P convention (CMUdict): a word is correct when the prediction equals ANY reference
pronunciation; the phoneme error rate uses the closest reference.

- ``wer``: fraction of sources whose prediction matches no reference (word error rate in
  G2P; sentence error rate for sentence-level data).
- ``per``: sum of edit distances to the closest reference / sum of that reference's lengths
  (phoneme error rate in G2P; token error rate in general).
- ``cer``: the same on the characters of the detokenized strings (closest reference).
- ``bleu``, ``chrf``: sacrebleu's corpus BLEU and chrF (its defaults, 0-100) of the detokenized
  strings against all references of each source.

``paired_comparison`` tells whether two models' WERs on the same sources differ by more than
chance: McNemar's exact test and a paired bootstrap interval, both over the sources only one
model gets wrong.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from rapidfuzz.distance import Levenshtein


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1) between two
    sequences: two strings compare characters, two token lists compare whole tokens."""
    return Levenshtein.distance(a, b)


def closest_reference(prediction: Sequence, references: Sequence[Sequence]) -> tuple[int, int]:
    """(edit distance, reference length) of the reference closest to ``prediction``."""
    if not references:
        raise ValueError("Received no references; every source needs at least one.")
    return min((edit_distance(prediction, ref), len(ref)) for ref in references)


def word_errors(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]]) -> list[bool]:
    """Per source, whether its prediction matches none of its references (what ``wer`` counts)."""
    return [not any(list(prediction) == list(ref) for ref in refs) for prediction, refs in zip(predictions, references)]


def error_rates(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    *,
    detokenize: Callable[[Sequence[str]], str] = " ".join,
) -> dict[str, float]:
    """``sequence_accuracy``, ``wer``, ``per`` and ``cer`` over token sequences.

    predictions[i]: tokens predicted for source i; references[i]: its reference token lists;
    ``detokenize`` turns tokens into the text that ``cer`` compares.
    """
    if len(predictions) != len(references):
        raise ValueError(f"Received {len(predictions)} predictions for {len(references)} reference sets.")
    if not predictions:
        raise ValueError("Received no predictions to score.")
    wrong = sum(word_errors(predictions, references))
    token_errors = token_total = char_errors = char_total = 0
    for prediction, refs in zip(predictions, references):
        prediction = list(prediction)
        errors, length = closest_reference(prediction, refs)
        token_errors += errors
        token_total += length
        char_errs, char_len = closest_reference(detokenize(prediction), [detokenize(r) for r in refs])
        char_errors += char_errs
        char_total += char_len
    return {
        "sequence_accuracy": 1.0 - wrong / len(predictions),
        "wer": wrong / len(predictions),
        "per": token_errors / max(token_total, 1),
        "cer": char_errors / max(char_total, 1),
    }


def corpus_bleu_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float | str]:
    """sacrebleu's corpus-level BLEU and chrF (default settings, 0-100) of detokenized strings.

    hypotheses[i]: the output for source i; references[i]: its reference strings (one or more).
    Sources may have different numbers of references: sacrebleu takes reference streams, and a
    ``None`` in a stream means "no reference here" (its documented variable-reference form,
    signature ``nrefs:var``). Returns ``bleu``, ``chrf`` and their sacrebleu signatures
    ``bleu_signature``, ``chrf_signature`` (what to quote next to the numbers).
    """
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"Received {len(hypotheses)} hypotheses for {len(references)} reference sets.")
    if not hypotheses:
        raise ValueError("Received no hypotheses to score.")
    if not all(references):
        raise ValueError("Received no references for a source; every source needs at least one.")
    most = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": float(bleu.corpus_score(list(hypotheses), streams).score),
        "chrf": float(chrf.corpus_score(list(hypotheses), streams).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


def paired_comparison(
    errors_a: Sequence[bool], errors_b: Sequence[bool], *, resamples: int = 10_000, seed: int = 0
) -> dict[str, float | int]:
    """Whether model B's WER differs from model A's on the same sources, by more than chance.

    errors_a[i], errors_b[i]: whether each model got source i wrong (``word_errors``). Only the
    discordant sources tell the models apart: ``only_a_wrong`` (A wrong, B right) and
    ``only_b_wrong``. Returns ``sources``, ``wer_a``, ``wer_b``, ``difference`` (wer_b - wer_a),
    the two counts, ``p_value`` (McNemar's exact two-sided test: under "equally good" each
    discordant source is a fair coin) and ``interval_low``, ``interval_high``: the paired
    bootstrap's 95% interval of the difference (``resamples`` resamplings of the sources with
    replacement; drawn as one multinomial over the three kinds of source, which is the same
    distribution).
    """
    import numpy as np

    if len(errors_a) != len(errors_b):
        raise ValueError(f"Received {len(errors_a)} results for model A and {len(errors_b)} for model B.")
    if not errors_a:
        raise ValueError("Received no sources to compare.")
    sources = len(errors_a)
    only_a = sum(1 for a, b in zip(errors_a, errors_b) if a and not b)
    only_b = sum(1 for a, b in zip(errors_a, errors_b) if b and not a)
    discordant = only_a + only_b
    tail = sum(math.comb(discordant, k) for k in range(min(only_a, only_b) + 1))
    p_value = min(1.0, 2 * tail / 2**discordant)
    draws = np.random.default_rng(seed).multinomial(
        sources, [only_a / sources, only_b / sources, 1 - discordant / sources], size=resamples
    )
    differences = (draws[:, 1] - draws[:, 0]) / sources
    low, high = np.percentile(differences, [2.5, 97.5])
    return {
        "sources": sources,
        "wer_a": sum(map(bool, errors_a)) / sources,
        "wer_b": sum(map(bool, errors_b)) / sources,
        "difference": (only_b - only_a) / sources,
        "only_a_wrong": only_a,
        "only_b_wrong": only_b,
        "p_value": p_value,
        "interval_low": float(low),
        "interval_high": float(high),
    }
