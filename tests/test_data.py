"""Reading parallel TSV files (keras_s2s.tsv) and the tf.data teacher-forcing pipeline
(keras_s2s.data): exact tensors, malformed lines, length policy, and agreement between the
Python checks and the in-graph rules. Built-in datasets at the end."""

import re
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from keras_s2s.constants import EOS_ID, PAD_ID, RESERVED_TOKENS, SOS_ID, UNK_ID
from keras_s2s.data import SideEncoding, count_dataset_tokens, id_dataset, teacher_forcing_dataset
from keras_s2s.datasets import TOY_TSV, cmudict_pairs, hash_bucket, split_of, toy_pairs, write_cmudict_splits
from keras_s2s.errors import DataError
from keras_s2s.tokenization import TextSpec
from keras_s2s.tsv import read_parallel_tsv
from keras_s2s.vocab import Vocabulary, count_tokens

WORD = TextSpec("word", "NFKC", False)
WORD_LOWER = TextSpec("word", "NFKC", True)

THREE_LINES = "I go home\t나는 집에 간다\nyou go\t너는 간다\nhome\t집\n"
# Ids fixed by hand: source go=4 home=5 I=6 you=7; target 간다=4 나는=5 집에=6 너는=7 집=8.
SOURCE_VOCAB = Vocabulary([*RESERVED_TOKENS, "go", "home", "I", "you"])
TARGET_VOCAB = Vocabulary([*RESERVED_TOKENS, "간다", "나는", "집에", "너는", "집"])


def encodings(max_source=10, max_target=10, spec=WORD, source_vocab=SOURCE_VOCAB, target_vocab=TARGET_VOCAB):
    return SideEncoding(spec, source_vocab, max_source), SideEncoding(spec, target_vocab, max_target)


def batches_as_numpy(dataset):
    return [
        (source.numpy(), decoder_input.numpy(), target.numpy())
        for (source, decoder_input), target in dataset
    ]


def id_pairs(dataset) -> list[tuple[list[int], list[int]]]:
    return [(s.numpy().tolist(), t.numpy().tolist()) for s, t in dataset]


def vocabularies_of(pairs) -> tuple[Vocabulary, Vocabulary]:
    return (
        Vocabulary.build(count_tokens(p.source_tokens for p in pairs)),
        Vocabulary.build(count_tokens(p.target_tokens for p in pairs)),
    )


# --- (a) exact tensors ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def three_line_batch(tmp_path_factory):
    path = tmp_path_factory.mktemp("three_lines") / "data.tsv"
    path.write_text(THREE_LINES, encoding="utf-8")
    dataset = teacher_forcing_dataset(path, *encodings(), batch_size=3, bucket_width=0)
    (batch,) = batches_as_numpy(dataset)
    return batch


def test_source_ids_are_right_padded_with_pad_and_have_no_sos_or_eos(three_line_batch):
    source, _, _ = three_line_batch
    np.testing.assert_array_equal(source, [[6, 4, 5], [7, 4, 0], [5, 0, 0]])


def test_decoder_input_is_sos_then_target_then_pad(three_line_batch):
    _, decoder_input, _ = three_line_batch
    np.testing.assert_array_equal(decoder_input, [[SOS_ID, 5, 6, 4], [SOS_ID, 7, 4, 0], [SOS_ID, 8, 0, 0]])


def test_target_ids_are_target_then_eos_then_pad(three_line_batch):
    _, _, target = three_line_batch
    np.testing.assert_array_equal(target, [[5, 6, 4, EOS_ID], [7, 4, EOS_ID, 0], [8, EOS_ID, 0, 0]])


def test_decoder_input_is_target_shifted_right_by_sos(three_line_batch):
    _, decoder_input, target = three_line_batch
    np.testing.assert_array_equal(decoder_input[:, 0], SOS_ID)
    real = target[:, :-1] != PAD_ID
    not_eos = target[:, :-1] != EOS_ID
    np.testing.assert_array_equal(
        np.where(real & not_eos, decoder_input[:, 1:], -1), np.where(real & not_eos, target[:, :-1], -1)
    )
    # Both have the same length and the same number of non-PAD positions (SOS + n == n + EOS).
    assert decoder_input.shape == target.shape
    np.testing.assert_array_equal((decoder_input != PAD_ID).sum(1), (target != PAD_ID).sum(1))


