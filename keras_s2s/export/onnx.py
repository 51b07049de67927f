"""Converts one graph to ONNX with tf2onnx (dynamic batch and time axes) and checks it."""

from __future__ import annotations

from pathlib import Path

import keras

from keras_s2s.errors import ExportError
from keras_s2s.export.graphs import serving_function
from keras_s2s.runtime.interface import GraphSignature

OPSET = 17


def write_onnx(model: keras.Model, signature: GraphSignature, path: str | Path) -> None:
    """ONNX file at ``path`` with the signature's input and output names; passes onnx.checker."""
    import onnx
    import tf2onnx

    function = serving_function(model, signature, check_inputs=False)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=function.input_signature, opset=OPSET)
    onnx.checker.check_model(proto, full_check=True)
    # tf2onnx orders outputs by name; check that every documented name is there.
    names = {o.name for o in proto.graph.output} | {i.name for i in proto.graph.input}
    missing = [t.name for t in (*signature.inputs, *signature.outputs) if t.name not in names]
    if missing:
        raise ExportError(f"tf2onnx lost the tensor names {missing} of the {signature.name} graph")
    onnx.save(proto, str(path))
