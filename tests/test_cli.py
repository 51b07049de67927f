"""End to end: `keras-s2s train` on the toy config learns the toy set by heart; translate and
evaluate read the run directory; bad input gives a one-line error and a non-zero exit code.

The model is trained once per session (about 20-30 s, fixture in conftest.py); `keras_s2s.cli.main` runs in-process.
"""

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, TOY_CONFIG
from keras_s2s.cli import main
from keras_s2s.config import Seq2SeqConfig
from keras_s2s.datasets import TOY_TSV, toy_pairs
from keras_s2s.vocab import Vocabulary

slow = pytest.mark.slow


@pytest.fixture
def trained(trained_toy):
    return trained_toy


@pytest.fixture
def run_dir(trained_toy_run):
    return trained_toy_run


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert error.startswith("keras-s2s: error: "), captured.err
    assert "\n" not in error
    assert "Traceback" not in captured.err
    return error


# --- training ------------------------------------------------------------------------------------
@slow
def test_train_exits_with_zero(trained):
    _, code, _ = trained
    assert code == 0


@slow
def test_run_directory_holds_every_artifact(run_dir):
    for name in (
        "config.json",
        "source_vocab.txt",
        "target_vocab.txt",
        "data_report.json",
        "checkpoints/best.weights.h5",
        "history.csv",
        "training_summary.json",
        "model.keras",
    ):
        assert (run_dir / name).is_file(), name