def test_padding_is_pad_id_zero_on_all_three_tensors(three_line_batch):
    source, decoder_input, target = three_line_batch
    assert PAD_ID == 0
    for tensor, lengths in ((source, [3, 2, 1]), (decoder_input, [4, 3, 2]), (target, [4, 3, 2])):
        for row, length in enumerate(lengths):
            assert (tensor[row, length:] == 0).all()
            assert (tensor[row, :length] != 0).all()


@pytest.fixture(scope="module")
def batches_of_two(tmp_path_factory):
    """THREE_LINES in batches of 2, no shuffle seed (building a dataset traces its maps: share it)."""
    path = tmp_path_factory.mktemp("batches_of_two") / "data.tsv"
    path.write_text(THREE_LINES, encoding="utf-8")
    return teacher_forcing_dataset(path, *encodings(), batch_size=2, bucket_width=0)


def test_batches_are_int32_and_the_cardinality_is_known(batches_of_two):
    dataset = batches_of_two
    assert int(dataset.cardinality()) == 2
    (source_spec, decoder_spec), target_spec = dataset.element_spec
    assert source_spec.dtype == decoder_spec.dtype == target_spec.dtype == tf.int32


def test_file_order_is_kept_without_a_shuffle_seed(batches_of_two):
    dataset = batches_of_two
    first_tokens = [source[:, 0].tolist() for source, _, _ in batches_as_numpy(dataset)]
    assert first_tokens == [[6, 7], [5]]


def test_shuffle_seed_keeps_every_example(write_text):
    path = write_text("".join(f"w{i}\tt{i}\n" for i in range(20)))
    source_vocab = Vocabulary.build(Counter(f"w{i}" for i in range(20)))
    target_vocab = Vocabulary.build(Counter(f"t{i}" for i in range(20)))
    sides = encodings(source_vocab=source_vocab, target_vocab=target_vocab)
    dataset = teacher_forcing_dataset(path, *sides, batch_size=4, bucket_width=0, shuffle_seed=1)
    sources = sorted(int(s) for source, _, _ in batches_as_numpy(dataset) for s in source[:, 0])
    assert sources == list(range(4, 24))


def test_bucket_width_pads_both_sides_to_a_multiple_of_the_width(write_text):
    path = write_text(THREE_LINES + "I go home you go\t나는 간다\n")
    batches = batches_as_numpy(teacher_forcing_dataset(path, *encodings(), batch_size=3, bucket_width=4))
    shapes = [(s.shape, d.shape, t.shape) for s, d, t in batches]
    assert shapes == [((3, 4), (3, 4), (3, 4)), ((1, 8), (1, 8), (1, 8))]
    np.testing.assert_array_equal(batches[0][0], [[6, 4, 5, 0], [7, 4, 0, 0], [5, 0, 0, 0]])
    np.testing.assert_array_equal(batches[1][0], [[6, 4, 5, 7, 4, 0, 0, 0]])
    np.testing.assert_array_equal(batches[1][2], [[5, 4, EOS_ID, 0, 0, 0, 0, 0]])


def test_a_length_bucket_with_under_one_percent_of_the_pairs_joins_the_next_longer_one(write_text):
    """150 pairs of length 2, one of 6 (0.65% of the pairs, bucket 5-8) and three of 10
    (bucket 9-12): the pair of 6 is padded to 12 with the three, one batch shape fewer."""
    lines = ["w1 w1\tt0\n"] * 150 + ["w1 " * 5 + "w1\tt1\n"] + ["w1 " * 9 + "w1\tt2\n"] * 3
    path = write_text("".join(lines))
    sides = encodings(source_vocab=Vocabulary.build(Counter(["w1"])), target_vocab=Vocabulary.build(Counter(["t0", "t1", "t2"])))
    dataset = teacher_forcing_dataset(path, *sides, batch_size=8, bucket_width=4)
    batches = batches_as_numpy(dataset)
    assert len(batches) == int(dataset.cardinality()) == 19 + 1
    assert {source.shape[1] for source, _, _ in batches} == {4, 12}
    (long_sources,) = [source for source, _, _ in batches if source.shape[1] == 12]
    assert sorted((row != PAD_ID).sum() for row in long_sources) == [6, 10, 10, 10]
    assert sum(len(source) for source, _, _ in batches) == len(lines)


