"""Turns a config's data fields into checked train / validation / test TSV files.

- ``cmudict``: the CMUdict G2P splits are written into the run's data directory.
- ``toy``: the packaged toy file serves as all three splits (it is meant to be memorised).
- ``tsv``: the user's files. Without a validation file, ``validation_percent`` of the
  training sources (by a salted sha1 hash, so all lines of one source stay together, and
  never none) are held out and both parts are written into the run's data directory.

Every file is read and checked by ``keras_s2s.tsv.read_parallel_tsv`` first, so a bad line
is reported against the user's own file and line number.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.datasets.cmudict_g2p import write_cmudict_splits
from keras_s2s.datasets.splits import hash_bucket
from keras_s2s.datasets.toy import TOY_TSV
from keras_s2s.errors import DataError
from keras_s2s.tsv import Pair, TsvReport, read_parallel_tsv, write_tsv

HOLDOUT_SALT = "keras-s2s-holdout:"


@dataclasses.dataclass
class DatasetFiles:
    train: Path
    validation: Path
    test: Optional[Path]
    reports: dict[str, TsvReport]
    notes: dict = dataclasses.field(default_factory=dict)


def dataset_files(config: Seq2SeqConfig, data_dir: str | Path) -> DatasetFiles:
    """The split files of ``config``, checked; raises DataError on a malformed line."""
    data_dir = Path(data_dir)
    notes: dict = {}
    if config.dataset == "cmudict":
        notes["cmudict"] = write_cmudict_splits(data_dir, strip_stress=config.strip_stress)
        train, validation, test = (data_dir / f"{s}.tsv" for s in ("train", "validation", "test"))
    elif config.dataset == "toy":
        train = validation = test = TOY_TSV
    else:
        train = Path(config.train_file)
        validation = Path(config.validation_file) if config.validation_file else None
        test = Path(config.test_file) if config.test_file else None

    reports = {}
    if validation is None:
        # Only the well-formed lines are copied into the two parts; the user's own file and
        # line numbers appear in any error, and its report is kept as "train_file".
        pairs, reports["train_file"] = read_parallel_tsv(
            train, config.source_spec(), config.target_spec(), skip_malformed=config.skip_malformed
        )
        train, validation = _write_holdout(pairs, config.validation_percent, data_dir, train)
        notes["holdout"] = (
            f"validation = {config.validation_percent}% of the training sources, by a salted sha1 hash "
            "(at least one source)"
        )
    for split, path in (("train", train), ("validation", validation), ("test", test)):
        if path is not None:
            reports[split] = check_file(config, path)
            if split != "test" and reports[split].kept == 0:
                raise DataError(f"{path}: no usable {split} pairs ({reports[split].summary()})")
    return DatasetFiles(train, validation, test, reports, notes)


def check_file(config: Seq2SeqConfig, path: Path) -> TsvReport:
    _, report = read_parallel_tsv(
        path,
        config.source_spec(),
        config.target_spec(),
        max_source_length=config.max_source_length,
        max_target_length=config.max_target_length,
        length_policy=config.length_policy,
        skip_malformed=config.skip_malformed,
    )
    return report


def _write_holdout(pairs: list[Pair], validation_percent: int, data_dir: Path, origin: Path) -> tuple[Path, Path]:
    held_out = holdout_sources([pair.source for pair in pairs], validation_percent, origin=origin)
    train_rows, validation_rows = [], []
    for pair in pairs:
        (validation_rows if pair.source in held_out else train_rows).append((pair.source, pair.target))
    data_dir.mkdir(parents=True, exist_ok=True)
    train, validation = data_dir / "train.tsv", data_dir / "validation.tsv"
    write_tsv(train, train_rows)
    write_tsv(validation, validation_rows)
    return train, validation


def holdout_sources(sources: list[str], validation_percent: int, *, origin: Path | str = "training file") -> set[str]:
    """The sources held out for validation: those whose salted hash bucket is in the top
    ``validation_percent`` of 100, so all lines of a source stay together.

    The salt keeps the hold-out independent of the built-in splits (which use the unsalted
    hash): a ``train.tsv`` written by the CMUdict dataset holds only buckets below 90, and an
    unsalted rule would hold out nothing. A file with few sources may by chance have none
    in range; then the one with the highest salted hash is held out, so the hold-out is never
    empty. One distinct source cannot be split: a DataError says what to do.
    """
    distinct = sorted(set(sources))
    if len(distinct) < 2:
        raise DataError(
            f"{origin}: cannot hold out validation sources from {len(distinct)} distinct source(s); "
            "set validation_file (or --validation-file) to a separate file"
        )
    salted = {source: hash_bucket(HOLDOUT_SALT + source, buckets=1 << 32) for source in distinct}
    threshold = (1 << 32) * (100 - validation_percent) // 100
    held_out = {source for source, value in salted.items() if value >= threshold}
    return held_out or {max(distinct, key=salted.__getitem__)}
