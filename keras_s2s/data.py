"""tf.data pipelines: parallel TSV -> teacher-forcing batches.

    TextLineDataset -> drop blank/malformed lines (same rules as ``keras_s2s.tsv``)
      -> normalize + tokenize (tensorflow-text) -> vocabulary ids -> length policy
      -> [cache, small files] -> [shuffle] -> length-bucketed padded batches -> SOS/EOS -> prefetch

The file is streamed, never held in memory: every epoch reads it again, except that a small
file's pairs are cached in memory (``MEMORY_CACHE_MAX_BYTES``; see ``teacher_forcing_dataset``).

Each element is ``((source_ids, decoder_input_ids), target_ids)``:
- ``source_ids``        [batch, S] int32, right-padded with PAD=0 (no SOS/EOS);
- ``decoder_input_ids`` [batch, T] int32, ``SOS y1 .. yn`` then PAD;
- ``target_ids``        [batch, T] int32, ``y1 .. yn EOS`` then PAD (shifted by one).

Batches are grouped by length: with ``bucket_width=w`` every batch is padded to a
multiple of ``w`` (both sides to the same length), which keeps the number of distinct
shapes small (each new shape costs an XLA compile) and wastes few steps on padding. A bucket
with fewer than ``SPARSE_BUCKET_FRACTION`` of the pairs joins the next longer one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path
from typing import Literal, Optional

import tensorflow as tf

from keras_s2s import tf_tokenization
from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

_PARSE_BATCH = 1024
# Files up to this size (CMUdict's 3.3 MB training split; ~150k short lines) keep their pairs
# in memory after the first epoch: later epochs skip reading and tokenizing, ~20% of the
# pipeline's CPU per epoch, for 15-25 bytes of memory per byte of file (at most ~100 MB);
# larger files stream (benchmarks/RESULTS.md, "Streaming data").
MEMORY_CACHE_MAX_BYTES = 4_000_000

SPARSE_BUCKET_FRACTION = 0.01
"""A length bucket holding fewer than this fraction of a file's pairs is merged into the next
longer bucket (its rows padded to that bucket's length). Every bucket is one more train-step
shape to compile or trace, 5-11 s each for the demo's model under XLA, which a few batches an
epoch never pay back: in CMUdict's training split, lengths 17-32 are 143 pairs (0.11%) in three
buckets, four batches an epoch, so merged they are one shape instead of three (RESULTS.md,
"sparse buckets"). Merging only pads more; the extra work is bounded by the merged rows."""


@dataclasses.dataclass(frozen=True)
class SideEncoding:
    """How one side of a pair becomes ids: text spec, vocabulary, maximum length and
    whether the ids are reversed (after truncation; used for the source side)."""

    spec: TextSpec
    vocab: Vocabulary
    max_length: int
    reverse: bool = False


def token_batches(path: str | Path, source_spec: TextSpec, target_spec: TextSpec) -> tf.data.Dataset:
    """Tokens of the well-formed lines, in file order, in batches of up to 1024 lines:
    elements ``(source_tokens [n, (S)], target_tokens [n, (T)])`` tf.string RaggedTensors."""
    lines = tf.data.TextLineDataset(str(path)).batch(_PARSE_BATCH)
    return lines.map(_line_tokenizer(source_spec, target_spec), num_parallel_calls=tf.data.AUTOTUNE)


@functools.lru_cache(maxsize=None)
def _line_tokenizer(source_spec: TextSpec, target_spec: TextSpec) -> tf.types.experimental.GenericFunction:
    """lines [n] tf.string -> the tokens of the well-formed ones, ``(source_tokens [m, (S)],
    target_tokens [m, (T)])`` tf.string RaggedTensors: traced once per pair of specs in a
    process. Tracing tensorflow-text's ops took ~0.75 s per file on the 2-core AVX2 VM, and a
    training run tokenizes three files (vocabulary counts, training and validation sets)."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def tokenize_lines(lines):
        sources, targets = _well_formed_fields(lines)
        source_tokens = tf_tokenization.tokenize(source_spec, sources)
        target_tokens = tf_tokenization.tokenize(target_spec, targets)
        keep = (source_tokens.row_lengths() > 0) & (target_tokens.row_lengths() > 0)
        return tf.ragged.boolean_mask(source_tokens, keep), tf.ragged.boolean_mask(target_tokens, keep)

    return tokenize_lines


def count_dataset_tokens(path: str | Path, source_spec: TextSpec, target_spec: TextSpec) -> tuple[Counter, Counter]:
    """Token frequencies of both sides of a TSV file, tokenized by tensorflow-text."""
    source_counts: Counter = Counter()
    target_counts: Counter = Counter()
    for source_tokens, target_tokens in token_batches(path, source_spec, target_spec):
        source_counts.update(t.decode("utf-8") for t in source_tokens.flat_values.numpy())
        target_counts.update(t.decode("utf-8") for t in target_tokens.flat_values.numpy())
    return source_counts, target_counts


def id_dataset(
    path: str | Path,
    source: SideEncoding,
    target: SideEncoding,
    *,
    length_policy: Literal["filter", "truncate"] = "filter",
) -> tf.data.Dataset:
    """Ids of the kept pairs: elements ``(source_ids [S], target_ids [T])`` int32, no SOS/EOS
    (reversed where the side's encoding says so)."""
    return _unbatched_ids(_id_batches(path, source, target, length_policy), source, target)


def teacher_forcing_dataset(
    path: str | Path,
    source: SideEncoding,
    target: SideEncoding,
    *,
    batch_size: int,
    bucket_width: int = 4,
    length_policy: Literal["filter", "truncate"] = "filter",
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 20_000,
    memory_cache_max_bytes: int = MEMORY_CACHE_MAX_BYTES,
    full_batches: bool = False,
) -> tf.data.Dataset:
    """Batches ``((source_ids, decoder_input_ids), target_ids)`` for ``model.fit``.

    ``shuffle_seed=None`` keeps file order (validation, evaluation); otherwise examples are
    reshuffled every epoch. The dataset's cardinality (number of batches) is set, so Keras
    shows a progress bar with an ETA from the first epoch.

    ``full_batches``: a length bucket's last, smaller batch of an epoch is filled up to
    ``batch_size`` with all-PAD rows. They hold no target token, so the masked loss, its
    gradients and the token accuracy are those of the real rows; every batch of a bucket then
    has one shape, and XLA compiles (or the per-shape step traces) one train step per bucket
    instead of two. For training: Keras weighs each batch's loss by its rows in the epoch's
    logged mean, so evaluation batches are left as they are.

    Streaming: a file larger than ``memory_cache_max_bytes`` is read again every epoch, so
    memory holds the shuffle buffer (``shuffle_buffer`` examples) and one partial batch per
    length bucket, whatever the file's length; a smaller one is cached in memory after the
    first epoch.
    """
    id_batches = _id_batches(path, source, target, length_policy)
    pairs = _unbatched_ids(id_batches, source, target)
    if tf.io.gfile.stat(str(path)).length <= memory_cache_max_bytes:
        pairs = pairs.cache()
    if shuffle_seed is not None:
        pairs = pairs.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    boundaries = _bucket_boundaries(bucket_width, max(source.max_length, target.max_length + 1))
    pairs_per_bucket = _pairs_per_bucket(id_batches, boundaries)
    boundaries, pairs_per_bucket = merge_sparse_buckets(
        boundaries, pairs_per_bucket, SPARSE_BUCKET_FRACTION * sum(pairs_per_bucket))
    # SOS/EOS are added per batch, not per pair: a per-pair map cost ~40% of the pipeline's
    # CPU, which on 2 cores competes with the train step (benchmarks/RESULTS.md, "night").
    batches = _bucketed_batches(pairs, batch_size, boundaries).map(_add_sos_eos, num_parallel_calls=tf.data.AUTOTUNE)
    if full_batches:
        batches = batches.map(lambda inputs, targets: _fill_rows(inputs, targets, batch_size))
    # A bucket's batches are full but its last.
    num_batches = sum(-(-pairs // batch_size) for pairs in pairs_per_bucket)
    return batches.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(tf.data.AUTOTUNE)


def _id_batches(
    path: str | Path, source: SideEncoding, target: SideEncoding, length_policy: Literal["filter", "truncate"]
) -> tf.data.Dataset:
    """Ids of the kept pairs in batches of up to 1024 lines, length policy applied, not
    reversed: elements ``(source_ids [n, (S)], target_ids [n, (T)])`` int32 RaggedTensors."""
    source_table = source.vocab.lookup_table()
    target_table = target.vocab.lookup_table()

    def encode_batch(source_tokens, target_tokens):
        source_ids = tf.ragged.map_flat_values(source_table.lookup, source_tokens)
        target_ids = tf.ragged.map_flat_values(target_table.lookup, target_tokens)
        if length_policy == "filter":
            keep = (source_ids.row_lengths() <= source.max_length) & (target_ids.row_lengths() <= target.max_length)
            return tf.ragged.boolean_mask(source_ids, keep), tf.ragged.boolean_mask(target_ids, keep)
        return source_ids[:, : source.max_length], target_ids[:, : target.max_length]

    batches = token_batches(path, source.spec, target.spec)
    return batches.map(encode_batch, num_parallel_calls=tf.data.AUTOTUNE)


def _unbatched_ids(id_batches: tf.data.Dataset, source: SideEncoding, target: SideEncoding) -> tf.data.Dataset:
    """``_id_batches`` as one ``(source_ids [S], target_ids [T])`` pair of dense tensors per
    element, reversed where the side's encoding says so (one map for both: per-pair maps are
    what the pipeline's CPU goes to)."""
    return id_batches.unbatch().map(
        lambda s, t: (tf.reverse(s, [0]) if source.reverse else s, tf.reverse(t, [0]) if target.reverse else t)
    )


def _well_formed_fields(lines: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[lines] tf.string -> stripped (sources, targets) of the lines that pass the format checks."""
    lines = tf.strings.regex_replace(lines, "^\ufeff", "")
    not_blank = tf.strings.length(tf.strings.strip(lines)) > 0
    valid_utf8 = tf.equal(
        tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD),
        lines,
    )
    lines = tf.boolean_mask(lines, not_blank & valid_utf8)
    fields = tf.strings.split(lines, "\t")
    has_tab = fields.row_lengths() >= 2
    columns = tf.boolean_mask(fields[:, :2].to_tensor(default_value="", shape=[None, 2]), has_tab)
    return tf.strings.strip(columns[:, 0]), tf.strings.strip(columns[:, 1])


def _add_sos_eos(source_ids, target_ids):
    """A padded batch of pairs -> teacher forcing: ``(source_ids [B, S], target_ids [B, L])``
    int32, every target row ending in at least one PAD (L > its length; real ids are never
    PAD) -> ``((source_ids, decoder_input_ids [B, L]), shifted_target_ids [B, L])``: SOS then
    the target, and the target then EOS, PAD after."""
    rows, width = tf.shape(target_ids)[0], tf.shape(target_ids)[1]
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(target_ids, PAD_ID), tf.int32), axis=1)
    decoder_input_ids = tf.concat([tf.fill([rows, 1], tf.constant(SOS_ID, tf.int32)), target_ids[:, :-1]], axis=1)
    eos = tf.one_hot(lengths, width, on_value=EOS_ID, off_value=PAD_ID, dtype=tf.int32)
    return (source_ids, decoder_input_ids), target_ids + eos


def _fill_rows(inputs, targets, batch_size: int):
    """``((source_ids [B, S], decoder_input_ids [B, L]), target_ids [B, L])`` with B <=
    ``batch_size`` -> the same with ``batch_size`` rows, the added ones all PAD."""
    missing = batch_size - tf.shape(targets)[0]
    fill = lambda ids: tf.pad(ids, [[0, missing], [0, 0]], constant_values=PAD_ID)  # noqa: E731
    return tf.nest.map_structure(fill, (inputs, targets))


def _bucket_boundaries(bucket_width: int, max_length: int) -> list[int]:
    """Bucket i holds lengths in [i*w + 1, (i+1)*w] and is padded to (i+1)*w; no buckets
    (each batch padded to its longest example) when ``bucket_width`` is 0."""
    if bucket_width == 0:
        return []
    return list(range(bucket_width + 1, max_length + bucket_width + 1, bucket_width))


def _bucketed_batches(pairs: tf.data.Dataset, batch_size: int, boundaries: list[int]) -> tf.data.Dataset:
    """``(source_ids [S], target_ids [T])`` pairs -> padded batches ``(source_ids [B, S'],
    target_ids [B, L])`` with a PAD after every target row (room for EOS): bucketed, both
    sides padded to the bucket's length, which is at least target length + 1; unbucketed,
    each side to its longest row, the targets plus one."""
    if not boundaries:
        batches = pairs.padded_batch(batch_size, padding_values=PAD_ID)
        return batches.map(lambda s, t: (s, tf.pad(t, [[0, 0], [0, 1]], constant_values=PAD_ID)))
    return pairs.bucket_by_sequence_length(
        element_length_func=lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0] + 1),
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=(PAD_ID, PAD_ID),
        pad_to_bucket_boundary=True,
    )


def _pairs_per_bucket(id_batches: tf.data.Dataset, boundaries: list[int]) -> list[int]:
    """How many of these pairs ``_bucketed_batches`` puts in each bucket (``len(boundaries) + 1``
    counts; one, all pairs, without boundaries).

    One vectorized pass over ``_id_batches`` (no shuffle, padding or per-pair work): the
    example length is that of ``_bucketed_batches``, max(source, target + 1) (the decoder
    input has SOS, the target EOS), and a bucket index is the number of boundaries <= it,
    as in ``bucket_by_sequence_length``.
    """
    num_buckets = len(boundaries) + 1
    sorted_boundaries = tf.constant(boundaries, tf.int64)

    def pairs_per_bucket(source_ids, target_ids):
        lengths = tf.maximum(source_ids.row_lengths(), target_ids.row_lengths() + 1)
        buckets = tf.searchsorted(sorted_boundaries, lengths, side="right")
        return tf.math.bincount(buckets, minlength=num_buckets, maxlength=num_buckets, dtype=tf.int64)

    totals = id_batches.map(pairs_per_bucket).reduce(tf.zeros([num_buckets], tf.int64), lambda a, b: a + b)
    return [int(pairs) for pairs in totals.numpy()]


def merge_sparse_buckets(boundaries: list[int], pairs_per_bucket: list[int], min_pairs: float) -> tuple[list[int], list[int]]:
    """``(boundaries, pairs_per_bucket)`` with every bucket of fewer than ``min_pairs`` pairs
    joined to the next longer one, shortest first, while a longer bucket has pairs (a merged
    bucket's count carries on, so a run of sparse buckets becomes one; joining only empty
    buckets would pad more for no shape fewer). Bucket i holds lengths in [boundaries[i-1],
    boundaries[i]) and is padded to boundaries[i] - 1; the last boundary always stays
    (``bucket_by_sequence_length`` pads nothing longer).

    >>> merge_sparse_buckets([5, 9, 13, 17, 21], [40, 900, 1, 50, 2, 0], 10)
    ([5, 9, 17, 21], [40, 900, 51, 2, 0])
    """
    kept_boundaries, kept_pairs, carried = [], [], 0
    for i, boundary in enumerate(boundaries):
        carried += pairs_per_bucket[i]
        if carried >= min_pairs or not any(pairs_per_bucket[i + 1 :]) or boundary == boundaries[-1]:
            kept_boundaries.append(boundary)
            kept_pairs.append(carried)
            carried = 0
    return kept_boundaries, kept_pairs + [carried + pairs_per_bucket[-1]]