@pytest.mark.parametrize("bucket_width", [0, 4], ids=["unbucketed", "bucketed"])
def test_full_batches_fill_each_last_batch_with_pad_rows_and_keep_every_real_row(write_text, bucket_width):
    path = write_text("".join(f"{' '.join(['w1'] * (1 + i % 7))}\tt{i}\n" for i in range(23)))
    source_vocab = Vocabulary.build(Counter(["w1"]))
    target_vocab = Vocabulary.build(Counter(f"t{i}" for i in range(23)))
    sides = encodings(source_vocab=source_vocab, target_vocab=target_vocab)
    as_they_are, full = (
        batches_as_numpy(teacher_forcing_dataset(path, *sides, batch_size=4, bucket_width=bucket_width,
                                                 shuffle_seed=3, full_batches=fill))
        for fill in (False, True)
    )
    assert len(full) == len(as_they_are)
    assert any(len(source) < 4 for source, _, _ in as_they_are)
    for original, filled in zip(as_they_are, full, strict=True):
        rows = len(original[0])
        for tensor, filled_tensor in zip(original, filled, strict=True):
            assert filled_tensor.shape == (4, tensor.shape[1])
            np.testing.assert_array_equal(filled_tensor[:rows], tensor)
            assert (filled_tensor[rows:] == PAD_ID).all()


def test_tokens_missing_from_the_vocabulary_become_unk(write_text):
    path = write_text("I go somewhere\t나는 어디 간다\n")
    ((source, decoder_input, target),) = batches_as_numpy(
        teacher_forcing_dataset(path, *encodings(), batch_size=1, bucket_width=0)
    )
    np.testing.assert_array_equal(source, [[6, 4, UNK_ID]])
    np.testing.assert_array_equal(target, [[5, UNK_ID, 4, EOS_ID]])


# --- (b) malformed lines -----------------------------------------------------------------------
GOOD = "I go\t나는 간다\n"


@pytest.mark.parametrize(
    "bad_line, spec, problem",
    [
        (b"hello world", WORD, "no tab: expected 'source<TAB>target'"),
        (b"\t\xec\xa7\x91", WORD, "empty source field (column 1)"),
        (b"   \t\xec\xa7\x91", WORD, "empty source field (column 1)"),
        (b"home\t", WORD, "empty target field (column 2)"),
        (b"home\t  \tcomment", WORD, "empty target field (column 2)"),
        (b"caf\xe9\tx", WORD, "invalid UTF-8 at byte 3"),
        (b"x\tcaf\xc3", WORD, "invalid UTF-8"),
        ("\u200b\t집".encode(), WORD_LOWER, "source field (column 1) '\\u200b' has no tokens after normalization"),
        ("\u00a0\t집".encode(), WORD, "source field (column 1) '\\xa0' has no tokens after normalization"),
        ("home\t\u3000".encode(), WORD, "target field (column 2) '\\u3000' has no tokens after normalization"),
    ],
    ids=["no-tab", "empty-source", "space-source", "empty-target", "empty-target-extra-column",
         "bad-utf8", "truncated-utf8", "zwsp-lowercase", "nbsp-source", "ideographic-space-target"],
)
def test_malformed_line_is_a_data_error_naming_file_line_and_problem(write_bytes, bad_line, spec, problem):
    # Line 2 is blank: blank lines still count in the line numbers.
    path = write_bytes(GOOD.encode() + b"\n" + bad_line + b"\n" + GOOD.encode())
    with pytest.raises(DataError) as info:
        read_parallel_tsv(path, spec, spec)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert problem in message
    assert "skip_malformed" in message


def test_missing_data_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        read_parallel_tsv(tmp_path / "nope.tsv", WORD, WORD)


