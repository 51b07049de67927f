"""Requests for the exported translate model on TF Serving (or ``keras-s2s serve``).

    rest_predict_url("localhost", 8501, "toy_translate")
        -> "http://localhost:8501/v1/models/toy_translate:predict"
    rest_predict_body(["I go home"])                 -> {"signature_name": ..., "instances": ["I go home"]}
    rest_predict_body(["I go home"], columns=True)   -> {"signature_name": ..., "inputs": {"text": [...]}}
    grpc_predict_request(["I go home"], "toy_translate")  -> a tensorflow_serving PredictRequest

REST's row format (``instances``) answers with ``predictions``, one object per input; the
column format (``inputs``) answers with ``outputs``, one list per output tensor (TF Serving's
REST API). The gRPC request needs ``tensorflow-serving-api`` (a dependency) and TensorFlow for
its TensorProto; the REST helpers are plain Python.
"""

from __future__ import annotations

from typing import Optional, Sequence

from keras_s2s.constants import TEXT_INPUT

SIGNATURE_NAME = "serving_default"


def rest_predict_url(host: str, port: int, model_name: str, version: Optional[int] = None) -> str:
    """TF Serving's REST predict URL for ``model_name`` (its newest version, or ``version``)."""
    versioned = f"/versions/{version}" if version is not None else ""
    return f"http://{host}:{port}/v1/models/{model_name}{versioned}:predict"


def rest_predict_body(texts: Sequence[str], *, columns: bool = False, signature_name: str = SIGNATURE_NAME) -> dict:
    """The JSON body of a REST ``:predict`` request translating ``texts`` (row or column format)."""
    texts = _checked_texts(texts)
    if columns:
        return {"signature_name": signature_name, "inputs": {TEXT_INPUT: texts}}
    return {"signature_name": signature_name, "instances": texts}


def grpc_predict_request(texts: Sequence[str], model_name: str, *, signature_name: str = SIGNATURE_NAME,
                         version: Optional[int] = None):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` translating ``texts``:
    ``inputs["text"]`` is a [len(texts)] DT_STRING tensor of their UTF-8 bytes."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[TEXT_INPUT].CopyFrom(tf.make_tensor_proto(_checked_texts(texts), dtype=tf.string))
    return request


def _checked_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise TypeError(f"texts must be a sequence of strings, got {texts!r}")
    if not texts:
        raise ValueError("texts must hold at least one string (TF Serving rejects an empty batch)")
    return list(texts)