@slow
def test_history_has_one_row_per_epoch_with_loss_and_val_loss(run_dir):
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    summary = json.loads((run_dir / "training_summary.json").read_text(encoding="utf-8"))
    epochs = Seq2SeqConfig.from_json(TOY_CONFIG).epochs
    assert len(rows) == summary["epochs_run"] == epochs  # the toy config has no early stopping
    assert {"epoch", "loss", "val_loss", "token_accuracy", "val_token_accuracy"} <= set(rows[0])
    assert [int(r["epoch"]) for r in rows] == list(range(epochs))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert 1 <= summary["best_epoch"] <= epochs
    assert summary["best_val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-6)


@slow
def test_run_config_is_the_toy_config_with_absolute_data_files(run_dir):
    config = Seq2SeqConfig.from_json(run_dir / "config.json")
    toy = Seq2SeqConfig.from_json(TOY_CONFIG)
    assert config.replace(train_file=None, validation_file=None, test_file=None) == toy
    assert config.train_file == config.validation_file == config.test_file == str(TOY_TSV.resolve())


@slow
def test_vocabularies_and_data_report_describe_the_toy_set(run_dir):
    source_vocab = Vocabulary.load(run_dir / "source_vocab.txt")
    target_vocab = Vocabulary.load(run_dir / "target_vocab.txt")
    source_words = {w.lower() for s, _ in toy_pairs() for w in s.split()}  # the toy config lowercases sources
    target_words = {w for _, t in toy_pairs() for w in t.split()}
    assert set(source_vocab.tokens[4:]) == source_words
    assert set(target_vocab.tokens[4:]) == target_words
    reports = json.loads((run_dir / "data_report.json").read_text(encoding="utf-8"))["reports"]
    assert {split: r["kept"] for split, r in reports.items()} == {"train": 34, "validation": 34, "test": 34}


@slow
def test_train_prints_a_summary_line(trained):
    _, _, stdout = trained
    assert "val_loss" in stdout  # Keras' per-epoch lines


@slow
def test_train_progress_lines_go_to_the_current_stdout(trained):
    _, _, stdout = trained
    assert "[done] best epoch" in stdout


# --- the learning test -----------------------------------------------------------------------------
@slow
def test_translate_i_go_home(run_dir, capsys):
    assert main(["translate", str(run_dir), "I go home"]) == 0
    assert capsys.readouterr().out == "나는 집에 간다\n"


@slow
def test_every_toy_pair_translates_exactly(run_dir, capsys):
    sources, targets = zip(*toy_pairs())
    assert main(["translate", str(run_dir), *sources]) == 0
    assert capsys.readouterr().out.splitlines() == list(targets)


@slow
def test_translate_reads_one_input_per_stdin_line(run_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("I go home\r\nthe dog runs\n\nwater\n"))
    assert main(["translate", str(run_dir)]) == 0
    assert capsys.readouterr().out.split("\n") == ["나는 집에 간다", "개가 달린다", "", "물", ""]


@slow
def test_evaluate_json_prints_one_object_with_the_scores(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--data", "test", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    scores = json.loads(out)
    assert {"token_accuracy", "sequence_accuracy", "wer", "per"} <= set(scores)
    assert scores["sequence_accuracy"] == 1.0
    assert scores["wer"] == scores["per"] == 0.0
    assert scores["token_accuracy"] == 1.0
    assert scores["pairs"] == scores["sources"] == 34


@slow
def test_evaluate_without_json_prints_the_table(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--data", str(TOY_TSV)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "data", "token accuracy", "sequence accuracy", "WER", "PER", "CER"
    ]
    assert "(34 pairs, 34 distinct sources)" in lines[0]
    assert lines[2].split()[2] == "1.0000"


# --- errors: non-zero exit, one line on stderr naming the problem ---------------------------------
def test_train_with_an_invalid_config_field_fails_naming_the_field(tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text('{"dataset": "toy", "cell": "transformer"}', encoding="utf-8")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    error = one_line_error(capsys)
    assert str(config) in error
    assert "'cell'" in error and "'lstm'" in error and "'transformer'" in error
    assert not (tmp_path / "run").exists()


def test_train_with_an_unknown_config_field_suggests_the_right_one(tmp_path, capsys):
    config = tmp_path / "typo.json"
    config.write_text('{"dataset": "toy", "epoch": 3}', encoding="utf-8")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 1
    assert "did you mean 'epochs'?" in one_line_error(capsys)


def test_train_with_a_missing_config_file_fails(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.json"), "--out", str(tmp_path / "run")]) == 1
    assert "config file not found" in one_line_error(capsys)


def test_train_into_a_non_empty_directory_without_overwrite_fails(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["train", "--config", str(TOY_CONFIG), "--out", str(out)]) == 1
    error = one_line_error(capsys)
    assert f"output directory {out} is not empty" in error
    assert "--overwrite" in error
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert main(["train", "--config", str(TOY_CONFIG), "--out", str(out), "--overwrite"]) == 1
    assert "not a keras-s2s run directory" in one_line_error(capsys)
    assert (out / "notes.txt").is_file()


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "missing-dir"])
def test_translate_on_a_directory_that_is_not_a_run_fails(tmp_path, capsys, exists):
    path = tmp_path / "not_a_run"
    if exists:
        path.mkdir()
    assert main(["translate", str(path), "I go home"]) == 1
    error = one_line_error(capsys)
    assert f"{path} is neither a training run directory" in error


@slow
def test_evaluate_with_a_malformed_line_names_file_and_line(run_dir, tmp_path, capsys):
    data = tmp_path / "test.tsv"
    data.write_text("I go home\t나는 집에 간다\nwater 물\n", encoding="utf-8")
    assert main(["evaluate", str(run_dir), "--data", str(data)]) == 1
    error = one_line_error(capsys)
    assert f"{data}:2: no tab" in error


@slow
def test_evaluate_with_skip_malformed_scores_the_good_lines(run_dir, tmp_path, capsys):
    data = tmp_path / "test.tsv"
    data.write_text("I go home\t나는 집에 간다\nwater 물\n", encoding="utf-8")
    assert main(["evaluate", str(run_dir), "--data", str(data), "--skip-malformed", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert (scores["pairs"], scores["data"]["malformed"], scores["sequence_accuracy"]) == (1, 1, 1.0)


@slow
def test_evaluate_on_a_file_without_pairs_is_a_user_error(run_dir, tmp_path, capsys):
    data = tmp_path / "empty.tsv"
    data.write_text("\n\n", encoding="utf-8")
    assert main(["evaluate", str(run_dir), "--data", str(data)]) == 1
    error = one_line_error(capsys)
    assert "no pairs" in error


def test_unknown_command_exits_with_usage_error(capsys):
    assert main(["fly"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_pipelines_train_help_runs_as_a_module():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--help"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and "--out" in result.stdout and "--overwrite" in result.stdout