def test_blank_lines_are_skipped_and_counted_not_errors(write_text):
    path = write_text("a\tb\n\n   \n\t\n \t \nc\td\n\n")
    pairs, report = read_parallel_tsv(path, WORD, WORD)
    assert [(p.line, p.source, p.target) for p in pairs] == [(1, "a", "b"), (6, "c", "d")]
    assert (report.lines, report.blank, report.malformed, report.kept) == (7, 5, 0, 2)


def test_crlf_line_endings_and_a_utf8_bom_are_handled(write_bytes):
    path = write_bytes(b"\xef\xbb\xbfI go home\t\xeb\x82\x98\xeb\x8a\x94 \xea\xb0\x84\xeb\x8b\xa4\r\n\r\nhome\t\xec\xa7\x91\r\n")
    pairs, report = read_parallel_tsv(path, WORD, WORD)
    assert [(p.source_tokens, p.target_tokens) for p in pairs] == [
        (("I", "go", "home"), ("나는", "간다")),
        (("home",), ("집",)),
    ]
    assert (report.lines, report.blank, report.kept) == (3, 1, 2)
    # The tf.data pipeline agrees: no BOM glued to "I", no "\r" glued to the target.
    assert id_pairs(id_dataset(path, *encodings())) == [([6, 4, 5], [5, 4]), ([5], [8])]


def test_extra_columns_are_ignored(write_text):
    path = write_text("I go\t나는 간다\tCC-BY 2.0 (France) Attribution: tatoeba.org #2 (CK) & #3 (x)\n")
    pairs, report = read_parallel_tsv(path, WORD, WORD)
    assert (pairs[0].source, pairs[0].target, pairs[0].target_tokens) == ("I go", "나는 간다", ("나는", "간다"))
    assert report.kept == 1
    assert id_pairs(id_dataset(path, *encodings())) == [([6, 4], [5, 4])]


def test_fields_are_stripped_of_ascii_whitespace(write_text):
    pairs, _ = read_parallel_tsv(write_text("  I go \t 나는 간다  \n"), WORD, WORD)
    assert (pairs[0].source, pairs[0].target) == ("I go", "나는 간다")


# --- (c) skip_malformed: counted in the report; Python and tf.data keep the same lines ----------
MESSY_LINES = [
    b"I go home\t\xeb\x82\x98\xeb\x8a\x94 \xec\xa7\x91\xec\x97\x90 \xea\xb0\x84\xeb\x8b\xa4",  # 1 ok
    b"no tab here",  # 2 malformed
    b"",  # 3 blank
    b"\thome",  # 4 malformed: empty source
    b"you go\t",  # 5 malformed: empty target
    b"caf\xe9\tcoffee",  # 6 malformed: invalid UTF-8
    "\u200b\tzero".encode(),  # 7 malformed: no tokens after case folding
    "\u00a0\tnbsp".encode(),  # 8 malformed: NBSP only
    b"  \t  ",  # 9 blank
    b"you go\t\xeb\x84\x88\xeb\x8a\x94 \xea\xb0\x84\xeb\x8b\xa4\tattribution",  # 10 ok
    "\ufeffhome\t집".encode(),  # 11 ok: a stray BOM is dropped
    b"He Goes\tHE GOES\r",  # 12 ok (CR)
    b"bad utf8 target\t\xff\xfe",  # 13 malformed
    "a\u3000b\tc\u00a0d".encode(),  # 14 ok
    b"<s>\t</s>",  # 15 ok: literal reserved strings are just UNK
]
MESSY = b"\n".join(MESSY_LINES) + b"\n"
MESSY_MALFORMED_LINES = [2, 4, 5, 6, 7, 8, 13]


def test_skip_malformed_skips_and_counts_each_bad_line(write_bytes):
    path = write_bytes(MESSY)
    pairs, report = read_parallel_tsv(path, WORD_LOWER, WORD_LOWER, skip_malformed=True)
    assert [p.line for p in pairs] == [1, 10, 11, 12, 14, 15]
    assert (report.lines, report.blank, report.malformed, report.kept) == (15, 2, 7, 6)
    assert [int(re.match(rf"{re.escape(str(path))}:(\d+): ", e).group(1)) for e in report.malformed_examples] == (
        MESSY_MALFORMED_LINES
    )
    assert "no tab" in report.malformed_examples[0]
    assert "invalid UTF-8" in report.malformed_examples[3]
    assert "7 malformed" in report.summary() and "6 pairs kept of 15 lines" in report.summary()


