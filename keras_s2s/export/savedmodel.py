"""Writes one graph as a SavedModel with a ``serving_default`` signature (for TF Serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from keras_s2s.export.graphs import serving_function
from keras_s2s.runtime.interface import GraphSignature

SIGNATURE_NAME = "serving_default"


def write_savedmodel(model: keras.Model, signature: GraphSignature, directory: str | Path) -> None:
    """SavedModel at ``directory`` whose ``serving_default`` takes and returns named tensors."""
    write_function_savedmodel([model], serving_function(model, signature, check_inputs=True), directory)


def write_function_savedmodel(
    models: Sequence[keras.Model], function: tf.types.experimental.GenericFunction, directory: str | Path
) -> None:
    """SavedModel at ``directory`` serving ``function`` (inputs checked in-graph) over the
    variables of ``models``."""
    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    archive.add_endpoint(SIGNATURE_NAME, function)
    archive.write_out(str(directory), verbose=False)
