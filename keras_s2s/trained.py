"""Loading the trained encoder and decoder of a run directory (Keras)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.run import RunDir
from keras_s2s.signatures import Signatures, signatures_for
from keras_s2s.vocab import Vocabulary


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    config: Seq2SeqConfig
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    encoder: object
    decoder: object
    signatures: Signatures


def load_trained_model(run_dir: str | Path) -> TrainedModel:
    """Config, vocabularies and the encoder/decoder of the final model of a finished run."""
    import keras

    import keras_s2s.training  # noqa: F401  (registers the loss and metric for loading)
    from keras_s2s.models import split_trainer

    run = RunDir(run_dir)
    run.require_finished()
    config = run.load_config()
    source_vocab, target_vocab = run.load_vocabularies()
    model = split_trainer(keras.models.load_model(run.model, compile=False))
    return TrainedModel(
        config, source_vocab, target_vocab, model.encoder, model.decoder,
        signatures_for(config, len(source_vocab), len(target_vocab)),
    )
