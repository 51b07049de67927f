"""End to end: `keras-s2s train` on the toy config learns the toy set by heart; translate and
evaluate read the run directory; bad input gives a one-line error and a non-zero exit code.

The model is trained once per session (about 20-30 s, fixture in conftest.py); `keras_s2s.cli.main` runs in-process.
"""

import csv
import io
import json
import re
import sys

import pytest

from conftest import TOY_CONFIG, make_untrained_run
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
        "learning_curves.png",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "learning_curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert list((run_dir / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "tensorboard" / "validation").glob("events.out.tfevents.*"))


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
    (done,) = [line for line in stdout.splitlines() if line.startswith("[done] ")]
    assert re.match(r"\[done\] best epoch \d+/\d+: val_loss \d+\.\d{4}, val_token_accuracy \d+\.\d{4}; ", done), done


@slow
def test_train_progress_lines_go_to_the_current_stdout(trained):
    # The fixture redirects sys.stdout after keras_s2s was imported: lines bound to the
    # import-time stdout would be missing here.
    _, _, stdout = trained
    for prefix in ("[data] train: ", "[data] validation: ", "[vocab] source ", "[model] lstm x"):
        assert prefix in stdout, prefix
    assert "val_loss" in stdout  # Keras' per-epoch lines


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
        "data", "strategy", "token accuracy", "sequence accuracy", "WER", "PER", "CER", "BLEU", "chrF",
        "unknown tokens", "truncated",
    ]
    assert "(34 pairs, 34 distinct sources)" in lines[0]
    assert lines[1] == "strategy:          greedy"
    assert lines[3].split()[2] == "1.0000"
    assert lines[8].split()[1] == "100.00"  # chrF; BLEU is 0 here: no toy output has 4 tokens (4-grams)
    assert "nrefs:1|" in lines[7] and "nrefs:1|" in lines[8]  # sacrebleu signatures


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
    assert f"output directory {out} is not empty and is not a keras-s2s run directory" in error
    assert "choose another --out" in error  # neither --overwrite nor --resume applies to it
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


