"""Requests for TF Serving's translate model: REST bodies (row and column format), URLs, gRPC
PredictRequests, and ``keras-s2s serve-request`` printing them."""

import json

import pytest

from keras_s2s.serving_client import grpc_predict_request, rest_predict_body, rest_predict_url


def test_a_rest_row_request_lists_the_texts_as_instances():
    assert rest_predict_body(["I go home", "나는"]) == {
        "signature_name": "serving_default", "instances": ["I go home", "나는"],
    }


def test_a_rest_column_request_puts_the_texts_under_the_text_input():
    assert rest_predict_body(["I go home"], columns=True) == {
        "signature_name": "serving_default", "inputs": {"text": ["I go home"]},
    }


def test_the_rest_url_names_the_model_and_optionally_its_version():
    assert rest_predict_url("localhost", 8501, "toy_translate") == "http://localhost:8501/v1/models/toy_translate:predict"
    assert rest_predict_url("h", 1, "m", version=3) == "http://h:1/v1/models/m/versions/3:predict"


@pytest.mark.parametrize("texts, error", [([], ValueError), ("one string", TypeError), ([b"bytes"], TypeError)])
def test_requests_need_a_non_empty_sequence_of_strings(texts, error):
    with pytest.raises(error):
        rest_predict_body(texts)


def test_a_grpc_request_holds_the_texts_as_a_utf8_string_tensor():
    request = grpc_predict_request(["I go home", "나는"], "toy_translate", version=2)
    assert (request.model_spec.name, request.model_spec.signature_name, request.model_spec.version.value) == (
        "toy_translate", "serving_default", 2)
    tensor = request.inputs["text"]
    assert [d.size for d in tensor.tensor_shape.dim] == [2]
    assert list(tensor.string_val) == ["I go home".encode(), "나는".encode()]


@pytest.mark.slow
def test_serve_request_prints_the_rest_body_or_the_grpc_request_for_the_export(exported_toy, capsys):
    from keras_s2s.cli import main

    name = json.loads((exported_toy / "assets" / "metadata.json").read_text())["translate"]["serving_model_name"]
    assert main(["serve-request", str(exported_toy), "I go home", "--port", "9000"]) == 0
    url, body = capsys.readouterr().out.strip().splitlines()
    assert url == f"POST http://localhost:9000/v1/models/{name}:predict"
    assert json.loads(body) == rest_predict_body(["I go home"])
    assert main(["serve-request", str(exported_toy), "--grpc", "I go home"]) == 0
    printed = capsys.readouterr().out
    assert f'name: "{name}"' in printed and 'string_val: "I go home"' in printed


def test_serve_request_on_an_export_without_metadata_names_the_problem(tmp_path, capsys):
    from keras_s2s.cli import main

    assert main(["serve-request", str(tmp_path), "hello"]) == 1
    assert "metadata.json is missing" in capsys.readouterr().err
