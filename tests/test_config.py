"""Seq2SeqConfig: validated on construction, JSON round trip, errors that name the field."""

import dataclasses
import json
import re

import pytest

from conftest import CONFIG_DIR, REPO_ROOT
from keras_s2s.config import Seq2SeqConfig
from keras_s2s.errors import ConfigError
from keras_s2s.tokenization import TextSpec


def config_error(**fields) -> str:
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig(**{"dataset": "toy", **fields})
    return str(info.value)


# --- valid configs ----------------------------------------------------------------------
def test_every_default_is_valid_once_the_required_train_file_is_given():
    config = Seq2SeqConfig(train_file="train.tsv")
    for field in dataclasses.fields(Seq2SeqConfig):
        if field.name != "train_file":
            assert getattr(config, field.name) == field.default, field.name
    assert config.dataset == "tsv"


def test_builtin_datasets_need_no_train_file():
    assert Seq2SeqConfig(dataset="toy").train_file is None
    assert Seq2SeqConfig(dataset="cmudict").train_file is None


def test_text_specs_are_derived_from_the_text_fields():
    config = Seq2SeqConfig(
        dataset="toy", source_tokenizer="word", target_tokenizer="char", source_lowercase=True, normalization="NFD"
    )
    assert config.source_spec() == TextSpec("word", "NFD", True)
    assert config.target_spec() == TextSpec("char", "NFD", False)


def test_max_decode_length_leaves_room_for_eos():
    assert Seq2SeqConfig(dataset="toy", max_target_length=7).max_decode_length == 8


def test_json_round_trip_gives_an_equal_config(tmp_path):
    config = Seq2SeqConfig(
        dataset="tsv",
        train_file="data/train.tsv",
        validation_file="data/dev.tsv",
        cell="gru",
        num_layers=2,
        dropout=0.25,
        clipnorm=None,
        max_vocab_size=100,
        normalization="NFD",
        length_policy="truncate",
        source_lowercase=True,
    )
    path = tmp_path / "config.json"
    config.to_json(path)
    assert Seq2SeqConfig.from_json(path) == config
    assert json.loads(path.read_text(encoding="utf-8")) == config.to_dict()


def test_json_file_may_set_only_some_fields(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"dataset": "toy", "hidden_size": 16}', encoding="utf-8")
    config = Seq2SeqConfig.from_json(path)
    assert config.hidden_size == 16
    assert config.embedding_size == Seq2SeqConfig.embedding_size


def test_int_is_accepted_where_a_float_is_expected():
    assert Seq2SeqConfig(dataset="toy", learning_rate=1, dropout=0).learning_rate == 1


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.json")), ids=lambda p: p.name)
def test_shipped_config_loads_and_round_trips(path, tmp_path):
    config = Seq2SeqConfig.from_json(path)
    copy = tmp_path / path.name
    config.to_json(copy)
    assert Seq2SeqConfig.from_json(copy) == config


def test_every_config_the_readme_names_is_shipped():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"pipelines/configs/([\w.-]+\.json)", readme))
    assert {"toy.json", "g2p_cmudict.json"} <= named
    assert named <= {path.name for path in CONFIG_DIR.glob("*.json")}


# --- invalid values: the message names the field and what is allowed --------------------
@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("cell", "transformer", ["'lstm'", "'gru'", "'rnn'"]),
        ("dataset", "csv", ["'tsv'", "'cmudict'", "'toy'"]),
        ("source_tokenizer", "bpe", ["'char'", "'word'"]),
        ("normalization", "nfc", ["'none'", "'NFC'", "'NFD'", "'NFKC'", "'NFKD'"]),
        ("length_policy", "drop", ["'filter'", "'truncate'"]),
    ],
)
def test_wrong_choice_names_the_field_and_every_allowed_value(field, value, allowed):
    message = config_error(**{field: value})
    assert f"'{field}'" in message
    assert repr(value) in message
    for choice in allowed:
        assert choice in message


@pytest.mark.parametrize(
    "field, value, allowed_range",
    [
        ("num_layers", 0, "[1, inf)"),
        ("num_layers", -2, "[1, inf)"),
        ("dropout", 1.5, "[0.0, 0.95]"),
        ("dropout", -0.1, "[0.0, 0.95]"),
        ("validation_percent", 0, "[1, 50]"),
        ("validation_percent", 51, "[1, 50]"),
        ("hidden_size", 0, "[1, inf)"),
        ("learning_rate", 0.0, "[1e-12, 10.0]"),
        ("bucket_width", -1, "[0, inf)"),
        ("early_stopping_patience", 0, "[1, inf)"),
    ],
)
def test_out_of_range_value_names_the_field_and_the_range(field, value, allowed_range):
    message = config_error(**{field: value})
    assert f"'{field}'" in message
    assert allowed_range in message
    assert f"got {value!r}" in message


