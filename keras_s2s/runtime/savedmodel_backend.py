"""SavedModel backend: ``tf.saved_model.load`` + the ``serving_default`` signatures, exactly
what TF Serving runs. Uses no Keras and no keras_s2s model code."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import numpy as np


class SavedModelBackend:
    def __init__(
        self,
        encoder_dir: str | Path,
        decoder_dir: str | Path,
        signature_name: str = "serving_default",
        *,
        greedy_dir: Optional[str | Path] = None,
        greedy_signature_name: str = "serving_default",
        beam_dir: Optional[str | Path] = None,
        beam_signature_name: str = "serving_default",
    ) -> None:
        import tensorflow as tf

        self._tf = tf
        # Keep the loaded objects alive: a signature does not own its variables.
        self._loaded = {}

        def signature(directory, name: str):
            self._loaded[directory] = tf.saved_model.load(str(directory))
            return self._loaded[directory].signatures[name]

        self._encoder, self._decoder = signature(encoder_dir, signature_name), signature(decoder_dir, signature_name)
        self._greedy = signature(greedy_dir, greedy_signature_name) if greedy_dir else None
        self._beam = signature(beam_dir, beam_signature_name) if beam_dir else None

    def _run(self, signature, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = signature(**{name: self._tf.constant(value) for name, value in feeds.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._encoder, feeds)

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._decoder, feeds)

    def run_greedy(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._greedy, feeds)

    def run_beam(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._beam, feeds)
