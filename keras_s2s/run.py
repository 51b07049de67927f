"""The run directory written by training, and what reads it back.

    RUN_DIR/
      config.json           the Seq2SeqConfig of the run (file paths made absolute)
      source_vocab.txt      one token per line, line i = id i-1 (PAD, UNK, SOS, EOS first)
      target_vocab.txt
      data/                 the split TSV files the run trained on (built-in datasets, holdout)
      data_report.json      per split: lines, blank, malformed (skipped), too long, kept
      checkpoints/best.weights.h5   weights of the epoch with the best validation loss
      history.csv           per-epoch loss / token_accuracy / val_* (keras CSVLogger)
      training_summary.json epochs, best epoch, wall time, target tokens per second
      model.keras           the final trainer (best weights), loadable with keras_s2s imported
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.errors import KerasS2SError
from keras_s2s.vocab import Vocabulary


class RunDir:
    """Paths of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.source_vocab = self.path / "source_vocab.txt"
        self.target_vocab = self.path / "target_vocab.txt"
        self.data_dir = self.path / "data"
        self.data_report = self.path / "data_report.json"
        self.checkpoint = self.path / "checkpoints" / "best.weights.h5"
        self.history = self.path / "history.csv"
        self.training_summary = self.path / "training_summary.json"
        self.model = self.path / "model.keras"

    @staticmethod
    def is_run_dir(path: str | Path) -> bool:
        return (Path(path) / "config.json").is_file() and (Path(path) / "model.keras").is_file()

    def require_finished(self) -> None:
        """Raises a clear error when this is not a directory written by a finished training run."""
        if not self.path.is_dir():
            raise KerasS2SError(f"run directory not found: {self.path}")
        for required in (self.config, self.source_vocab, self.target_vocab, self.model):
            if not required.is_file():
                raise KerasS2SError(
                    f"{self.path} is not a finished training run: missing {required.name} "
                    "(train with `keras-s2s train --config ... --out RUN_DIR`)"
                )

    def load_config(self) -> Seq2SeqConfig:
        return Seq2SeqConfig.from_json(self.config)

    def load_vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        return Vocabulary.load(self.source_vocab), Vocabulary.load(self.target_vocab)

    def write_json(self, path: Path, values: dict) -> None:
        path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

