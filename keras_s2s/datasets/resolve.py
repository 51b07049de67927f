"""Turns a config's data fields into checked train / validation / test TSV files.

- ``cmudict``: the CMUdict G2P splits are written into the run's data directory (validation:
  the ``validation_percent`` hash buckets below the fixed 5% test split).
- ``toy``: the packaged toy file serves as all three splits (it is meant to be memorised).
- ``tsv``: the user's files. Without a validation file, ``validation_percent`` of the
  training sources (by a salted sha1 hash, so all lines of one source stay together, and
  never none) are held out and both parts are written into the run's data directory.

Every file is read line by line and checked by ``keras_s2s.tsv.stream_parallel_tsv`` first,
so a bad line is reported against the user's own file and line number; nothing grows with the
file's length (the hold-out is decided line by line, see ``HoldoutRule``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Optional

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.datasets.cmudict_g2p import write_cmudict_splits
from keras_s2s.datasets.splits import hash_bucket
from keras_s2s.datasets.toy import TOY_TSV
from keras_s2s.errors import DataError
from keras_s2s.tsv import Pair, TsvReport, check_parallel_tsv, open_tsv_for_writing, stream_parallel_tsv, tsv_line

HOLDOUT_SALT = "keras-s2s-holdout:"
_HASH_RANGE = 1 << 32


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
        notes["cmudict"] = write_cmudict_splits(
            data_dir, strip_stress=config.strip_stress, validation_percent=config.validation_percent
        )
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
        pairs, reports["train_file"] = stream_parallel_tsv(
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
    """The line report of ``path`` under ``config``'s rules, read line by line."""
    return check_parallel_tsv(
        path,
        config.source_spec(),
        config.target_spec(),
        max_source_length=config.max_source_length,
        max_target_length=config.max_target_length,
        length_policy=config.length_policy,
        skip_malformed=config.skip_malformed,
    )


def _write_holdout(pairs: Iterable[Pair], validation_percent: int, data_dir: Path, origin: Path) -> tuple[Path, Path]:
    """Streams ``pairs`` into ``data_dir``/train.tsv and validation.tsv by ``HoldoutRule``,
    in file order; holds only the rule's few sources in memory."""
    rule = HoldoutRule(validation_percent)
    data_dir.mkdir(parents=True, exist_ok=True)
    train, validation = data_dir / "train.tsv", data_dir / "validation.tsv"
    with open_tsv_for_writing(train) as train_out, open_tsv_for_writing(validation) as validation_out:
        for pair in pairs:
            (validation_out if rule.holds_out(pair.source) else train_out).write(tsv_line(pair.source, pair.target))
    fallback = rule.fallback(origin)
    if fallback is not None:
        _move_source(fallback, train, validation)
    return train, validation


def _move_source(source: str, train: Path, validation: Path) -> None:
    """Moves the lines of ``source`` from the written ``train`` part to the end of
    ``validation`` (empty before), keeping the order of both."""
    key = source.encode("utf-8") + b"\t"
    rest = train.with_name(train.name + ".rest")
    with open(train, "rb") as lines, open(rest, "wb") as train_out, open(validation, "ab") as validation_out:
        for line in lines:
            (validation_out if line.startswith(key) else train_out).write(line)
    rest.replace(train)


def holdout_sources(sources: Iterable[str], validation_percent: int, *, origin: Path | str = "training file") -> set[str]:
    """The sources of ``sources`` that ``HoldoutRule`` holds out for validation."""
    rule = HoldoutRule(validation_percent)
    held_out = {source for source in sources if rule.holds_out(source)}
    fallback = rule.fallback(origin)
    return held_out if fallback is None else {fallback}


class HoldoutRule:
    """Which sources are held out for validation, decided line by line.

    A source is held out when its salted hash falls in the top ``validation_percent`` of
    the hash range, so all lines of a source stay together and no set of sources is kept.
    The salt keeps the hold-out independent of the built-in splits (which use the unsalted
    hash): a ``train.tsv`` written by the CMUdict dataset holds only buckets below 90, and an
    unsalted rule would hold out nothing. A file with few sources may by chance have none
    in range; then the one with the highest salted hash is held out (``fallback``), so the
    hold-out is never empty. One distinct source cannot be split: ``fallback`` raises.
    """

    def __init__(self, validation_percent: int) -> None:
        self.threshold = _HASH_RANGE * (100 - validation_percent) // 100
        self.held_out_any = False
        self.highest: Optional[tuple[int, str]] = None  # (salted hash, source)
        self.first_sources: list[str] = []  # the first two distinct sources seen

    def holds_out(self, source: str) -> bool:
        """Whether ``source`` goes to validation; remembers what ``fallback`` needs."""
        value = hash_bucket(HOLDOUT_SALT + source, buckets=_HASH_RANGE)
        # Equal hashes: the smallest source, as max() over the sorted sources chose before.
        if self.highest is None or (-value, source) < (-self.highest[0], self.highest[1]):
            self.highest = (value, source)
        if len(self.first_sources) < 2 and source not in self.first_sources:
            self.first_sources.append(source)
        held_out = value >= self.threshold
        self.held_out_any |= held_out
        return held_out

    def fallback(self, origin: Path | str) -> Optional[str]:
        """After the last source: the source to hold out when none was, else None.

        Raises DataError when fewer than two distinct sources were seen.
        """
        if len(self.first_sources) < 2:
            raise DataError(
                f"{origin}: cannot hold out validation sources from {len(self.first_sources)} distinct source(s); "
                "set validation_file (or --validation-file) to a separate file"
            )
        return None if self.held_out_any else self.highest[1]
