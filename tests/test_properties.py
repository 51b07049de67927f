"""Property-based tests (hypothesis): invariants that must hold for ANY input, not just the
examples we thought of. Each property runs ~100-200 generated examples, without a model.

1. Text: ``TextSpec.tokenize`` -> ``Vocabulary.encode`` -> ``Vocabulary.decode`` ->
   ``TextSpec.detokenize`` on arbitrary Unicode, for every tokenizer level, normalization and
   case folding.
2. The TSV gatekeeper ``read_parallel_tsv`` on arbitrary bytes: a report whose counts add up,
   or a ``DataError``, never another exception.
3. The config loader ``Seq2SeqConfig.from_dict`` with any JSON value in any field: a config, or
   a ``ConfigError``, never another exception.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.constants import RESERVED_TOKENS, SPACE_TOKEN, UNK_TOKEN
from keras_s2s.errors import ConfigError, DataError
from keras_s2s.tokenization import TextSpec, split_whitespace
from keras_s2s.tsv import read_parallel_tsv
from keras_s2s.vocab import Vocabulary, count_tokens

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

specs = st.builds(
    TextSpec,
    level=st.sampled_from(["char", "word"]),
    normalization=st.sampled_from(["none", "NFC", "NFD", "NFKC", "NFKD"]),
    lowercase=st.booleans(),
)
# Arbitrary Unicode (surrogates excluded: not encodable as UTF-8), with the characters that
# matter here drawn more often: Unicode and ASCII spaces, the space token, reserved-token text,
# combining marks, Hangul, case-folding and compatibility characters.
SPECIAL = [
    " ", "\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\xa0", "\u2003", "\u3000", "\u2028", SPACE_TOKEN,
    *RESERVED_TOKENS, "\u0301", "e\u0301", "\u00e9", "\ud55c", "\u1100\u1161", "\u00df", "\u0130", "\u212b",
    "\ufb01", "\u2460", "\u00ad", "\u200b", "\ufeff", "\u0345", "\U0001f600",
]
texts = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=8), st.sampled_from(SPECIAL)), max_size=12
).map("".join)


def collapse_whitespace(spec: TextSpec, text: str) -> str:
    """The normalized text with every whitespace run made one space, none at either end; at
    char level a literal SPACE_TOKEN (U+2581) in the text reads as a space too."""
    words = split_whitespace(spec.normalize(text))
    joined = " ".join(words)
    return joined.replace(SPACE_TOKEN, " ") if spec.level == "char" else joined


# --- 1. text -> tokens -> ids -> tokens -> text ---------------------------------------------------
@PROPERTY
@given(spec=specs, text=texts)
@example(spec=TextSpec("word"), text="<s> go </s>")
@example(spec=TextSpec("char"), text="\u2581a  b\u2581")
def test_text_round_trips_through_tokens_ids_and_back(spec, text):
    """For any text, with a vocabulary built from its own tokens:

    - tokens are non-empty and hold no whitespace (so a vocabulary file can store them);
    - ``decode(encode(tokens)) == tokens``, except that a token spelled like a reserved token
      (``<s>``, ``</s>``, ``<pad>``, ``<unk>``) is read as UNK: text can never inject a special id;
    - ``detokenize(tokenize(text))`` is the normalized text with whitespace runs collapsed to one
      space and stripped (char level: a literal U+2581 also becomes a space);
    - tokenizing that again gives the same tokens, unless a literal U+2581 sits at an end of the
      text or next to whitespace (char level), where it was read as a space and is then dropped
      or merged like one: the one ambiguity of the ``▁`` space token.
    """
    tokens = spec.tokenize(text)
    assert all(split_whitespace(token) == [token] for token in tokens)  # non-empty, no whitespace
    vocab = Vocabulary.build(count_tokens([tokens]))
    assert vocab.decode(vocab.encode(tokens)) == [UNK_TOKEN if t in RESERVED_TOKENS else t for t in tokens]

    detokenized = spec.detokenize(tokens)
    assert detokenized == collapse_whitespace(spec, text)
    if spec.level == "word" or SPACE_TOKEN not in spec.normalize(text):
        assert spec.tokenize(detokenized) == tokens


@PROPERTY
@given(spec=specs, text=texts)
def test_a_vocabulary_file_round_trips_any_tokens(scratch, spec, text):
    """``Vocabulary.save`` then ``Vocabulary.load`` gives the same vocabulary for any tokens."""
    vocab = Vocabulary.build(count_tokens([spec.tokenize(text)]))
    path = scratch / "vocab.txt"
    vocab.save(path)
    assert Vocabulary.load(path) == vocab


# --- 2. the TSV gatekeeper on any bytes -----------------------------------------------------------
TSV_PIECES = [b"\t", b"\n", b"\r\n", b"\r", b" ", b"\xef\xbb\xbf", b"a", b"go", b"\xff", b"\xc3", "\u00e9".encode(),
              "\ud55c".encode(), b"\x00", b"\x1c", "\u3000".encode(), "\u2581".encode(), b"<s>"]
tsv_bytes = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(st.sampled_from(TSV_PIECES), st.binary(max_size=3)), max_size=40).map(b"".join),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A directory for the files the properties write (hypothesis reuses one test's fixtures
    for all its examples, so the files are overwritten each time)."""
    return tmp_path_factory.mktemp("properties")