def test_report_keeps_at_most_ten_malformed_examples_but_counts_all(write_text):
    path = write_text("no tab\n" * 12 + "a\tb\n")
    _, report = read_parallel_tsv(path, WORD, WORD, skip_malformed=True)
    assert (report.malformed, len(report.malformed_examples), report.kept) == (12, 10, 1)
    assert report.malformed_examples[-1].startswith(f"{path}:10: ")


def test_report_counts_kept_target_tokens_with_eos(write_text):
    _, report = read_parallel_tsv(write_text(THREE_LINES), WORD, WORD)
    assert report.target_tokens == (3 + 1) + (2 + 1) + (1 + 1)
    assert report.to_dict()["target_tokens"] == 9


def test_tf_data_pipeline_keeps_exactly_the_lines_the_python_reader_keeps(write_bytes):
    path = write_bytes(MESSY)
    pairs, report = read_parallel_tsv(path, WORD_LOWER, WORD_LOWER, skip_malformed=True)
    source_vocab, target_vocab = vocabularies_of(pairs)
    sides = encodings(spec=WORD_LOWER, source_vocab=source_vocab, target_vocab=target_vocab)
    in_graph = id_pairs(id_dataset(path, *sides))
    assert len(in_graph) == report.kept
    assert in_graph == [(source_vocab.encode(p.source_tokens), target_vocab.encode(p.target_tokens)) for p in pairs]
    batches = teacher_forcing_dataset(path, *sides, batch_size=4, bucket_width=0)
    assert sum(int(source.shape[0]) for (source, _), _ in batches) == report.kept


@pytest.mark.parametrize("level", ["char", "word"])
def test_python_and_tf_data_agree_on_a_file_of_hard_unicode_lines(write_text, level):
    spec = TextSpec(level, "NFKC", True)
    lines = ["나는 집에 간다\tcafe\u0301", "Straße\tİ", "ﬁ\tＡＢ", "\u00ad\tsoft", "x\t\u200b\u00ad",
             "\u3000 a \u3000\tb", "e\u0301\tNFD"]
    path = write_text("\n".join(lines) + "\n")
    pairs, report = read_parallel_tsv(path, spec, spec, skip_malformed=True)
    assert (report.kept, report.malformed) == (5, 2)
    source_vocab, target_vocab = vocabularies_of(pairs)
    in_graph = id_pairs(id_dataset(path, *encodings(spec=spec, source_vocab=source_vocab, target_vocab=target_vocab)))
    assert in_graph == [(source_vocab.encode(p.source_tokens), target_vocab.encode(p.target_tokens)) for p in pairs]
    assert UNK_ID not in [i for s, t in in_graph for i in s + t]



def test_a_parse_batch_without_any_tab_line_is_skipped_not_a_crash(write_text):
    path = write_text("a\tb\n" * 1024 + "\n")  # the 1025th line, alone in the 2nd parse batch, is blank
    _, report = read_parallel_tsv(path, WORD, WORD)
    assert (report.kept, report.blank) == (1024, 1)
    vocab = Vocabulary.build(Counter("ab"))
    sides = encodings(source_vocab=vocab, target_vocab=vocab)
    assert sum(1 for _ in id_dataset(path, *sides)) == report.kept

# --- (d) length policy -------------------------------------------------------------------------
LENGTHS = "a\tx\na b c\tx y\na b c d\tx\na\tx y z\na b c d e\tx y z w\n"  # (src, tgt) lengths: 1-1 3-2 4-1 1-3 5-4


def test_filter_policy_drops_and_counts_pairs_longer_than_the_maximum(write_text):
    path = write_text(LENGTHS)
    pairs, report = read_parallel_tsv(path, WORD, WORD, max_source_length=3, max_target_length=2)
    assert [p.line for p in pairs] == [1, 2]
    assert (report.too_long, report.truncated, report.kept) == (3, 0, 2)
    assert "3 too-long" in report.summary()


