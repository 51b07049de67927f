"""The run directory written by training (``RunDir``), and loading its trained model back.

    RUN_DIR/
      config.json           the Seq2SeqConfig of the run (file paths made absolute)
      source_vocab.txt      one token per line, line i = id i-1 (PAD, UNK, SOS, EOS first)
      target_vocab.txt
      data/                 the split TSV files the run trained on (built-in datasets, holdout)
      data_report.json      per split: lines, blank, malformed (skipped), too long, kept
      checkpoints/best.weights.h5   weights of the epoch with the best validation loss
      checkpoints/epoch-NNNN.npz    with average_last_epochs: the last epochs' weights (keras_s2s.averaging)
      history.csv           per-epoch loss / token_accuracy / val_* (keras CSVLogger)
      learning_curves.png   loss and token accuracy per epoch, training and validation
      tensorboard/          TensorBoard event files (tensorboard --logdir RUN_DIR/tensorboard)
      training_summary.json epochs, best epoch, wall time, target tokens per second
      model.keras           the final trainer (best weights, or the average); load_trained_model reads it back
      run_state.json        the requested config, data file digests and the stage (training,
                            fit_done, finished): what `train --resume` checks and continues
      backup/               the run after its last completed epoch (while training; see keras_s2s.resume)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.errors import KerasS2SError
from keras_s2s.signatures import Signatures
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
        self.learning_curves = self.path / "learning_curves.png"
        self.tensorboard_dir = self.path / "tensorboard"
        self.training_summary = self.path / "training_summary.json"
        self.model = self.path / "model.keras"
        self.run_state = self.path / "run_state.json"
        self.backup_dir = self.path / "backup"

    @staticmethod
    def is_run_dir(path: str | Path) -> bool:
        """True when ``path`` holds a run's config.json and model.keras."""
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


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """What a finished run holds: its config, vocabularies, and the trained encoder and decoder."""

    config: Seq2SeqConfig
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    encoder: object
    decoder: object
    signatures: Signatures


def load_trained_model(run_dir: str | Path) -> TrainedModel:
    """Config, vocabularies and the encoder/decoder of the final model of a finished run (Keras)."""
    import keras

    import keras_s2s.losses  # noqa: F401  (registers the loss and metric for loading)
    from keras_s2s import keras_saving_shim
    from keras_s2s.models import split_trainer
    from keras_s2s.signatures import signatures_from_models

    run = RunDir(run_dir)
    run.require_finished()
    source_vocab, target_vocab = run.load_vocabularies()
    keras_saving_shim.apply()  # loading walks the model as saving does
    model = split_trainer(keras.models.load_model(run.model, compile=False))
    return TrainedModel(
        run.load_config(), source_vocab, target_vocab, model.encoder, model.decoder,
        signatures_from_models(model.encoder, model.decoder),
    )