def test_help_and_usage_errors_still_work_with_options_in_any_order(capsys):
    assert main(["--help"]) == 0
    assert "translate" in capsys.readouterr().out
    assert main(["translate", "--help"]) == 0
    assert "--plot-attention" in capsys.readouterr().out
    assert main([]) == 2
    assert "required: COMMAND" in capsys.readouterr().err
    assert main(["translate", "some/path", "hello", "--no-such-option"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


# --- options in any order, beam search, n-best, JSON ---------------------------------------------
@slow
@pytest.mark.parametrize(
    "argv",
    [
        ["{export}", "--runtime", "onnx", "I go home", "the dog runs"],
        ["--runtime", "savedmodel", "{export}", "I go home", "the dog runs"],
        ["--batch-size", "1", "{run}", "I go home", "the dog runs"],
        ["{run}", "I go home", "--batch-size", "1", "the dog runs"],
        ["{run}", "I go home", "the dog runs", "--runtime", "keras", "--batch-size", "1"],
    ],
    ids=["after-path", "before-path", "before-all", "between-texts", "after-texts"],
)
def test_options_may_come_before_between_or_after_the_texts(run_dir, exported_toy, capsys, argv):
    argv = [a.format(run=run_dir, export=exported_toy) for a in argv]
    assert main(["translate", *argv]) == 0
    assert capsys.readouterr().out == "나는 집에 간다\n개가 달린다\n"


@slow
def test_double_dash_ends_the_options(run_dir, capsys):
    assert main(["translate", str(run_dir), "--", "--beam"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # "--beam" was translated, not parsed


NBEST_LINE = re.compile(r"^(?P<output>[^\t]*)\t(?P<score>-?\d+\.\d{4})$")


@slow
def test_beam_nbest_prints_k_output_tab_score_lines_per_input_best_first(run_dir, capsys):
    assert main(["translate", str(run_dir), "--beam", "5", "--nbest", "3", "I go home", "", "water"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9
    matches = [NBEST_LINE.match(line) for line in lines]
    assert all(matches), lines
    for group in (matches[0:3], matches[6:9]):
        outputs = [m["output"] for m in group]
        scores = [float(m["score"]) for m in group]
        assert len(set(outputs)) == 3
        assert scores == sorted(scores, reverse=True) and scores[0] < 0
    assert [m["output"] for m in (matches[0], matches[6])] == ["나는 집에 간다", "물"]
    assert lines[3:6] == ["\t0.0000"] * 3  # an input without tokens still has K lines


@slow
def test_nbest_without_beam_uses_a_beam_of_width_k(run_dir, capsys):
    assert main(["translate", str(run_dir), "--nbest", "4", "I go home", "the cat sleeps"]) == 0
    nbest_only = capsys.readouterr().out
    assert main(["translate", str(run_dir), "--beam", "4", "--nbest", "4", "I go home", "the cat sleeps"]) == 0
    assert capsys.readouterr().out == nbest_only
    assert len(nbest_only.splitlines()) == 8


@slow
def test_plain_output_with_beam_is_one_line_per_input(run_dir, capsys):
    assert main(["translate", str(run_dir), "--beam", "3", "I go home", "water"]) == 0
    assert capsys.readouterr().out == "나는 집에 간다\n물\n"


@slow
def test_json_prints_one_object_per_input_with_its_hypotheses(run_dir, capsys):
    assert main(["translate", str(run_dir), "--json", "--nbest", "2", "I go home", "water"]) == 0
    out = capsys.readouterr().out
    assert "나는 집에 간다" in out  # ensure_ascii=False
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["input"] for o in objects] == ["I go home", "water"]
    for obj in objects:
        assert len(obj["hypotheses"]) == 2
        assert all(set(h) == {"output", "score", "log_prob"} for h in obj["hypotheses"])
        assert all(h["score"] == h["log_prob"] for h in obj["hypotheses"])  # length penalty 0
    assert [o["hypotheses"][0]["output"] for o in objects] == ["나는 집에 간다", "물"]
    assert main(["translate", str(run_dir), "--json", "I go home"]) == 0
    (greedy,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [h["output"] for h in greedy["hypotheses"]] == ["나는 집에 간다"]


@slow
def test_length_penalty_reaches_the_beam_search(run_dir, capsys):
    assert main(["translate", str(run_dir), "--json", "--beam", "3", "--length-penalty", "1.0", "I go home"]) == 0
    (best,) = json.loads(capsys.readouterr().out)["hypotheses"]
    generated = len(best["output"].split()) + 1  # the tokens and EOS
    assert best["score"] == pytest.approx(best["log_prob"] / ((5 + generated) / 6), rel=1e-6)
    assert best["score"] != best["log_prob"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--beam", "0"], "--beam must be a positive integer, got 0"),
        (["--nbest", "0"], "--nbest must be a positive integer, got 0"),
        (["--nbest", "3", "--beam", "2"], "--nbest 3 needs a beam at least that wide, got --beam 2"),
        (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
        (["--beam", "2", "--length-penalty", "-0.5"], "--length-penalty must be a non-negative number, got -0.5"),
        (["--beam", "2", "--length-penalty", "nan"], "--length-penalty must be a non-negative number, got nan"),
        (["--length-penalty", "0.6"], "--length-penalty only applies to beam search; add --beam N"),
        (["--plot-attention", "out.pdf"], "--plot-attention expects a .png file name, got 'out.pdf'"),
    ],
)
def test_bad_decoding_options_give_a_one_line_error(tmp_path, capsys, options, message):
    # Checked before the model is loaded: the path need not exist.
    assert main(["translate", str(tmp_path / "no_model"), *options, "I go home"]) == 1
    assert one_line_error(capsys).startswith(f"keras-s2s: error: {message}")


def test_bad_decoding_options_of_evaluate_give_a_one_line_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "no_model"), "--data", "test", "--beam", "0"]) == 1
    assert one_line_error(capsys) == "keras-s2s: error: --beam must be a positive integer, got 0"
    assert main(["evaluate", str(tmp_path / "no_model"), "--data", "test", "--beam", "x"]) == 2
    assert "invalid int value: 'x'" in capsys.readouterr().err


# --- evaluate: strategy, BLEU, chrF --------------------------------------------------------------
@slow
def test_evaluate_with_beam_search_reports_the_strategy(run_dir, capsys):
    argv = ["evaluate", str(run_dir), "--data", "test", "--beam", "3", "--length-penalty", "0.6"]
    assert main([*argv, "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["strategy"] == {"name": "beam", "width": 3, "length_penalty": 0.6}
    assert scores["sequence_accuracy"] == 1.0
    assert main(argv) == 0
    assert "strategy:          beam search, width 3, length penalty 0.6\n" in capsys.readouterr().out


@slow
def test_evaluate_scores_bleu_and_chrf_against_every_reference_of_a_source(run_dir, tmp_path, capsys):
    data = tmp_path / "multi.tsv"
    # "I go home" has two references (the second is right), "water" one: a variable number.
    data.write_text("I go home\t너는 집에 간다\nI go home\t나는 집에 간다\nwater\t물\n", encoding="utf-8")
    scores = evaluate_json(run_dir, data, capsys)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["chrf_signature"].startswith("nrefs:var|")
    assert scores["bleu_signature"].startswith("nrefs:var|")
    assert 0.0 <= scores["bleu"] <= 100.0
    data.write_text("I go home\t너는 집에 간다\nwater\t물\n", encoding="utf-8")
    assert evaluate_json(run_dir, data, capsys)["chrf"] < 90.0


@slow
def test_evaluate_compare_with_tells_a_trained_model_from_an_untrained_one(run_dir, tmp_path, capsys):
    untrained = make_untrained_run(tmp_path / "untrained", "lstm", 1, source_lowercase=True)  # the toy config's text specs
    result = evaluate_json(untrained, TOY_TSV, capsys, "--compare-with", str(run_dir))
    sources = result["sources"]
    assert sources == 34 and result["wer_b"] == 0.0 and result["only_b_wrong"] == 0
    assert result["wer_a"] > 0.9 and result["only_a_wrong"] == round(result["wer_a"] * sources)
    assert result["difference"] == pytest.approx(-result["wer_a"])
    # McNemar with every disagreement going one way: 2 * P(X = 0) = 2 / 2**n
    assert result["p_value"] == pytest.approx(2 / 2 ** result["only_a_wrong"])
    assert result["interval_low"] <= result["difference"] <= result["interval_high"] < -0.8
    assert result["strategy"] == {"name": "greedy"} and result["stress"] == "kept"


@slow
def test_evaluate_compare_with_prints_both_models_and_the_test(run_dir, trained_toy_attention_run, capsys):
    argv = ["evaluate", str(run_dir), "--data", str(TOY_TSV), "--compare-with", str(trained_toy_attention_run), "--beam", "3"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["data", "A", "B", "B - A", "disagreements", "p-value"]
    assert f"{run_dir}  WER 0.0000" in lines[1] and f"{trained_toy_attention_run}  WER 0.0000" in lines[2]
    assert lines[4].endswith("0 sources only A gets wrong, 0 only B") and lines[5].startswith("p-value:       1 ")


@slow
def test_evaluate_compare_with_needs_models_that_tokenize_alike(run_dir, tmp_path, capsys):
    other = make_untrained_run(tmp_path / "cased", "lstm", 1, source_lowercase=False)
    assert main(["evaluate", str(run_dir), "--data", str(TOY_TSV), "--compare-with", str(other)]) == 1
    assert "tokenize differently" in capsys.readouterr().err


def evaluate_json(path, data, capsys, *options) -> dict:
    """The scores `keras-s2s evaluate PATH --data DATA --json [options]` prints (exit code 0)."""
    assert main(["evaluate", str(path), "--data", str(data), "--json", *options]) == 0
    return json.loads(capsys.readouterr().out)


# --- attention heatmaps --------------------------------------------------------------------------
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@slow
def test_plot_attention_writes_a_png_heatmap_per_input(trained_toy_attention_run, tmp_path, capsys):
    attention_run = trained_toy_attention_run  # toy config + bidirectional encoder + Bahdanau attention
    one = tmp_path / "plots" / "attention.png"
    assert main(["translate", str(attention_run), "I go home", "--plot-attention", str(one)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "나는 집에 간다\n"  # the translation, nothing else on stdout
    assert f"[attention] {one}\n" in captured.err
    assert one.read_bytes().startswith(PNG_MAGIC) and one.stat().st_size > 0
    many = tmp_path / "many.png"
    assert main(["translate", str(attention_run), "--plot-attention", str(many), "--beam", "2", "I go home", "water"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    for name in ("many-1.png", "many-2.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC) and (tmp_path / name).stat().st_size > 0
    assert not many.exists()


@slow
def test_plot_attention_on_a_model_without_attention_is_a_clear_error(run_dir, tmp_path, capsys):
    png = tmp_path / "attention.png"
    assert main(["translate", str(run_dir), "I go home", "--plot-attention", str(png)]) == 1
    error = one_line_error(capsys)
    assert "--plot-attention" in error and "has no attention" in error
    assert not png.exists()


@slow
def test_evaluate_strip_stress_scores_without_the_stress_digits(run_dir, tmp_path, capsys):
    """A trailing 0/1/2 on a reference token is ARPAbet stress: it counts unless --strip-stress."""
    data = tmp_path / "stressed.tsv"
    data.write_text("I go home\t나는 집에 간다1\n", encoding="utf-8")
    kept = evaluate_json(run_dir, data, capsys)
    stripped = evaluate_json(run_dir, data, capsys, "--strip-stress")
    assert (kept["wer"], kept["stress"]) == (1.0, "kept")
    assert (stripped["wer"], stripped["stress"]) == (0.0, "stripped")
