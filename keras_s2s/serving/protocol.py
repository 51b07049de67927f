"""TF Serving's REST protocol for the translate model, in plain Python (no HTTP, no TensorFlow).

    parse_predict_body(body_bytes) -> PredictRequest(texts, columns)
    predictions_body(outputs, columns)   row request    -> {"predictions": [{name: value, ...}, ...]}
                                         column request -> {"outputs": {name: [value, ...]}}
    model_status_body(version), metadata_body(name, version, signature)

A bad request raises ``RequestError(status, message)``; the server answers ``{"error": message}``
with that status, as TF Serving does.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any, Mapping, Sequence

from keras_s2s.constants import TEXT_INPUT

SIGNATURE_NAME = "serving_default"
_DTYPES = {"string": "DT_STRING", "float32": "DT_FLOAT", "int32": "DT_INT32", "int64": "DT_INT64", "bool": "DT_BOOL"}


class RequestError(Exception):
    """A request the server refuses: ``status`` (HTTP) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    texts: list[str]
    columns: bool
    """True for the column format (``inputs``: answer ``outputs``), False for rows (``instances``)."""


def parse_predict_body(body: bytes) -> PredictRequest:
    """The texts of a ``:predict`` body, row (``instances``) or column (``inputs``) format.
    An instance is a string, ``{"text": string}`` or ``{"b64": base64 of UTF-8}`` (TF Serving's
    binary form)."""
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"JSON Parse error: {err}") from None
    if not isinstance(request, dict):
        raise RequestError(400, f"the request body must be a JSON object, got {_kind(request)}")
    signature = request.get("signature_name", SIGNATURE_NAME)
    if signature != SIGNATURE_NAME:
        raise RequestError(400, f'Serving signature key "{signature}" not found (the translate model has "{SIGNATURE_NAME}")')
    if ("instances" in request) == ("inputs" in request):
        given = ", ".join(repr(key) for key in request) or "none"
        raise RequestError(
            400, "the request body must have exactly one of 'instances' (row format) or 'inputs' (column format); "
                 f"keys given: {given}"
        )
    columns = "inputs" in request
    values = request["inputs"] if columns else request["instances"]
    if columns and isinstance(values, dict):
        unknown = sorted(set(values) - {TEXT_INPUT})
        if unknown or TEXT_INPUT not in values:
            raise RequestError(400, f"'inputs' must name the one input '{TEXT_INPUT}', got keys {sorted(values)}")
        values = values[TEXT_INPUT]
    field = "inputs" if columns else "instances"
    if not isinstance(values, list):
        raise RequestError(400, f"'{field}' must be a list of strings (input '{TEXT_INPUT}' has shape [-1]), got {_kind(values)}")
    if not values:
        raise RequestError(400, f"'{field}' is an empty list: send at least one text")
    return PredictRequest([_text(value, index, columns) for index, value in enumerate(values)], columns)


def _text(value: Any, index: int, columns: bool) -> str:
    if isinstance(value, dict) and not columns:  # a row may name the input: {"text": ...}
        if set(value) != {TEXT_INPUT}:
            raise RequestError(400, f"instance {index} is an object with keys {sorted(value)}; expected only '{TEXT_INPUT}'")
        value = value[TEXT_INPUT]
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise RequestError(400, f"instance {index}: 'b64' is not base64 of UTF-8 text") from None
    if not isinstance(value, str):
        raise RequestError(
            400, f"instance {index} is {_kind(value)}, expected a string (input '{TEXT_INPUT}' is a DT_STRING tensor)"
        )
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number") + ("" if isinstance(value, (dict, list)) else f" ({json.dumps(value)})")


def predictions_body(outputs: Sequence[Mapping[str, Any]], columns: bool) -> dict:
    """One output dict per text -> TF Serving's answer: ``outputs`` (columns) or ``predictions`` (rows)."""
    if columns:
        return {"outputs": {name: [output[name] for output in outputs] for name in outputs[0]}}
    return {"predictions": [dict(output) for output in outputs]}


def model_status_body(version: int) -> dict:
    """``GET /v1/models/NAME``: one version, loaded."""
    return {"model_version_status": [
        {"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}


def metadata_body(name: str, version: int, signature: Mapping[str, Any]) -> dict:
    """``GET /v1/models/NAME/metadata``: TF Serving's GetModelMetadata answer with the translate
    signature from ``assets/metadata.json`` (``signature``: ``{"inputs": [...], "outputs": [...]}``).
    Tensor names are the ones a Keras-exported SavedModel has: ``serving_default_<input>:0`` and
    ``StatefulPartitionedCall:<i>`` in output-name order."""
    inputs = {t["name"]: _tensor_info(t, f"{SIGNATURE_NAME}_{t['name']}:0") for t in signature["inputs"]}
    outputs = {
        t["name"]: _tensor_info(t, f"StatefulPartitionedCall:{i}")
        for i, t in enumerate(sorted(signature["outputs"], key=lambda t: t["name"]))
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": {
            SIGNATURE_NAME: {
                "inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict", "defaults": {},
            },
        }}},
    }


def _tensor_info(tensor: Mapping[str, Any], tensor_name: str) -> dict:
    dims = [{"size": str(-1 if size is None else size), "name": ""} for size in tensor["shape"]]
    return {"dtype": _DTYPES[tensor["dtype"]], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": tensor_name}
