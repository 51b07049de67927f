"""Runs the Keras encoder and decoder models (from a run directory) as a translator backend."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from keras_s2s.runtime.interface import GraphSignature
from keras_s2s.runtime.translator import TextCodec, Translator


class KerasBackend:
    """Wraps each model in a ``tf.function`` with a dynamic-shape signature (traced once)."""

    def __init__(self, encoder, decoder, encoder_signature: GraphSignature, decoder_signature: GraphSignature) -> None:
        import tensorflow as tf

        def specs(signature: GraphSignature) -> dict:
            return {t.name: tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in signature.inputs}

        # autograph off, as Keras' own traced functions have it: these have no Python control flow.
        self._encoder = tf.function(
            lambda feeds: encoder(feeds, training=False), input_signature=[specs(encoder_signature)], autograph=False)
        self._decoder = tf.function(
            lambda feeds: decoder(feeds, training=False), input_signature=[specs(decoder_signature)], autograph=False)

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self._encoder(dict(feeds)).items()}

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.numpy() for name, value in self._decoder(dict(feeds)).items()}


def load_keras_translator(run_dir: str | Path) -> Translator:
    """A translator over the final model of a training run."""
    from keras_s2s.run_dir import load_trained_model

    trained = load_trained_model(run_dir)
    config, signatures = trained.config, trained.signatures
    return Translator(
        KerasBackend(trained.encoder, trained.decoder, signatures.encoder, signatures.decoder),
        encoder_signature=signatures.encoder,
        decoder_signature=signatures.decoder,
        decoding=signatures.decoding,
        source=TextCodec(config.source_spec(), trained.source_vocab, reverse=config.reverse_source),
        target=TextCodec(config.target_spec(), trained.target_vocab),
        max_decode_length=config.max_decode_length,
        max_source_length=config.max_source_length,
    )
