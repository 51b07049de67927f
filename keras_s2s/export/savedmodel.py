"""Writes one graph as a SavedModel with a ``serving_default`` signature (for TF Serving)."""

from __future__ import annotations

from pathlib import Path

import keras

from keras_s2s.export.graphs import serving_function
from keras_s2s.runtime.interface import GraphSignature

SIGNATURE_NAME = "serving_default"


def write_savedmodel(model: keras.Model, signature: GraphSignature, directory: str | Path) -> None:
    """SavedModel at ``directory`` whose ``serving_default`` takes and returns named tensors."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_NAME, serving_function(model, signature, check_inputs=True))
    archive.write_out(str(directory), verbose=False)
