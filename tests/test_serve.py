"""``keras-s2s serve``: the real server (a subprocess on a free loopback port, real ONNX Runtime)
answers TF Serving's REST protocol, batches concurrent requests, equals the local runtime,
refuses bad requests with a 400/404/405/413 and keeps serving, and stops on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from keras_s2s.cli import main
from keras_s2s.constants import (
    FINISHED, LOG_PROB, OUTPUT_LENGTHS, OUTPUT_TEXT, SCORE, SOURCE_LENGTHS, TRUNCATED, UNKNOWN_TOKENS,
)
from keras_s2s.runtime import load_translator
from keras_s2s.serving_client import rest_predict_body

TEXTS = ["I go home", "you go to school", "unknown words here", "", "we like the cat", "she is happy", "go", "I am"]
MAX_BODY_BYTES = 4096


@contextlib.contextmanager
def running_server(export_dir, *options: str):
    """(base URL, model name) of ``keras-s2s serve EXPORT --port 0 OPTIONS`` in a subprocess;
    stopped with SIGTERM afterwards, which must end it with exit code 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_s2s.cli", "serve", str(export_dir), "--port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        assert "ready" in line, f"the server did not start: {line!r} {process.poll()}"
        url = line.split()[2]  # http://127.0.0.1:PORT/v1/models/NAME
        yield url.split("/v1/")[0], url.rsplit("/", 1)[1]
    finally:
        process.terminate()
        code = process.wait(timeout=30)
        stderr = process.stderr.read()
    assert code == 0, f"the server did not stop cleanly on SIGTERM (exit code {code}): {stderr[-2000:]}"
    assert "internal error" not in stderr, stderr[-2000:]


@pytest.fixture(scope="module")
def server(exported_toy):
    """(base URL, model name, export dir) of a running ``keras-s2s serve`` of the toy export."""
    with running_server(exported_toy, "--workers", "2", "--max-batch-size", "8", "--max-wait-ms", "20",
                        "--max-body-bytes", str(MAX_BODY_BYTES)) as (base, name):
        yield base, name, exported_toy


