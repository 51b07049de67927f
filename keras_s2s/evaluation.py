"""Scores a translator on a TSV file: exact match, WER, PER, CER and teacher-forced accuracy."""

from __future__ import annotations

from pathlib import Path

from keras_s2s.errors import DataError
from keras_s2s.metrics import error_rates
from keras_s2s.runtime.translator import Translator
from keras_s2s.tsv import read_parallel_tsv


def evaluate(translator: Translator, path: str | Path, *, skip_malformed: bool = False, batch_size: int = 128) -> dict:
    """Scores on every well-formed line of ``path`` (no length filter at evaluation).

    Lines sharing a source are one item with several references (multi-reference G2P
    scoring). Returns ``token_accuracy``, ``sequence_accuracy``, ``wer``, ``per``, ``cer``,
    ``sources``, ``pairs`` and the file's line report.
    """
    pairs, report = read_parallel_tsv(
        path, translator.source.spec, translator.target.spec, skip_malformed=skip_malformed
    )
    if not pairs:
        raise DataError(f"{path}: no pairs to evaluate ({report.summary()})")
    references: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for pair in pairs:
        references.setdefault(pair.source_tokens, []).append(pair.target_tokens)
    sources = list(references)
    predictions = translator.translate_tokens(sources, batch_size=batch_size)
    scores = error_rates(predictions, [references[s] for s in sources], detokenize=translator.target.spec.detokenize)
    token_accuracy = translator.teacher_forced_accuracy([(p.source_tokens, p.target_tokens) for p in pairs])
    return {
        "token_accuracy": token_accuracy,
        **scores,
        "sources": len(sources),
        "pairs": len(pairs),
        "data": report.to_dict(),
    }
