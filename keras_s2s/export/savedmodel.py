"""Writes one graph as a SavedModel with a ``serving_default`` signature (for TF Serving)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import keras
import tensorflow as tf

from keras_s2s.export.graphs import serving_function
from keras_s2s.runtime.interface import GraphSignature

SIGNATURE_NAME = "serving_default"


def write_savedmodel(model: keras.Model, signature: GraphSignature, directory: str | Path) -> None:
    """SavedModel at ``directory`` whose ``serving_default`` takes and returns named tensors."""
    write_function_savedmodel([model], serving_function(model, signature, check_inputs=True), directory)


def write_function_savedmodel(
    models: Sequence[keras.Model],
    function: tf.types.experimental.GenericFunction,
    directory: str | Path,
    more_signatures: Mapping[str, tf.types.experimental.GenericFunction] | None = None,
) -> None:
    """SavedModel at ``directory`` serving ``function`` (inputs checked in-graph) as
    ``serving_default``, and each of ``more_signatures`` under its name, over the variables
    of ``models``."""
    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    archive.add_endpoint(SIGNATURE_NAME, function)
    for name, more in (more_signatures or {}).items():
        archive.add_endpoint(name, more)
    archive.write_out(str(directory), verbose=False)