@PROPERTY
@given(
    content=tsv_bytes,
    source_spec=specs,
    target_spec=specs,
    max_length=st.one_of(st.none(), st.integers(1, 4)),
    policy=st.sampled_from(["filter", "truncate"]),
)
def test_the_tsv_reader_accounts_for_every_line_of_any_bytes(scratch, content, source_spec, target_spec, max_length, policy):
    """On any file content, with ``skip_malformed=True`` the reader returns pairs and a report
    whose counts add up (``lines == blank + malformed + too_long + kept``; ``truncated`` pairs are
    among the kept ones and no kept pair is over the limit); with ``skip_malformed=False`` it gives
    the same result when nothing is malformed, and raises ``DataError`` (only) otherwise."""
    tsv_file = scratch / "data.tsv"
    tsv_file.write_bytes(content)
    options = dict(max_source_length=max_length, max_target_length=max_length, length_policy=policy)
    pairs, report = read_parallel_tsv(tsv_file, source_spec, target_spec, skip_malformed=True, **options)

    expected_lines = content.split(b"\n")
    assert report.lines == len(expected_lines) - (expected_lines[-1] == b"")
    assert report.lines == report.blank + report.malformed + report.too_long + report.kept
    assert report.kept == len(pairs) and report.truncated <= report.kept
    assert len(report.malformed_examples) == min(report.malformed, 10)
    assert [p.line for p in pairs] == sorted({p.line for p in pairs})
    for pair in pairs:
        assert pair.source_tokens and pair.target_tokens
        if max_length is not None:
            assert len(pair.source_tokens) <= max_length and len(pair.target_tokens) <= max_length
    if policy == "filter":
        assert report.truncated == 0
    else:
        assert report.too_long == 0
    assert report.target_tokens == sum(len(p.target_tokens) + 1 for p in pairs)

    try:
        strict = read_parallel_tsv(tsv_file, source_spec, target_spec, skip_malformed=False, **options)
    except DataError as err:
        assert report.malformed > 0
        assert str(err).startswith(f"{tsv_file}:")
    else:
        assert report.malformed == 0
        assert strict == (pairs, report)


# --- 3. the config loader with any JSON value ---------------------------------------------------
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(10**400), max_value=10**400),  # json.loads reads any integer literal
        st.floats(),  # json.loads reads NaN, Infinity and -Infinity
        st.text(max_size=10),
        st.sampled_from(["lstm", "luong", "tsv", "toy", "char", "NFKC", "truncate", ""]),
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=8,
)
FIELDS = [field.name for field in dataclasses.fields(Seq2SeqConfig)]
BASE = {"dataset": "toy"}


@PROPERTY
@given(field=st.sampled_from(FIELDS), value=json_values)
@example(field="epochs", value=10**400)
@example(field="dropout", value=-(10**400))
@example(field="learning_rate", value=math.nan)
def test_the_config_loader_accepts_or_raises_config_error_for_any_json_value(field, value):
    """Any JSON value in any one field gives a valid config (which survives a JSON round trip)
    or a ``ConfigError`` naming that field; never another exception (a crash, not a message)."""
    try:
        config = Seq2SeqConfig.from_dict({**BASE, field: value})
    except ConfigError as err:
        assert f"'{field}'" in str(err) or field == "dataset"
        return
    assert getattr(config, field) == value
    text = json.dumps(config.to_dict())
    assert Seq2SeqConfig.from_dict(json.loads(text)) == config


config_files = st.one_of(
    st.binary(max_size=100),
    st.builds(lambda field, value: json.dumps({**BASE, field: value}).encode(), st.sampled_from(FIELDS), json_values),
)


@PROPERTY
@given(content=config_files)
@example(content=b'{"dataset": "toy", "epochs": 1' + b"0" * 5000 + b"}")  # beyond Python's int-from-text limit
@example(content=b"[" * 100_000 + b"]" * 100_000)  # deeper than the JSON decoder's recursion
def test_a_config_file_of_any_bytes_loads_or_raises_config_error(scratch, content):
    """``Seq2SeqConfig.from_json`` on any file content: a config or a ``ConfigError`` naming the file."""
    path = scratch / "config.json"
    path.write_bytes(content)
    try:
        Seq2SeqConfig.from_json(path)
    except ConfigError as err:
        assert str(path) in str(err)
