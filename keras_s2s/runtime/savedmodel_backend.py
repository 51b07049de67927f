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
    ) -> None:
        import tensorflow as tf

        self._tf = tf
        # Keep the loaded objects alive: a signature does not own its variables.
        directories = [encoder_dir, decoder_dir, *([greedy_dir] if greedy_dir else [])]
        self._loaded = [tf.saved_model.load(str(directory)) for directory in directories]
        self._encoder, self._decoder = (m.signatures[signature_name] for m in self._loaded[:2])
        self._greedy = self._loaded[2].signatures[greedy_signature_name] if greedy_dir else None

    def _run(self, signature, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = signature(**{name: self._tf.constant(value) for name, value in feeds.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._encoder, feeds)

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._decoder, feeds)

    def run_greedy(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._greedy, feeds)
