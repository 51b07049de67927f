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
    models: Sequence[keras.Model | tf.Module],
    function: tf.types.experimental.GenericFunction,
    directory: str | Path,
    more_signatures: Mapping[str, tf.types.experimental.GenericFunction] | None = None,
) -> None:
    """SavedModel at ``directory`` serving ``function`` (a tf.function with an input signature)
    as ``serving_default``, and each of ``more_signatures`` under its name, over the variables
    of the Keras ``models`` and the resources of the ``tf.Module``s among them (lookup tables).

    The SavedModel holds signatures only, each traced once, and each weight once.
    ``keras.export.ExportArchive`` traced every function twice (``tf.saved_model.save``
    retraces a ``tf.function`` it finds on the saved object, since the save context changes
    its cache key), traced each tracked Keras model whole once more while looking for lookup
    tables (about half of an export's SavedModel time), and stored every weight twice (as the
    Keras variable and as the ``tf.Variable`` inside it; benchmarks/RESULTS.md, "SavedModels
    traced once")."""
    root = tf.__internal__.tracking.AutoTrackable()
    root.model_variables = [variable for model in models if isinstance(model, keras.Model) for variable in model.variables]
    root.resources = [module for module in models if not isinstance(module, keras.Model)]
    signatures = {SIGNATURE_NAME: function, **(more_signatures or {})}
    tf.saved_model.save(
        root, str(directory), signatures={name: fn.get_concrete_function() for name, fn in signatures.items()}
    )