def test_truncate_policy_cuts_and_counts_pairs_longer_than_the_maximum(write_text):
    path = write_text(LENGTHS)
    pairs, report = read_parallel_tsv(
        path, WORD, WORD, max_source_length=3, max_target_length=2, length_policy="truncate"
    )
    assert [(len(p.source_tokens), len(p.target_tokens)) for p in pairs] == [(1, 1), (3, 2), (3, 1), (1, 2), (3, 2)]
    assert pairs[-1].source_tokens == ("a", "b", "c")
    assert (report.too_long, report.truncated, report.kept) == (0, 3, 5)
    assert report.target_tokens == sum(len(p.target_tokens) + 1 for p in pairs)


@pytest.mark.parametrize("policy", ["filter", "truncate"])
def test_tf_data_length_policy_agrees_with_the_python_reader(write_text, policy):
    path = write_text(LENGTHS)
    pairs, report = read_parallel_tsv(
        path, WORD, WORD, max_source_length=3, max_target_length=2, length_policy=policy
    )
    source_vocab = Vocabulary.build(Counter("abcde"))
    target_vocab = Vocabulary.build(Counter("xyzw"))
    sides = encodings(3, 2, source_vocab=source_vocab, target_vocab=target_vocab)
    in_graph = id_pairs(id_dataset(path, *sides, length_policy=policy))
    assert len(in_graph) == report.kept
    assert [(len(s), len(t)) for s, t in in_graph] == [(len(p.source_tokens), len(p.target_tokens)) for p in pairs]
    assert in_graph == [(source_vocab.encode(p.source_tokens), target_vocab.encode(p.target_tokens)) for p in pairs]
    batches = batches_as_numpy(
        teacher_forcing_dataset(path, *sides, batch_size=8, bucket_width=0, length_policy=policy)
    )
    (source, decoder_input, target), = batches
    assert source.shape[0] == report.kept
    assert source.shape[1] <= 3 and target.shape[1] <= 2 + 1


def test_truncated_target_still_ends_with_eos(write_text):
    path = write_text("a\tx y z w\n")
    sides = encodings(3, 2, source_vocab=Vocabulary.build(Counter("a")), target_vocab=Vocabulary.build(Counter("xyzw")))
    ((_, decoder_input, target),) = batches_as_numpy(
        teacher_forcing_dataset(path, *sides, batch_size=1, bucket_width=0, length_policy="truncate")
    )
    # Equal counts sort by token: w=4 x=5 y=6 z=7; "x y z w" is cut to "x y".
    np.testing.assert_array_equal(decoder_input, [[SOS_ID, 5, 6]])
    np.testing.assert_array_equal(target, [[5, 6, EOS_ID]])


def test_reverse_source_reverses_the_kept_source_ids_after_truncation(write_text):
    path = write_text("I go home\t나는 집에 간다\nyou go\t너는 간다\n")
    source, target = encodings(max_source=2)
    reversed_source = SideEncoding(source.spec, source.vocab, source.max_length, reverse=True)
    pairs = id_pairs(id_dataset(path, reversed_source, target, length_policy="truncate"))
    # "I go home" is cut to "I go" (6 4), then reversed; targets are untouched.
    assert pairs == [([4, 6], [5, 6, 4]), ([4, 7], [7, 4])]


def test_the_runtime_reverses_the_source_the_same_way():
    from keras_s2s.runtime.translator import TextCodec

    codec = TextCodec(WORD, SOURCE_VOCAB, reverse=True)
    np.testing.assert_array_equal(codec.to_ids([["I", "go", "home"], ["you"]]), [[5, 4, 6], [7, 0, 0]])


# --- (e) token counts ----------------------------------------------------------------------------
def test_count_dataset_tokens_counts_both_sides_of_the_kept_lines(write_bytes):
    path = write_bytes(("I go home\t나는 집에 간다\nyou go\t너는 간다\n\nno tab\nhome\t집\n").encode())
    source_counts, target_counts = count_dataset_tokens(path, WORD, WORD)
    assert source_counts == Counter({"go": 2, "home": 2, "I": 1, "you": 1})
    assert target_counts == Counter({"간다": 2, "나는": 1, "집에": 1, "너는": 1, "집": 1})