def call(url: str, body: bytes | None = None, method: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def predict(base: str, name: str, body) -> tuple[int, dict]:
    return call(f"{base}/v1/models/{name}:predict", body if isinstance(body, bytes) else json.dumps(body).encode())


def expected_outputs(export_dir, texts: list[str]) -> list[dict]:
    """What the translate model answers, from the local ONNX runtime (Translator.translate_inputs)."""
    results = load_translator(export_dir, "onnx").translate_inputs(texts)
    return [
        {OUTPUT_TEXT: r.hypotheses[0].text, SCORE: r.hypotheses[0].score, LOG_PROB: r.hypotheses[0].log_prob,
         OUTPUT_LENGTHS: len(r.hypotheses[0].tokens), SOURCE_LENGTHS: r.source.length,
         TRUNCATED: r.source.truncated, UNKNOWN_TOKENS: len(r.source.unknown_tokens)}
        for r in results
    ]


def assert_matches(answer: dict, expected: dict) -> None:
    assert set(answer) == set(expected) | {FINISHED}
    for name, value in expected.items():
        if name in (SCORE, LOG_PROB):  # float32, batched with other inputs: equal up to rounding
            assert answer[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
        else:
            assert answer[name] == value, name
    assert answer[FINISHED] is True  # the trained toy model ends every output with EOS


@pytest.mark.slow
def test_concurrent_row_and_column_requests_equal_the_local_runtime_and_are_batched(server):
    base, name, export_dir = server
    expected = dict(zip(TEXTS, expected_outputs(export_dir, TEXTS)))
    _, before = call(f"{base}/healthz")
    requests = [([TEXTS[i % len(TEXTS)], TEXTS[(i + 3) % len(TEXTS)]], i % 2 == 1) for i in range(24)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda r: predict(base, name, rest_predict_body(r[0], columns=r[1])), requests))
    for (texts, columns), (status, body) in zip(requests, answers):
        assert status == 200, body
        if columns:  # TF Serving's column answer: one list per output
            rows = [{key: values[i] for key, values in body["outputs"].items()} for i in range(len(texts))]
        else:
            rows = body["predictions"]
        assert len(rows) == len(texts)
        for text, row in zip(texts, rows):
            assert_matches(row, expected[text])
    _, after = call(f"{base}/healthz")
    instances, batches = after["instances"] - before["instances"], after["batches"] - before["batches"]
    assert instances == 48
    assert batches < instances, "concurrent requests were not batched together"


@pytest.mark.slow
def test_model_status_metadata_and_named_instances_as_tf_serving(server):
    base, name, export_dir = server
    metadata = json.loads((export_dir / "assets" / "metadata.json").read_text())
    version = str(metadata["version"])
    assert call(f"{base}/v1/models/{name}") == (200, {"model_version_status": [
        {"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
    assert call(f"{base}/v1/models/{name}/versions/{version}")[0] == 200
    status, body = call(f"{base}/v1/models/{name}/metadata")
    assert status == 200 and body["model_spec"] == {"name": name, "signature_name": "", "version": version}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["text"]["dtype"] == "DT_STRING"
    assert sorted(signature["outputs"]) == sorted(t["name"] for t in metadata["translate"]["outputs"])
    assert signature["outputs"][SCORE]["dtype"] == "DT_FLOAT" and signature["outputs"][FINISHED]["dtype"] == "DT_BOOL"
    # Rows may name the input, and a versioned URL predicts too.
    status, body = call(f"{base}/v1/models/{name}/versions/{version}:predict",
                        json.dumps({"instances": [{"text": "I go home"}]}).encode())
    assert status == 200
    assert_matches(body["predictions"][0], expected_outputs(export_dir, ["I go home"])[0])


@pytest.mark.slow
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(server):
    base, name, export_dir = server
    limit = json.loads((export_dir / "assets" / "metadata.json").read_text())["max_source_length"]
    too_long = " ".join(["go"] * (limit + 3))
    cases = [
        (b"{not json", 400, "JSON Parse error"),
        (b"[1, 2]", 400, "must be a JSON object"),
        ({"instance": ["I go home"]}, 400, "exactly one of 'instances'"),
        ({"instances": ["a"], "inputs": {"text": ["a"]}}, 400, "exactly one of 'instances'"),
        ({"instances": ["I go home", 5]}, 400, "instance 1 is a number (5), expected a string"),
        ({"instances": [{"txt": "I go home"}]}, 400, "instance 0 is an object with keys ['txt']"),
        ({"instances": []}, 400, "empty list"),
        ({"instances": "I go home"}, 400, "must be a list of strings"),
        ({"inputs": {"source": ["I go home"]}}, 400, "must name the one input 'text'"),
        ({"signature_name": "other", "instances": ["a"]}, 400, 'signature key "other" not found'),
        ({"instances": ["I go home", too_long]}, 400,
         f"instance 1 has {limit + 3} source tokens, more than the model's maximum of {limit}"),
        ({"instances": ["I go home"] * 1000}, 413, f"larger than the limit of {MAX_BODY_BYTES} bytes"),
    ]
    for body, status, message in cases:
        got_status, got = predict(base, name, body)
        assert (got_status, list(got)) == (status, ["error"]), (body, got)
        assert message in got["error"], (body, got)
    assert call(f"{base}/v1/models/nope:predict", b'{"instances": ["a"]}')[0] == 404
    assert call(f"{base}/v1/models/nope")[0] == 404
    assert call(f"{base}/v1/models/{name}/versions/999")[0] == 404
    assert call(f"{base}/v1/nothing/here")[0] == 404
    assert call(f"{base}/v1/models/{name}:predict", method="GET")[0] == 405
    assert call(f"{base}/v1/models/{name}", b"{}")[0] == 405
    status, body = predict(base, name, {"instances": ["I go home"]})  # still serving
    assert status == 200 and body["predictions"][0][OUTPUT_TEXT] == expected_outputs(export_dir, ["I go home"])[0][OUTPUT_TEXT]


def test_serve_refuses_a_path_that_is_not_an_export_and_bad_options(tmp_path, capsys):
    assert main(["serve", str(tmp_path)]) == 1
    assert "not a complete export" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--workers", "0"]) == 1
    assert "--workers must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_an_export_with_beam_search_is_served_with_its_n_best_as_tf_serving_answers_k_hypotheses(trained_toy_run, tmp_path):
    from keras_s2s.decoding import Beam
    from keras_s2s.export import export_run

    beam = Beam(width=3, nbest=2, length_penalty=0.6)
    export_run(trained_toy_run, tmp_path / "toy", translate_strategy=beam)
    expected = load_translator(tmp_path / "toy", "onnx").translate_inputs(TEXTS, strategy=beam)
    with running_server(tmp_path / "toy", "--max-wait-ms", "20") as (base, name):
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda text: predict(base, name, rest_predict_body([text])), TEXTS))
    for text, result, (status, body) in zip(TEXTS, expected, answers):
        assert status == 200, body
        answer = body["predictions"][0]
        assert len(answer[OUTPUT_TEXT]) == 2  # [K] per instance, as TF Serving answers a [B, K] output
        assert answer[OUTPUT_TEXT][: len(result.hypotheses)] == [h.text for h in result.hypotheses], text
        assert answer[SCORE][: len(result.hypotheses)] == pytest.approx([h.score for h in result.hypotheses], abs=1e-4)
