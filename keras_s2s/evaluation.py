"""Scores a translator on a TSV file (exact match, WER, PER, CER, BLEU, chrF, teacher-forced
accuracy), or two translators against each other (``compare_models``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_s2s.datasets.cmudict_g2p import without_stress
from keras_s2s.decoding import Beam, Greedy, Strategy
from keras_s2s.errors import DataError, KerasS2SError
from keras_s2s.metrics import corpus_bleu_chrf, error_rates, paired_comparison, word_errors
from keras_s2s.runtime.translator import Translator
from keras_s2s.tsv import TsvReport, read_parallel_tsv


def evaluate(
    translator: Translator,
    path: str | Path,
    *,
    strategy: Strategy = Greedy(),
    skip_malformed: bool = False,
    strip_stress: bool = False,
    batch_size: int = 128,
) -> dict:
    """Scores on every well-formed line of ``path`` (no length filter at evaluation), decoding
    with ``strategy`` (its best hypothesis per source).

    Lines sharing a source are one item with several references (multi-reference G2P
    scoring). ``strip_stress``: ARPAbet stress digits are removed from predictions and
    references before scoring (how CMUdict G2P results are usually published); references
    that become equal merge. Returns ``token_accuracy``, ``sequence_accuracy``, ``wer``, ``per``, ``cer``,
    ``bleu``, ``chrf`` (sacrebleu, corpus level, 0-100, on detokenized text) with their
    sacrebleu signatures, ``strategy`` (``describe_strategy``), ``sources``, ``pairs``, the
    file's line report, and what the model could not read: ``unknown_source_tokens`` (source
    tokens mapped to UNK, over the distinct sources), ``sources_with_unknown_tokens`` and
    ``sources_truncated`` (longer than ``max_source_length``: the model reads the first ones).
    """
    items = _read_items(translator, path, skip_malformed)
    predictions, reference_sets, read = _decode_items(translator, items, strategy, strip_stress, batch_size)
    detokenize = translator.target.spec.detokenize
    scores = error_rates(predictions, reference_sets, detokenize=detokenize)
    bleu_chrf = corpus_bleu_chrf(
        [detokenize(p) for p in predictions], [[detokenize(r) for r in refs] for refs in reference_sets]
    )
    token_accuracy = translator.teacher_forced_accuracy([(p.source_tokens, p.target_tokens) for p in items.pairs])
    return {
        "token_accuracy": token_accuracy,
        **scores,
        **bleu_chrf,
        "strategy": describe_strategy(strategy),
        "stress": "stripped" if strip_stress else "kept",
        "sources": len(reference_sets),
        "pairs": len(items.pairs),
        "unknown_source_tokens": sum(len(r.unknown_tokens) for r in read),
        "sources_with_unknown_tokens": sum(1 for r in read if r.unknown_tokens),
        "sources_truncated": sum(1 for r in read if r.truncated),
        "max_source_length": translator.max_source_length,
        "data": items.report.to_dict(),
    }


def compare_models(
    translator: Translator,
    other: Translator,
    path: str | Path,
    *,
    strategy: Strategy = Greedy(),
    skip_malformed: bool = False,
    strip_stress: bool = False,
    batch_size: int = 128,
) -> dict:
    """Two models on the same file: their WER and PER, and whether the WERs differ by more
    than chance (``keras_s2s.metrics.paired_comparison``, ``translator`` as model A).

    Both decode with ``strategy`` and score as ``evaluate`` does (multi-reference,
    ``strip_stress``). The models must read and write the same tokens (equal text specs), so
    that both score the same sources against the same references. Returns ``per_a``,
    ``per_b``, ``strategy``, ``stress``, ``pairs`` and ``paired_comparison``'s fields.
    """
    if (translator.source.spec, translator.target.spec) != (other.source.spec, other.target.spec):
        raise KerasS2SError(
            "the two models tokenize differently (source or target text spec), so they would not score "
            "the same sources against the same references; compare models trained on the same kind of data"
        )
    items = _read_items(translator, path, skip_malformed)  # the same specs: the same items for both
    predictions_a, references, _ = _decode_items(translator, items, strategy, strip_stress, batch_size)
    predictions_b, _, _ = _decode_items(other, items, strategy, strip_stress, batch_size)
    detokenize = translator.target.spec.detokenize
    return {
        **paired_comparison(word_errors(predictions_a, references), word_errors(predictions_b, references)),
        "per_a": error_rates(predictions_a, references, detokenize=detokenize)["per"],
        "per_b": error_rates(predictions_b, references, detokenize=detokenize)["per"],
        "strategy": describe_strategy(strategy),
        "stress": "stripped" if strip_stress else "kept",
        "pairs": len(items.pairs),
    }


@dataclasses.dataclass(frozen=True)
class _Items:
    """A file's pairs grouped by source: ``sources[i]`` (tokens) is the i-th distinct source,
    ``references[i]`` its reference token lists; ``pairs`` and ``report`` as
    ``read_parallel_tsv`` gives them."""

    sources: list
    references: list
    pairs: list
    report: TsvReport


def _read_items(translator: Translator, path: str | Path, skip_malformed: bool) -> _Items:
    """The pairs of ``path`` read with the translator's text specs; lines sharing a source are
    one item with several references."""
    pairs, report = read_parallel_tsv(
        path, translator.source.spec, translator.target.spec, skip_malformed=skip_malformed
    )
    if not pairs:
        raise DataError(f"{path}: no pairs to evaluate ({report.summary()})")
    references: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for pair in pairs:
        references.setdefault(pair.source_tokens, []).append(pair.target_tokens)
    return _Items(list(references), list(references.values()), pairs, report)


def _decode_items(translator: Translator, items: _Items, strategy: Strategy, strip_stress: bool,
                  batch_size: int) -> tuple[list, list, list]:
    """-> (predictions, references, read): each source decoded with ``strategy``, its
    references, how the model read it; ``strip_stress`` applied to predictions and references."""
    read = [translator.read_source(s) for s in items.sources]
    predictions = translator.translate_tokens([r.tokens for r in read], batch_size=batch_size, strategy=strategy)
    references = items.references
    if strip_stress:
        predictions = [without_stress(p) for p in predictions]
        references = [sorted({tuple(without_stress(r)) for r in refs}) for refs in references]
    return predictions, references, read


def describe_strategy(strategy: Strategy) -> dict:
    """``{"name": "greedy"}`` or ``{"name": "beam", "width": 5, "length_penalty": 0.6}`` (JSON-ready)."""
    if isinstance(strategy, Greedy):
        return {"name": "greedy"}
    if isinstance(strategy, Beam):
        return {"name": "beam", "width": strategy.width, "length_penalty": float(strategy.length_penalty)}
    raise TypeError(f"Expected `strategy` to be Greedy() or Beam(...), got {strategy!r}.")