def test_count_dataset_tokens_at_char_level_counts_the_space_token(write_text):
    char = TextSpec("char", "NFKC", False)
    source_counts, target_counts = count_dataset_tokens(write_text("aa b\t집 집\n"), char, char)
    assert source_counts == Counter({"a": 2, "▁": 1, "b": 1})
    assert target_counts == Counter({"집": 2, "▁": 1})


def test_count_dataset_tokens_agrees_with_the_python_reader(write_bytes):
    path = write_bytes(MESSY)
    pairs, _ = read_parallel_tsv(path, WORD_LOWER, WORD_LOWER, skip_malformed=True)
    source_counts, target_counts = count_dataset_tokens(path, WORD_LOWER, WORD_LOWER)
    assert source_counts == count_tokens(p.source_tokens for p in pairs)
    assert target_counts == count_tokens(p.target_tokens for p in pairs)


# --- (f) built-in datasets ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cmudict_all():
    return cmudict_pairs()


def test_hash_split_is_deterministic():
    # sha1 mod 100, fixed forever: a change would move words between the splits of earlier runs.
    golden = {"hello": (81, "train"), "나는": (37, "train"), "w43": (89, "train"), "w1": (90, "validation"),
              "w5": (94, "validation"), "w90": (95, "test"), "naïve": (99, "test")}
    assert {w: (hash_bucket(w), split_of(w)) for w in golden} == golden


def test_split_of_follows_the_bucket_ranges():
    for word in ("hello", "world", "cat", "dog", "tree", "sky", "sea", "mountain", "apple"):
        bucket = hash_bucket(word)
        expected = "train" if bucket < 90 else "validation" if bucket < 95 else "test"
        assert split_of(word) == expected


def test_cmudict_pairs_are_lowercase_words_with_arpabet_phones(cmudict_all):
    pairs, skipped = cmudict_all
    assert len(pairs) > 100_000
    assert skipped > 0
    assert ("hello", "HH AH0 L OW1") in pairs
    assert all(re.fullmatch(r"[a-z']+", word) for word, _ in pairs)


def test_written_cmudict_split_files_share_no_word(tmp_path, cmudict_all):
    counts = write_cmudict_splits(tmp_path)
    words = {}
    for split in ("train", "validation", "test"):
        lines = (tmp_path / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == counts[split]["pronunciations"]
        words[split] = {line.split("\t")[0] for line in lines}
        assert len(words[split]) == counts[split]["words"]
    assert not (words["train"] & words["validation"])
    assert not (words["train"] & words["test"])
    assert not (words["validation"] & words["test"])
    # Every word of the dictionary is in one file, about 90 / 5 / 5.
    all_words = {word for word, _ in cmudict_all[0]}
    assert words["train"] | words["validation"] | words["test"] == all_words
    assert 0.85 < len(words["train"]) / len(all_words) < 0.95
    assert words["validation"] and words["test"]


def test_a_smaller_cmudict_validation_split_moves_words_to_train_and_leaves_test_alone(tmp_path):
    five, one = tmp_path / "five", tmp_path / "one"
    write_cmudict_splits(five)
    write_cmudict_splits(one, validation_percent=1)

    def words(directory, split):
        return {line.split("\t")[0] for line in (directory / f"{split}.tsv").read_text(encoding="utf-8").splitlines()}

    assert words(one, "test") == words(five, "test")
    assert words(one, "validation") == {w for w in words(five, "validation") if hash_bucket(w) == 94}
    assert words(one, "train") == words(five, "train") | (words(five, "validation") - words(one, "validation"))


def test_strip_stress_removes_the_stress_digits():
    pairs, _ = cmudict_pairs(strip_stress=True)
    pronunciations = dict(pairs)
    assert pronunciations["about"] == "AH B AW T"
    assert pronunciations["hello"] in ("HH AH L OW", "HH EH L OW")
    assert not any(re.search(r"\d", phones) for _, phones in pairs)


def test_toy_set_holds_the_reference_pair():
    pairs = toy_pairs()
    assert ("I go home", "나는 집에 간다") in pairs
    assert len(pairs) == 34
    _, report = read_parallel_tsv(TOY_TSV, WORD, WORD)
    assert (report.kept, report.malformed, report.blank) == (34, 0, 0)
