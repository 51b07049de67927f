"""Resuming a training run after a crash or a kill: the run's state and its per-epoch backup.

    RUN_DIR/run_state.json   what was asked for and how far the run got:
        {"format": 1, "stage": "training" | "fit_done" | "finished",
         "config": the config as requested (before data files were resolved),
         "data_files": {"<split>": {"path": ..., "sha256": ...}}}
    RUN_DIR/backup/          the state after the last completed epoch:
        trainer.weights.h5   the trainer's weights and optimizer state (step count, moments, learning rate)
        best.weights.h5      checkpoints/best.weights.h5 as it was then (absent before a finite val_loss)
        history.csv          history.csv as it was then (one row per completed epoch)
        state.json           completed epochs, callback counters; written last, it marks the backup whole

Why not ``keras.callbacks.BackupAndRestore`` alone: it writes its weights file and its epoch
file in place, one after the other, so a kill between (or during) the two writes leaves weights
of one epoch labelled with another, or a half-written weights file; and the best checkpoint,
the history and the callbacks' counters (early stopping, learning-rate plateaus) are not part
of its state, so a resumed run would duplicate history rows or forget its best epoch. Here a
whole new backup directory is written, then swapped in by renames; whichever complete backup
is newest wins after a kill at any point, and the run directory is rolled back to exactly it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

import keras

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.errors import KerasS2SError
from keras_s2s.runtime.artifact import sha256_of

STAGES = ("training", "fit_done", "finished")
"""``training``: model.fit has not ended; ``fit_done``: the final model is being saved;
``finished``: the run is complete."""

_FORMAT = 1
_CALLBACK_COUNTERS = ("best", "wait", "cooldown_counter", "stopped_by_budget", "cut_epoch_fraction", "trained_seconds")
"""Attributes that Keras' ModelCheckpoint, EarlyStopping, ReduceLROnPlateau and our
ThroughputLogger reset or keep per fit() call; restored so that patience, "best so far" and
the training time spent (the wall-clock budget's) continue across a resume."""


class ResumeError(KerasS2SError):
    """A run cannot be resumed as asked (changed config or data, nothing to resume)."""


@dataclasses.dataclass
class RunState:
    """Contents of ``run_state.json``."""

    stage: str
    config: dict[str, Any]
    data_files: dict[str, dict[str, str]]

    @classmethod
    def start(cls, requested: Seq2SeqConfig, data_files: dict[str, Path]) -> "RunState":
        """The state of a new run of ``requested`` reading ``data_files`` (split -> path)."""
        return cls("training", requested.to_dict(), file_digests(data_files))

    @classmethod
    def load(cls, path: Path) -> "RunState":
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ResumeError(
                f"cannot resume {path.parent}: it has no {path.name} (the run stopped before training "
                "started, or an older keras-s2s wrote it); pass --overwrite to train it again"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ResumeError(f"{path}: unreadable run state ({err}); pass --overwrite to train again") from None
        if not isinstance(values, dict) or values.get("format") != _FORMAT or values.get("stage") not in STAGES:
            raise ResumeError(f"{path}: not a keras-s2s run state of format {_FORMAT}; pass --overwrite to train again")
        return cls(values["stage"], values["config"], values["data_files"])

    def save(self, path: Path) -> None:
        values = {"format": _FORMAT, **dataclasses.asdict(self)}
        _write_atomically(path, json.dumps(values, indent=2, ensure_ascii=False) + "\n")

    def check_same_request(self, requested: Seq2SeqConfig, data_files: dict[str, Path], run_path: Path) -> None:
        """Raises ResumeError naming every config field and data file that differs from the run's."""
        now = requested.to_dict()
        differences = [
            f"config field '{name}' is {now.get(name)!r} now but {self.config.get(name)!r} in the run"
            for name in sorted(set(now) | set(self.config))
            if now.get(name) != self.config.get(name)
        ]
        digests = file_digests(data_files)
        for split in sorted(set(digests) | set(self.data_files)):
            before, after = self.data_files.get(split), digests.get(split)
            if before is None or after is None:
                differences.append(f"{split} file is {'absent' if after is None else after['path']} now but "
                                   f"{'absent' if before is None else before['path']} in the run")
            elif before["sha256"] != after["sha256"]:
                differences.append(f"{split} file {after['path']} changed since the run started "
                                   f"(sha256 {after['sha256'][:12]}... now, {before['sha256'][:12]}... then)")
        if differences:
            raise ResumeError(
                f"cannot resume {run_path}: " + "; ".join(differences)
                + ". Resume with the same config and data, or pass --overwrite to start again"
            )


def file_digests(files: dict[str, Path]) -> dict[str, dict[str, str]]:
    """split -> {"path": absolute path, "sha256": hex digest} of every file given."""
    return {split: {"path": str(Path(path).resolve()), "sha256": sha256_of(Path(path))} for split, path in files.items()}


@dataclasses.dataclass(frozen=True)
class Backup:
    """One complete backup directory: ``epochs_completed`` and where its files are."""

    path: Path
    epochs_completed: int
    stop_training: bool
    counters: dict[str, dict[str, Any]]

    @property
    def trainer_weights(self) -> Path:
        return self.path / "trainer.weights.h5"

    @property
    def best_weights(self) -> Path:
        return self.path / "best.weights.h5"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"


class EpochBackup(keras.callbacks.Callback):
    """Writes a backup of the run after every epoch; put it LAST in the callback list, so
    that it sees what the other callbacks wrote and decided for that epoch.

    ``named_callbacks``: callbacks whose counters (best so far, patience waited, cooldown,
    the time budget's stop) are backed up and restored, by a stable name each.
    ``restore``: a backup to continue from; its counters are set after the other callbacks'
    ``on_train_begin`` (which resets them) has run.
    """

    def __init__(
        self,
        backup_dir: Path,
        *,
        checkpoint_path: Path,
        history_path: Path,
        named_callbacks: dict[str, keras.callbacks.Callback],
        restore: Optional[Backup] = None,
    ) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        self.checkpoint_path = Path(checkpoint_path)
        self.history_path = Path(history_path)
        self.named_callbacks = named_callbacks
        self.restore = restore

    def on_train_begin(self, logs=None):
        if self.restore is not None:
            for name, counters in self.restore.counters.items():
                callback = self.named_callbacks.get(name)
                for attribute, value in counters.items():
                    if callback is not None and hasattr(callback, attribute):
                        setattr(callback, attribute, _from_json(value))

    def on_epoch_end(self, epoch, logs=None):
        counters = {
            name: {a: _jsonable(getattr(callback, a)) for a in _CALLBACK_COUNTERS if hasattr(callback, a)}
            for name, callback in self.named_callbacks.items()
        }
        write_backup(
            self.backup_dir,
            trainer=self.model,
            checkpoint=self.checkpoint_path,
            history=self.history_path,
            epochs_completed=epoch + 1,
            stop_training=bool(self.model.stop_training),
            counters=counters,
        )


def write_backup(
    backup_dir: Path,
    *,
    trainer: keras.Model,
    checkpoint: Path,
    history: Path,
    epochs_completed: int,
    stop_training: bool,
    counters: dict[str, dict[str, Any]],
) -> None:
    """Writes a new backup beside ``backup_dir`` and swaps it in (see the module docstring)."""
    incoming, previous = _incoming(backup_dir), _previous(backup_dir)
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    trainer.save_weights(incoming / "trainer.weights.h5")
    if checkpoint.is_file():
        shutil.copyfile(checkpoint, incoming / "best.weights.h5")
    if history.is_file():
        shutil.copyfile(history, incoming / "history.csv")
    state = {"epochs_completed": epochs_completed, "stop_training": stop_training, "counters": counters}
    (incoming / "state.json").write_text(json.dumps(state), encoding="utf-8")
    _fsync_directory(incoming)
    shutil.rmtree(previous, ignore_errors=True)
    if backup_dir.exists():
        os.rename(backup_dir, previous)
    os.rename(incoming, backup_dir)
    shutil.rmtree(previous, ignore_errors=True)


def latest_backup(backup_dir: Path) -> Optional[Backup]:
    """The newest complete backup among ``backup_dir`` and the two directories of an
    interrupted swap, or None when there is none (the run was killed in its first epoch)."""
    found = [b for b in map(_read_backup, (backup_dir, _incoming(backup_dir), _previous(backup_dir))) if b]
    return max(found, key=lambda b: b.epochs_completed, default=None)


def roll_back_to(backup: Optional[Backup], *, checkpoint: Path, history: Path) -> None:
    """Makes the run's best checkpoint and history exactly those of ``backup`` (None: of a
    run that completed no epoch), dropping whatever a killed epoch wrote after it."""
    for source, target in ((backup and backup.best_weights, checkpoint), (backup and backup.history, history)):
        if source is not None and source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        else:
            target.unlink(missing_ok=True)


def remove_backups(backup_dir: Path) -> None:
    for path in (backup_dir, _incoming(backup_dir), _previous(backup_dir)):
        shutil.rmtree(path, ignore_errors=True)


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a CSVLogger history file as floats (``nan`` where Keras wrote NA or nan)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: _float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """``model.save(path)`` through a temporary file, so a kill leaves the old file or the new one."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    model.save(partial)
    os.replace(partial, path)


def _read_backup(path: Path) -> Optional[Backup]:
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not (path / "trainer.weights.h5").is_file():
        return None
    return Backup(path, int(state["epochs_completed"]), bool(state["stop_training"]), state["counters"])


def _incoming(backup_dir: Path) -> Path:
    return backup_dir.with_name(backup_dir.name + ".incoming")


def _previous(backup_dir: Path) -> Path:
    return backup_dir.with_name(backup_dir.name + ".previous")


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def _fsync_directory(path: Path) -> None:
    """Flushes the files of ``path`` to disk before it is renamed into place (a power loss,
    unlike a kill, could otherwise leave a renamed directory of empty files)."""
    for child in path.iterdir():
        with open(child, "rb") as handle:
            os.fsync(handle.fileno())


def _jsonable(value: Any) -> Any:
    """Counters are Python or NumPy scalars (or None); JSON keeps them as numbers."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _from_json(value: Any) -> Any:
    """Inverse of ``_jsonable``: "inf", "-inf" and "nan" become floats again."""
    return float(value) if value in ("inf", "-inf", "nan") else value


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def requested_files(config: Seq2SeqConfig) -> dict[str, Path]:
    """The data files a config names (dataset ``tsv``): the user's files a resume must find unchanged."""
    names = {"train_file": config.train_file, "validation_file": config.validation_file, "test_file": config.test_file}
    return {split: Path(path) for split, path in names.items() if path}

