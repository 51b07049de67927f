"""A real ``tensorflow_model_server`` serving an export: REST and gRPC answers of the translate
model equal the local runtime. Skipped where no server binary is on PATH (none can be installed
on the development machine; the docker image ``tensorflow/serving`` has one)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from keras_s2s.constants import OUTPUT_TEXT
from keras_s2s.runtime import load_translator
from keras_s2s.serving_client import grpc_predict_request, rest_predict_body, rest_predict_url

SERVER = shutil.which("tensorflow_model_server")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SERVER is None, reason="tensorflow_model_server is not on PATH (TF Serving is not pip-installable; "
                                              "run inside the tensorflow/serving image to include this test)"),
]
TEXTS = ["I go home", "you go to school", "unknown words here"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_export(exported_toy, tmp_path_factory):
    """(export directory, REST port, gRPC port) of a running tensorflow_model_server."""
    from keras_s2s.export import serving_config

    config = tmp_path_factory.mktemp("tf_serving") / "models.config"
    config.write_text(serving_config(exported_toy.name, base=str(exported_toy.parent)))
    rest_port, grpc_port = free_port(), free_port()
    server = subprocess.Popen(
        [SERVER, f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_config_file={config}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    name = json.loads((exported_toy / "assets" / "metadata.json").read_text())["translate"]["serving_model_name"]
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/{name}", timeout=5) as reply:
                    if "AVAILABLE" in reply.read().decode():
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, f"tensorflow_model_server exited with {server.returncode}"
            assert time.monotonic() < deadline, "the translate model did not become AVAILABLE in 120 s"
            time.sleep(0.5)
        yield exported_toy, name, rest_port, grpc_port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_tf_serving_rest_answers_equal_the_local_runtime(served_export, columns):
    export_dir, name, rest_port, _ = served_export
    request = urllib.request.Request(
        rest_predict_url("127.0.0.1", rest_port, name), data=json.dumps(rest_predict_body(TEXTS, columns=columns)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        answer = json.loads(reply.read())
    texts = answer["outputs"][OUTPUT_TEXT] if columns else [p[OUTPUT_TEXT] for p in answer["predictions"]]
    assert texts == load_translator(export_dir, "onnx").translate(TEXTS)


def test_tf_serving_grpc_answers_equal_the_local_runtime(served_export):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    export_dir, name, _, grpc_port = served_export
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            grpc_predict_request(TEXTS, name), timeout=60
        )
    texts = [t.decode() for t in tf.make_ndarray(reply.outputs[OUTPUT_TEXT])]
    assert texts == load_translator(export_dir, "onnx").translate(TEXTS)