def test_boundary_values_are_accepted():
    config = Seq2SeqConfig(dataset="toy", dropout=0.95, num_layers=1, validation_percent=50, bucket_width=0)
    assert (config.dropout, config.bucket_width) == (0.95, 0)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("learning_rate", "0.01", "expected float, got str '0.01'"),
        ("num_layers", True, "expected int, got bool True"),
        ("hidden_size", 32.0, "expected int, got float 32.0"),
        ("dropout", False, "expected float, got bool False"),
        ("jit_compile", 1, "expected one of True, False, 'auto', got 1"),
        ("jit_compile", "on", "expected one of True, False, 'auto', got 'on'"),
        ("hidden_size", None, "expected int, got NoneType None"),
        ("train_file", 3, "expected str, got int 3"),
        ("clipnorm", "1.0", "expected float, got str '1.0'"),
    ],
)
def test_wrong_type_names_the_field_the_expected_and_the_received_type(field, value, expected):
    message = config_error(**{field: value})
    assert f"'{field}'" in message
    assert expected in message


def test_optional_fields_accept_none():
    config = Seq2SeqConfig(dataset="toy", clipnorm=None, early_stopping_patience=None, max_vocab_size=None)
    assert config.clipnorm is None


@pytest.mark.parametrize("size", [0, 4])
def test_max_vocab_size_must_leave_room_for_a_real_token(size):
    message = config_error(max_vocab_size=size)
    assert "'max_vocab_size'" in message
    assert ">= 5" in message


def test_tsv_dataset_without_train_file_is_an_error():
    with pytest.raises(ConfigError, match="'train_file': required when dataset is 'tsv'"):
        Seq2SeqConfig(dataset="tsv")


def test_linear_decay_and_plateau_halving_both_set_the_learning_rate_so_only_one_may_be_on():
    with pytest.raises(ConfigError, match="'learning_rate_decay': 'linear' .* reduce_lr_patience \\(2\\)"):
        Seq2SeqConfig(dataset="toy", learning_rate_decay="linear", reduce_lr_patience=2)
    assert Seq2SeqConfig(dataset="toy", learning_rate_decay="linear").reduce_lr_patience is None


def test_a_decay_over_the_time_budget_needs_a_time_budget():
    with pytest.raises(ConfigError, match="'max_train_minutes': learning_rate_decay 'linear_budget' .* got None"):
        Seq2SeqConfig(dataset="toy", learning_rate_decay="linear_budget")
    assert Seq2SeqConfig(dataset="toy", learning_rate_decay="linear_budget", max_train_minutes=5).max_train_minutes == 5


def test_dtype_policy_is_float32_or_mixed_bfloat16():
    assert Seq2SeqConfig(dataset="toy").dtype_policy == "float32"
    assert "'dtype_policy'" in config_error(dtype_policy="mixed_float16")


def test_learning_rate_decay_is_one_of_its_names():
    assert "'learning_rate_decay'" in config_error(learning_rate_decay="cosine")


def test_replace_validates_the_changed_fields():
    with pytest.raises(ConfigError, match="'num_layers'"):
        Seq2SeqConfig(dataset="toy").replace(num_layers=0)


def test_nan_is_not_in_the_dropout_range(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"dataset": "toy", "dropout": NaN}', encoding="utf-8")
    with pytest.raises(ConfigError, match="'dropout'"):
        Seq2SeqConfig.from_json(path)


# --- files ---------------------------------------------------------------------------------
def test_unknown_field_suggests_the_closest_known_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"dataset": "toy", "hiden_size": 32}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig.from_json(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown config field 'hiden_size'" in message
    assert "did you mean 'hidden_size'?" in message


def test_unknown_field_without_a_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig.from_dict({"dataset": "toy", "zzzzzz": 1})
    assert "unknown config field 'zzzzzz'" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_invalid_value_in_a_file_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"dataset": "toy", "cell": "LSTM"}', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig.from_json(path)
    assert str(info.value).startswith(f"{path}: config field 'cell'")


def test_invalid_json_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "dataset": "toy",\n  "cell": "gru"\n  "num_layers": 2\n}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig.from_json(path)
    assert str(info.value).startswith(f"{path}:4: invalid JSON")


def test_json_that_is_not_an_object_is_an_error(tmp_path):
    path = tmp_path / "list.json"
    path.write_text('["dataset", "toy"]', encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a JSON object of config fields, got list"):
        Seq2SeqConfig.from_json(path)


def test_missing_config_file_is_a_config_error(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        Seq2SeqConfig.from_json(path)
    assert str(info.value) == f"config file not found: {path}"



def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"dataset": "toy", "train_file": "caf\u00e9.tsv"}'.encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        Seq2SeqConfig.from_json(path)

def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
