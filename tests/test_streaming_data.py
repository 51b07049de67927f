"""Streaming data (issue #8): the line-by-line TSV reader, the line-by-line validation hold-out
and the batch count of the tf.data pipeline give what the whole-file versions gave.

The references below are the earlier whole-file rules (``read_bytes().split(b"\\n")``, the set
of every source), kept here only to compare against. That memory does not grow with the file
is measured by benchmarks/data_memory.py, not asserted here."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import RESERVED_TOKENS
from keras_s2s.data import SideEncoding, teacher_forcing_dataset
from keras_s2s.datasets.resolve import HOLDOUT_SALT, dataset_files, holdout_sources
from keras_s2s.datasets.splits import hash_bucket
from keras_s2s.errors import DataError
from keras_s2s.tokenization import TextSpec
from keras_s2s.tsv import (
    Pair,
    TsvReport,
    _binary_lines,
    _parse_line,
    check_parallel_tsv,
    read_parallel_tsv,
    stream_parallel_tsv,
)
from keras_s2s.vocab import Vocabulary

WORD = TextSpec("word", "NFKC", False)
CHAR_LOWER = TextSpec("char", "NFKC", True)
BUFFER = io.DEFAULT_BUFFER_SIZE
LINE_OPTIONS = [
    dict(skip_malformed=True),
    dict(skip_malformed=True, max_source_length=3, max_target_length=2),
    dict(skip_malformed=True, max_source_length=3, max_target_length=2, length_policy="truncate"),
]


# --- whole-file references ----------------------------------------------------------------------
def whole_file_lines(content: bytes) -> list[bytes]:
    """The earlier line split: the whole file split on \\n, a final \\n ending the last line."""
    lines = content.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def whole_file_read(path: Path, source_spec: TextSpec, target_spec: TextSpec, *, max_source_length=None,
                    max_target_length=None, length_policy="filter", skip_malformed=False) -> tuple[list[Pair], TsvReport]:
    """The earlier reader: every line of ``path.read_bytes()`` through the same line parser."""
    report, pairs = TsvReport(path=str(path)), []
    for number, line in enumerate(whole_file_lines(path.read_bytes()), start=1):
        report.lines += 1
        parsed = _parse_line(line, source_spec, target_spec)
        if parsed is None:
            report.blank += 1
            continue
        if isinstance(parsed, str):
            if not skip_malformed:
                raise DataError(f"{path}:{number}: {parsed} (set skip_malformed to skip and count such lines)")
            report.malformed += 1
            if len(report.malformed_examples) < 10:
                report.malformed_examples.append(f"{path}:{number}: {parsed}")
            continue
        source, target, source_tokens, target_tokens = parsed
        too_long = (max_source_length is not None and len(source_tokens) > max_source_length) or (
            max_target_length is not None and len(target_tokens) > max_target_length)
        if too_long and length_policy == "filter":
            report.too_long += 1
            continue
        if too_long:
            report.truncated += 1
            source_tokens, target_tokens = source_tokens[:max_source_length], target_tokens[:max_target_length]
        pairs.append(Pair(number, source, target, tuple(source_tokens), tuple(target_tokens)))
        report.target_tokens += len(target_tokens) + 1
    report.kept = len(pairs)
    return pairs, report


def whole_set_holdout(sources: list[str], validation_percent: int) -> set[str]:
    """The earlier hold-out: over the set of every distinct source."""
    distinct = sorted(set(sources))
    salted = {source: hash_bucket(HOLDOUT_SALT + source, buckets=1 << 32) for source in distinct}
    threshold = (1 << 32) * (100 - validation_percent) // 100
    held_out = {source for source, value in salted.items() if value >= threshold}
    return held_out or {max(distinct, key=salted.__getitem__)}


def assert_same_as_whole_file(path: Path, spec: TextSpec, **options) -> None:
    try:
        expected = whole_file_read(path, spec, spec, **options)
    except DataError as err:
        with pytest.raises(DataError) as info:
            read_parallel_tsv(path, spec, spec, **options)
        assert str(info.value) == str(err)
        return
    assert read_parallel_tsv(path, spec, spec, **options) == expected
    pairs, report = stream_parallel_tsv(path, spec, spec, **options)
    assert list(pairs) == expected[0] and report == expected[1]
    assert check_parallel_tsv(path, spec, spec, **options) == expected[1]


# --- the line-by-line reader --------------------------------------------------------------------
MESSY = (
    b"\xef\xbb\xbfI go home\t\xeb\x82\x98\xeb\x8a\x94 \xea\xb0\x84\xeb\x8b\xa4\r\n"  # BOM + CRLF
    b"\r\n"  # blank (CR only)
    b"no tab here\n"
    b"\thome\n"
    b"you go\t\n"
    b"caf\xe9\tcoffee\n"
    b"a b c d\tx y z\textra column\n"
    b"  \t  \n"
    b"lone\rcarriage\treturn\n"  # a CR inside a line is not a line end
    b"last\tline without newline"
)


@pytest.mark.parametrize("options", [dict(), *LINE_OPTIONS], ids=["strict", "skip", "filter", "truncate"])
def test_the_streaming_reader_gives_the_whole_file_pairs_report_and_errors(write_bytes, options):
    assert_same_as_whole_file(write_bytes(MESSY), WORD, **options)


@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n", b"a\tb", b"a\tb\n", b"a\tb\r", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_the_line_split_of_edge_files_is_the_whole_file_split(write_bytes, content):
    assert list(_binary_lines(write_bytes(content))) == whole_file_lines(content)


def test_lines_across_read_buffer_boundaries_and_longer_than_the_buffer(write_bytes):
    rng = random.Random(0)
    lines = [" ".join(rng.choice("abc") for _ in range(rng.randint(1, 40))) + "\t" + "x y" for _ in range(3000)]
    lines[1500] = "long " * (3 * BUFFER // 5) + "\tz"  # three read buffers on one line
    content = "\r\n".join(lines).encode() + b"\r\n"
    path = write_bytes(content)
    assert len(content) > 15 * BUFFER
    assert list(_binary_lines(path)) == whole_file_lines(content)
    for options in LINE_OPTIONS:
        assert_same_as_whole_file(path, WORD, **options)
    pairs, report = read_parallel_tsv(path, WORD, WORD)
    assert report.kept == len(pairs) == 3000 and pairs[1500].source_tokens == ("long",) * (3 * BUFFER // 5)


def test_a_malformed_line_past_many_buffers_is_named_by_its_line_number(write_bytes):
    good = "word\tW ER D\n" * 5000
    path = write_bytes((good + "no tab\n" + good).encode())
    with pytest.raises(DataError, match=rf"^{path}:5001: no tab"):
        check_parallel_tsv(path, WORD, WORD)
    report = check_parallel_tsv(path, WORD, WORD, skip_malformed=True)
    assert (report.lines, report.malformed, report.kept) == (10_001, 1, 10_000)
    assert report.malformed_examples == [f"{path}:5001: no tab: expected 'source<TAB>target'"]


def test_a_missing_file_is_a_data_error_when_the_stream_is_read(tmp_path):
    pairs, _ = stream_parallel_tsv(tmp_path / "nope.tsv", WORD, WORD)
    with pytest.raises(DataError, match="data file not found"):
        next(pairs)
    with pytest.raises(DataError, match="data file is a directory"):
        check_parallel_tsv(tmp_path, WORD, WORD)


def test_the_report_counts_the_lines_read_so_far(write_text):
    pairs, report = stream_parallel_tsv(write_text("a\tb\n\nc\td\n"), WORD, WORD)
    first = next(pairs)
    assert (first.line, report.lines, report.kept) == (1, 1, 1)
    assert [p.line for p in pairs] == [3]
    assert (report.lines, report.blank, report.kept) == (3, 1, 2)


LINE_PIECES = [b"a", b"b c", b"\t", b"\r", b"\n", b"\n", b" ", b"\xef\xbb\xbf", b"\xe9", "집".encode(), b"x\ty\tz"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(LINE_PIECES), max_size=40), options=st.sampled_from(LINE_OPTIONS))
def test_any_bytes_read_line_by_line_give_the_whole_file_result(tmp_path, pieces, options):
    path = tmp_path / "data.tsv"
    path.write_bytes(b"".join(pieces))
    assert list(_binary_lines(path)) == whole_file_lines(path.read_bytes())
    assert_same_as_whole_file(path, CHAR_LOWER, **options)


# --- the line-by-line hold-out ------------------------------------------------------------------
@pytest.mark.parametrize("count", [2, 3, 7, 40, 300, 5000])
@pytest.mark.parametrize("validation_percent", [1, 5, 30])
def test_the_holdout_is_the_whole_set_holdout(count, validation_percent):
    rng = random.Random(count * 100 + validation_percent)
    sources = [f"{rng.choice('abcxyz')}{n}" for n in range(count)]
    sources += rng.choices(sources, k=count // 2)  # repeated sources, out of order
    rng.shuffle(sources)
    assert holdout_sources(sources, validation_percent) == whole_set_holdout(sources, validation_percent)


def test_small_files_take_the_highest_hash_fallback_like_the_whole_set_rule():
    fallbacks = 0
    for n in range(200):
        sources = [f"s{n}", f"t{n}", f"s{n}"]
        held_out = holdout_sources(sources, 5)
        assert held_out == whole_set_holdout(sources, 5)
        fallbacks += all(hash_bucket(HOLDOUT_SALT + s, 1 << 32) < (1 << 32) * 95 // 100 for s in sources)
    assert fallbacks > 150  # the fallback is what was compared, most of the time


def written_parts(config: Seq2SeqConfig, data_dir: Path) -> tuple[str, str]:
    files = dataset_files(config, data_dir)
    return files.train.read_text(encoding="utf-8"), files.validation.read_text(encoding="utf-8")


def falls_back(sources: set[str], validation_percent: int) -> bool:
    threshold = (1 << 32) * (100 - validation_percent) // 100
    return all(hash_bucket(HOLDOUT_SALT + source, buckets=1 << 32) < threshold for source in sources)


@pytest.mark.parametrize("sources", [200, 2], ids=["in-range", "fallback"])
def test_the_written_parts_are_those_of_the_whole_set_holdout(tmp_path, sources):
    rng = random.Random(sources)
    rows = [(f"w{rng.randrange(sources)}", " ".join(rng.choices("ABC", k=3))) for _ in range(4 * sources)]
    lines = [f"  {s} \t{t}\tnote" for s, t in rows] + ["no tab", ""]
    rng.shuffle(lines)
    train_file = tmp_path / "user.tsv"
    train_file.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    config = Seq2SeqConfig(dataset="tsv", train_file=str(train_file), skip_malformed=True, validation_percent=10)

    pairs, _ = whole_file_read(train_file, config.source_spec(), config.target_spec(), skip_malformed=True)
    kept = [(p.source, p.target) for p in pairs]
    assert falls_back({s for s, _ in kept}, 10) == (sources == 2)
    held_out = whole_set_holdout([s for s, _ in kept], 10)
    expected_train = "".join(f"{s}\t{t}\n" for s, t in kept if s not in held_out)
    expected_validation = "".join(f"{s}\t{t}\n" for s, t in kept if s in held_out)
    assert written_parts(config, tmp_path / "data") == (expected_train, expected_validation)
    assert expected_train and expected_validation
    assert not list((tmp_path / "data").glob("*.rest"))


def test_a_file_without_any_usable_source_cannot_be_split(tmp_path):
    train_file = tmp_path / "user.tsv"
    train_file.write_text("no tab\n\n", encoding="utf-8")
    config = Seq2SeqConfig(dataset="tsv", train_file=str(train_file), skip_malformed=True)
    with pytest.raises(DataError, match=r"user\.tsv: cannot hold out .* 0 distinct source"):
        dataset_files(config, tmp_path / "data")


# --- the batch count without a pass over the batches ---------------------------------------------
@pytest.mark.parametrize(
    "bucket_width, batch_size, policy, reverse",
    [(0, 3, "filter", False), (3, 4, "truncate", True), (4, 5, "filter", True)],
)
def test_the_cardinality_is_the_number_of_batches_made(write_text, bucket_width, batch_size, policy, reverse):
    rng = random.Random(bucket_width * 10 + batch_size)
    rows = [(rng.choices("abcd", k=rng.randint(1, 9)), rng.choices("wxyz", k=rng.randint(1, 9))) for _ in range(150)]
    path = write_text("".join(f"{' '.join(s)}\t{' '.join(t)}\n" for s, t in rows) + "\n\nno tab\n")
    source_vocab = Vocabulary([*RESERVED_TOKENS, *"abcd"])
    target_vocab = Vocabulary([*RESERVED_TOKENS, *"wxyz"])
    source, target = SideEncoding(WORD, source_vocab, 7, reverse=reverse), SideEncoding(WORD, target_vocab, 6)
    _, report = read_parallel_tsv(path, WORD, WORD, max_source_length=7, max_target_length=6,
                                  length_policy=policy, skip_malformed=True)
    dataset = teacher_forcing_dataset(path, source, target, batch_size=batch_size, bucket_width=bucket_width,
                                      length_policy=policy, shuffle_seed=1)
    batch_sizes = [int(target_ids.shape[0]) for _, target_ids in dataset]
    assert len(batch_sizes) == int(dataset.cardinality())
    assert sum(batch_sizes) == report.kept
    if bucket_width == 0:
        assert len(batch_sizes) == -(-report.kept // batch_size)


# --- the memory cache of small files ------------------------------------------------------------
def cache_test_dataset(path: Path, memory_cache_max_bytes: int):
    vocab = Vocabulary([*RESERVED_TOKENS, *"abcd"])
    side = SideEncoding(WORD, vocab, 5)
    return teacher_forcing_dataset(path, side, side, batch_size=4, shuffle_seed=3,
                                   memory_cache_max_bytes=memory_cache_max_bytes)


def batch_list(dataset) -> list[list]:
    return [[source.numpy().tolist(), target_ids.numpy().tolist()] for (source, _), target_ids in dataset]


def examples_of(batches: list[list]) -> list[tuple]:
    """Every (source row, target row) of the batches, sorted (epochs reshuffle)."""
    return sorted((tuple(s), tuple(t)) for sources, targets in batches for s, t in zip(sources, targets))


@pytest.mark.slow  # several epochs of a tf.data pipeline, as model.fit runs them
@pytest.mark.parametrize("cached", [True, False], ids=["small-file-cached", "large-file-streamed"])
def test_a_small_file_is_read_once_and_a_large_one_every_epoch(write_text, cached):
    rng = random.Random(5)
    path = write_text("".join(f"{' '.join(rng.choices('abcd', k=3))}\t{rng.choice('abcd')}\n" for _ in range(50)))
    dataset = cache_test_dataset(path, path.stat().st_size if cached else path.stat().st_size - 1)
    first = batch_list(dataset)
    assert first == batch_list(cache_test_dataset(path, 0))  # the cache changes no batch
    path.rename(path.with_suffix(".moved"))
    if cached:
        assert examples_of(batch_list(dataset)) == examples_of(first)  # from memory
    else:
        with pytest.raises(Exception, match="No such file|NotFound"):
            batch_list(dataset)
