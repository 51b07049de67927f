"""Runs the Keras encoder and decoder models (from a run directory) as a translator backend."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from keras_s2s.run import RunDir
from keras_s2s.runtime.interface import GraphSignature
from keras_s2s.runtime.translator import TextCodec, Translator
from keras_s2s.signatures import seq2seq_signatures


class KerasBackend:
    """Wraps each model in a ``tf.function`` with a dynamic-shape signature (traced once)."""

    def __init__(self, encoder, decoder, encoder_signature: GraphSignature, decoder_signature: GraphSignature) -> None:
        import tensorflow as tf

        def specs(signature: GraphSignature) -> dict:
            return {t.name: tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in signature.inputs}

        self._encoder = tf.function(lambda feeds: encoder(feeds, training=False), input_signature=[specs(encoder_signature)])
        self._decoder = tf.function(lambda feeds: decoder(feeds, training=False), input_signature=[specs(decoder_signature)])

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self._encoder(dict(feeds)).items()}

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self._decoder(dict(feeds)).items()}


def load_keras_translator(run_dir: str | Path) -> Translator:
    """A translator over the final model of a training run."""
    import keras

    import keras_s2s.training  # noqa: F401  (registers the loss and metric for loading)
    from keras_s2s.models import split_trainer

    run = RunDir(run_dir)
    run.require_finished()
    config = run.load_config()
    source_vocab, target_vocab = run.load_vocabularies()
    model = split_trainer(keras.models.load_model(run.model, compile=False))
    signatures = seq2seq_signatures(
        cell=config.cell,
        num_layers=config.num_layers,
        hidden_size=config.hidden_size,
        source_vocab_size=len(source_vocab),
        target_vocab_size=len(target_vocab),
    )
    return Translator(
        KerasBackend(model.encoder, model.decoder, signatures.encoder, signatures.decoder),
        encoder_signature=signatures.encoder,
        decoder_signature=signatures.decoder,
        decoding=signatures.decoding,
        source=TextCodec(config.source_spec(), source_vocab, reverse=config.reverse_source),
        target=TextCodec(config.target_spec(), target_vocab),
        max_decode_length=config.max_decode_length,
    )
