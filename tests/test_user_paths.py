"""The paths users take, end to end, each test a sentence of the specification:

1. train on your own TSV files (README "Train on your own data"): with a validation file, without
   one (the hold-out), the --train-file / --validation-file / --epochs overrides, --overwrite;
2. translate more inputs than one batch: each input gets its own translation, in input order;
3. evaluate with several references per source;
4. the command line: evaluate on an export, split names, exit codes;
5. early stopping stops, and model.keras holds the best epoch's weights;
6. the README's Python API snippet runs as written.

Our own trainings are tiny (char-level word reversal, embedding 8, hidden 16, 2-3 epochs); the toy
model is the session fixture of conftest.py. `keras_s2s.cli.main` runs in-process.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT, TOY_CONFIG, _train_with_the_cli

from keras_s2s import cli
from keras_s2s.cli import main

slow = pytest.mark.slow

WORDS = [  # 40 distinct words, none with k, q, x or z
    "apple", "river", "stone", "cloud", "green", "light", "table", "chair", "house", "music", "bread", "water",
    "plant", "tiger", "horse", "mouse", "night", "dream", "smile", "ocean", "paper", "glass", "sugar", "honey",
    "lemon", "melon", "grape", "peach", "olive", "onion", "salad", "pasta", "candy", "cream", "bacon", "toast",
    "juice", "wheat", "field", "north"
]
OTHER_WORDS = ["zebra", "quick", "kayak", "xenon", "lamp", "sand", "wind", "fire"]
TINY = {
    "dataset": "tsv", "source_tokenizer": "char", "target_tokenizer": "char", "embedding_size": 8, "hidden_size": 16,
    "epochs": 2, "batch_size": 8, "bucket_width": 0, "shuffle_buffer": 64, "early_stopping_patience": None,
    "jit_compile": False,
}


# --- helpers ---------------------------------------------------------------------------------------
def reversal_tsv(path: Path, words, *, second_target=()) -> Path:
    """One line 'word<TAB>drow' per word; the words in ``second_target`` get a second line
    (a second reference, 'drowdrow'), so a source can have several lines."""
    lines = [f"{w}\t{w[::-1]}\n" for w in words] + [f"{w}\t{w[::-1] * 2}\n" for w in second_target]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tiny_config(path: Path, **fields) -> Path:
    path.write_text(json.dumps({**TINY, **fields}), encoding="utf-8")
    return path


def train(config: Path, run_dir: Path, *options: str) -> int:
    return main(["train", "--config", str(config), "--out", str(run_dir), *options])


def evaluate_json(path: Path, data: str, *options: str, capsys) -> dict:
    assert main(["evaluate", str(path), "--data", data, "--json", *options]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def tsv_rows(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines()]


def history_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def the_error_line(capsys) -> str:
    """What a failure prints: nothing on stdout, exactly one line on stderr."""
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return captured.err.rstrip("\n")


def export_with_the_cli(run_dir: Path, out: Path) -> Path:
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        code = main(["export", str(run_dir), "--out", str(out)])
    assert code == 0, stdout.getvalue()[-2000:]
    return out


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory):
    """A tiny run trained by the CLI on a TSV file WITHOUT a validation file (so 5% of its sources
    are held out), with a test file: (run dir, config file, training file, test file)."""
    root = tmp_path_factory.mktemp("holdout")
    train_file = reversal_tsv(root / "words.tsv", WORDS, second_target=WORDS[::5])
    test_file = reversal_tsv(root / "test.tsv", OTHER_WORDS[4:])
    config = tiny_config(root / "config.json", train_file=str(train_file), test_file=str(test_file))
    run_dir, code, output = _train_with_the_cli(config, root / "run")
    assert code == 0, output[-2000:]
    return run_dir, config, train_file, test_file


# --- 1. train on your own data ---------------------------------------------------------------------
@slow
def test_training_with_a_validation_file_uses_both_files_as_given_then_translates_and_evaluates(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # the README's config names its files relative to the working directory
    reversal_tsv(tmp_path / "data" / "train.tsv", WORDS)
    reversal_tsv(tmp_path / "data" / "valid.tsv", OTHER_WORDS)
    config = tiny_config(tmp_path / "my.json", train_file="data/train.tsv", validation_file="data/valid.tsv")
    run_dir = tmp_path / "runs" / "mine"

    assert train(config, run_dir) == 0
    stdout = capsys.readouterr().out
    assert f"[data] train: {Path('data/train.tsv')}: 40 pairs kept of 40 lines" in stdout
    assert f"[data] validation: {Path('data/valid.tsv')}: 8 pairs kept of 8 lines" in stdout
    recorded = read_json(run_dir / "config.json")
    assert recorded["train_file"] == str((tmp_path / "data" / "train.tsv").resolve())  # made absolute
    assert recorded["validation_file"] == str((tmp_path / "data" / "valid.tsv").resolve())
    reports = read_json(run_dir / "data_report.json")["reports"]
    assert {split: report["kept"] for split, report in reports.items()} == {"train": 40, "validation": 8}
    assert not (run_dir / "data" / "validation.tsv").exists()  # nothing held out
    source_vocab = set((run_dir / "source_vocab.txt").read_text(encoding="utf-8").splitlines())
    assert not source_vocab & set("kqxz")  # the vocabulary comes from the training file only

    assert main(["translate", str(run_dir), "apple", "zebra"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    scores = evaluate_json(run_dir, "validation", capsys=capsys)
    assert (scores["pairs"], scores["sources"]) == (8, 8)


@slow
def test_training_without_a_validation_file_holds_out_whole_sources_into_the_run_directory(holdout_run):
    run_dir, _, train_file, test_file = holdout_run
    train_part, validation_part = (run_dir / "data" / f"{split}.tsv" for split in ("train", "validation"))
    recorded = read_json(run_dir / "config.json")
    assert recorded["train_file"] == str(train_part.resolve())
    assert recorded["validation_file"] == str(validation_part.resolve())
    assert recorded["test_file"] == str(test_file.resolve())

    train_rows, validation_rows = tsv_rows(train_part), tsv_rows(validation_part)
    assert train_rows and validation_rows
    assert not {s for s, _ in train_rows} & {s for s, _ in validation_rows}  # no source on both sides
    # Every line of the user's file is on exactly one side.
    assert collections.Counter(train_rows + validation_rows) == collections.Counter(tsv_rows(train_file))

    reports = read_json(run_dir / "data_report.json")["reports"]
    lines = len(WORDS) + len(WORDS[::5])
    assert reports["train_file"]["path"] == str(train_file)
    assert reports["train_file"]["kept"] == reports["train_file"]["lines"] == lines
    assert reports["train"]["kept"] + reports["validation"]["kept"] == lines
    assert (reports["train"]["kept"], reports["validation"]["kept"]) == (len(train_rows), len(validation_rows))
    assert reports["test"]["kept"] == 4


@slow
@pytest.mark.parametrize("base", ["tsv-config", "toy-config"])
def test_train_file_validation_file_and_epochs_options_override_the_config(tmp_path, capsys, base):
    train_file = reversal_tsv(tmp_path / "train.tsv", WORDS)
    validation_file = reversal_tsv(tmp_path / "valid.tsv", OTHER_WORDS)
    if base == "toy-config":  # dataset "toy", 60 epochs: --train-file switches it to "tsv"
        config = TOY_CONFIG
    else:  # files that do not exist, 30 epochs: training would fail or run long without the overrides
        config = tiny_config(tmp_path / "config.json", train_file=str(tmp_path / "absent.tsv"),
                             validation_file=str(tmp_path / "absent_too.tsv"), epochs=30)
    run_dir = tmp_path / "run"

    code = train(config, run_dir, "--train-file", str(train_file), "--validation-file", str(validation_file),
                 "--epochs", "2")
    assert code == 0, capsys.readouterr().err
    recorded = read_json(run_dir / "config.json")
    assert recorded["dataset"] == "tsv"
    assert recorded["train_file"] == str(train_file.resolve())
    assert recorded["validation_file"] == str(validation_file.resolve())
    assert recorded["epochs"] == 2
    assert len(history_rows(run_dir)) == 2
    assert read_json(run_dir / "training_summary.json")["epochs_run"] == 2
    reports = read_json(run_dir / "data_report.json")["reports"]
    assert (reports["train"]["path"], reports["validation"]["path"]) == (str(train_file), str(validation_file))


@slow
def test_overwrite_replaces_an_earlier_run_entirely(holdout_run, tmp_path, capsys):
    earlier, config, _, _ = holdout_run
    run_dir = shutil.copytree(earlier, tmp_path / "run")
    (run_dir / "marker.txt").write_text("from the earlier run", encoding="utf-8")
    assert len(history_rows(run_dir)) == 2

    assert train(config, run_dir, "--overwrite", "--epochs", "3") == 0
    assert not (run_dir / "marker.txt").exists()
    assert len(history_rows(run_dir)) == 3
    assert read_json(run_dir / "config.json")["epochs"] == 3
    assert read_json(run_dir / "training_summary.json")["epochs_run"] == 3
    assert "[done] best epoch" in capsys.readouterr().out


# --- 2. more inputs than one batch -------------------------------------------------------------------
# Different lengths (sorted by length inside the translator), an empty input, an unknown word.
# Token counts 4, 1, 0, 3, 3, 3, 4: in length order the inputs are 1, 3, 4, 5, 0, 6 (the empty one
# is not decoded). In batches of 2 ([1, 3], [4, 5], [0, 6]) every batch happens to be in input
# order; in batches of 3 ([1, 3, 4], [5, 0, 6]) the second is not, so a translation handed back
# to the wrong row of its batch shows there.
SEVEN_INPUTS = ["she goes to school", "water", "", "I love you", "the dog runs", "I go zebra", "mountain sea sky tree"]


@slow
@pytest.mark.parametrize("beam", [None, 3], ids=["greedy", "beam-3"])
def test_inputs_translated_in_batches_get_the_translations_they_get_alone_in_input_order(trained_toy_run, capsys, beam):
    from keras_s2s import Beam, Greedy, load_translator

    translator = load_translator(trained_toy_run)
    strategy = Beam(width=beam) if beam else Greedy()
    alone = [translator.translate_nbest([text], strategy=strategy)[0][0] for text in SEVEN_INPUTS]
    texts = [translation.text for translation in alone]
    assert texts[1:4] == ["물", "", "나는 너를 사랑한다"]

    for batch_size in (2, 3):
        batched = [best for best, *_ in translator.translate_nbest(SEVEN_INPUTS, batch_size=batch_size, strategy=strategy)]
        assert [t.tokens for t in batched] == [t.tokens for t in alone], f"batch size {batch_size}"
        # The same scores too: nothing is added to a hypothesis after its EOS while the batch goes on.
        assert [t.log_prob for t in batched] == pytest.approx([t.log_prob for t in alone], rel=1e-5, abs=1e-5)
        assert translator.translate(SEVEN_INPUTS, batch_size=batch_size, strategy=strategy) == texts
    options = ["--beam", str(beam)] if beam else []
    assert main(["translate", str(trained_toy_run), "--batch-size", "3", *options, *SEVEN_INPUTS]) == 0
    assert capsys.readouterr().out.split("\n") == [*texts, ""]


# --- 3. several references per source -----------------------------------------------------------------
@slow
def test_a_source_whose_output_matches_its_second_reference_is_correct(trained_toy_run, tmp_path, capsys):
    data = tmp_path / "two_references.tsv"
    data.write_text("I go home\t너는 집에 간다\nI go home\t나는 집에 간다\n", encoding="utf-8")  # output: the second
    scores = evaluate_json(trained_toy_run, str(data), capsys=capsys)
    assert (scores["sources"], scores["pairs"]) == (1, 2)
    assert (scores["wer"], scores["sequence_accuracy"], scores["per"], scores["cer"]) == (0.0, 1.0, 0.0, 0.0)


@slow
def test_per_uses_the_closest_reference_and_wer_counts_sources(trained_toy_run, tmp_path, capsys):
    data = tmp_path / "references.tsv"
    data.write_text(
        "I go home\t너는 집에 간다\n"  # output 나는 집에 간다: right (the second reference), 0 of 3 tokens wrong
        "the cat sleeps\t개가 잔다\n"  # output 고양이가 잔다: wrong; closest reference: 1 edit of 2 tokens
        "water\t물\n"  # right, 0 of 1
        "the cat sleeps\t고양이가 달린다 빨리 아주\n"  # 3 edits of 4 tokens: not the closest
        "I go home\t나는 집에 간다\n",
        encoding="utf-8",
    )
    scores = evaluate_json(trained_toy_run, str(data), capsys=capsys)
    assert (scores["sources"], scores["pairs"]) == (3, 5)
    assert scores["wer"] == pytest.approx(1 / 3)
    assert scores["sequence_accuracy"] == pytest.approx(2 / 3)
    assert scores["per"] == pytest.approx((0 + 1 + 0) / (3 + 2 + 1))


# --- 4. the command line -------------------------------------------------------------------------------
@slow
@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_evaluate_on_an_export_gives_the_scores_of_its_run(trained_toy_run, exported_toy, capsys, runtime):
    on_run = evaluate_json(trained_toy_run, "test", capsys=capsys)
    on_export = evaluate_json(exported_toy, "test", "--runtime", runtime, capsys=capsys)
    assert on_export.keys() == on_run.keys()
    for key, value in on_run.items():
        assert on_export[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert on_run["sequence_accuracy"] == 1.0 and on_run["pairs"] == 34


@slow
def test_split_names_resolve_to_the_files_of_the_run_for_the_run_and_its_export(holdout_run, tmp_path, capsys):
    run_dir, _, _, test_file = holdout_run
    export = export_with_the_cli(run_dir, tmp_path / "export")
    files = {split: run_dir / "data" / f"{split}.tsv" for split in ("train", "validation")} | {"test": test_file}
    for path in (run_dir, export):
        for split, file in files.items():
            scores = evaluate_json(path, split, capsys=capsys)
            assert scores["data"]["path"] == str(file.resolve()), (path, split)
            assert scores["pairs"] == len(tsv_rows(file))


@slow
def test_a_data_name_that_is_neither_a_split_nor_a_file_is_an_error_naming_the_file(
    exported_toy, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(exported_toy), "--data", "tset"]) == 1
    assert the_error_line(capsys) == "keras-s2s: error: data file not found: tset"


# The split names are resolved before any model is loaded, so these need no model.
@pytest.mark.parametrize("layout", ["run", "export"])
def test_a_split_name_the_run_recorded_no_file_for_is_an_error_saying_to_pass_a_file(tmp_path, capsys, layout):
    from keras_s2s.config import Seq2SeqConfig

    path = tmp_path / "model"  # a run (config.json) or an export (assets/config.json) trained without a test file
    config_file = path / "config.json" if layout == "run" else path / "assets" / "config.json"
    config_file.parent.mkdir(parents=True)
    Seq2SeqConfig(dataset="tsv", train_file=str(tmp_path / "train.tsv")).to_json(config_file)
    assert main(["evaluate", str(path), "--data", "test"]) == 1
    assert the_error_line(capsys) == f"keras-s2s: error: the run behind {path} has no test file; pass --data FILE"


def test_a_split_name_for_a_path_without_a_config_is_an_error_saying_to_pass_a_file(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--data", "validation"]) == 1
    assert the_error_line(capsys) == (
        f"keras-s2s: error: --data validation names a split of the training data, but {tmp_path} holds no "
        "config.json; pass a file"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["PATH", "--runtime", "onnx", "hello", "world"],  # issue #9: options between the path and the texts
        ["PATH", "hello", "--runtime", "onnx", "world", "--beam", "2"],
        ["--runtime", "onnx", "PATH", "hello", "--beam", "2", "world"],
        ["PATH", "--beam", "2", "--runtime", "onnx", "--", "hello", "world"],
    ],
    ids=["between-path-and-texts", "between-texts", "before-path", "double-dash"],
)
def test_options_anywhere_on_the_translate_line_are_parsed_as_options_and_the_rest_as_texts(monkeypatch, argv):
    """The parse alone (fast); test_cli.py runs these orders on a real export."""
    seen = []
    monkeypatch.setattr(cli, "_translate", lambda args: seen.append(args) or 0)
    assert main(["translate", *argv]) == 0
    (args,) = seen
    assert (args.path, args.texts, args.runtime) == (Path("PATH"), ["hello", "world"], "onnx")
    assert args.beam == (2 if "--beam" in argv else None)


def test_a_bad_option_value_is_a_one_line_user_error_with_exit_code_1(tmp_path, capsys):
    assert main(["translate", str(tmp_path), "--batch-size", "0", "I go home"]) == 1
    assert the_error_line(capsys) == "keras-s2s: error: --batch-size must be a positive integer, got 0"


def raise_(exception: BaseException):
    def command(args):
        raise exception

    return command


def test_an_interrupt_exits_with_130_and_says_interrupted(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "_translate", raise_(KeyboardInterrupt()))
    try:
        code = main(["translate", str(tmp_path), "I go home"])
    except KeyboardInterrupt:  # escaping main() it would stop the whole test session, not fail this test
        pytest.fail("the KeyboardInterrupt escaped main()")
    assert code == 130
    assert the_error_line(capsys) == "keras-s2s: interrupted"


def test_ctrl_c_during_a_command_ends_the_process_with_exit_code_130(tmp_path):
    """A real SIGINT (what Ctrl-C sends) to a process running a command, not a raised exception."""
    script = textwrap.dedent(
        """
        import signal, sys, time
        from keras_s2s import cli

        # What a terminal gives a command: Python's Ctrl-C handler. A shell that starts the
        # suite in the background makes children inherit an ignored SIGINT instead.
        signal.signal(signal.SIGINT, signal.default_int_handler)

        def busy(args):
            print("busy", flush=True)
            time.sleep(60)

        cli._translate = busy
        sys.exit(cli.main(["translate", sys.argv[1], "I go home"]))
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "busy\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()  # nothing to do once it has ended
    assert (process.returncode, err) == (130, "keras-s2s: interrupted\n")


def test_an_internal_error_is_one_line_with_an_exit_code_distinct_from_user_errors(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("KERAS_S2S_DEBUG", raising=False)
    monkeypatch.setattr(cli, "_translate", raise_(RuntimeError("boom")))
    assert main(["translate", str(tmp_path), "I go home"]) == 70  # EX_SOFTWARE; a user error is 1
    assert the_error_line(capsys) == (
        "keras-s2s: internal error: RuntimeError: boom (set KERAS_S2S_DEBUG=1 for the traceback)"
    )


def test_keras_s2s_debug_shows_the_traceback_of_an_internal_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_S2S_DEBUG", "1")
    monkeypatch.setattr(cli, "_translate", raise_(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        main(["translate", str(tmp_path), "I go home"])


# --- 5. early stopping ---------------------------------------------------------------------------------
class WeightsPerEpoch:
    """Wraps keras_s2s.training.training_callbacks to record the trainer's weights after every epoch."""

    def __init__(self, training_callbacks):
        import keras

        self.epochs: list[list[np.ndarray]] = []
        record = self.epochs

        class Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                record.append(self.model.get_weights())

        self.training_callbacks = lambda **kwargs: [*training_callbacks(**kwargs), Record()]


def same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@slow
def test_early_stopping_stops_and_the_run_keeps_the_best_epochs_weights(tmp_path, monkeypatch, capsys):
    import keras

    import keras_s2s.losses  # registers what model.keras needs
    import keras_s2s.models  # noqa: F401
    from keras_s2s import training

    train_file = reversal_tsv(tmp_path / "train.tsv", WORDS)
    # Targets made of a letter training never sees (UNK): the more the model learns, the worse it does.
    validation_file = tmp_path / "valid.tsv"
    validation_file.write_text("".join(f"{w}\tQQQQQQ\n" for w in OTHER_WORDS), encoding="utf-8")
    config = tiny_config(tmp_path / "config.json", train_file=str(train_file), validation_file=str(validation_file),
                         epochs=30, early_stopping_patience=1, learning_rate=0.02)
    recorder = WeightsPerEpoch(training.training_callbacks)
    monkeypatch.setattr(training, "training_callbacks", recorder.training_callbacks)

    assert train(config, tmp_path / "run") == 0
    summary = read_json(tmp_path / "run" / "training_summary.json")
    assert summary["epochs_run"] < 30
    assert summary["epochs_run"] == len(recorder.epochs) == len(history_rows(tmp_path / "run"))
    assert summary["best_epoch"] == summary["epochs_run"] - 1  # patience 1: one epoch without improvement

    final = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False).get_weights()
    assert same_weights(final, recorder.epochs[summary["best_epoch"] - 1])
    assert not same_weights(final, recorder.epochs[-1])


# --- 6. the README's Python API ---------------------------------------------------------------------------
@slow
def test_the_readme_python_api_snippet_runs_as_written(exported_toy, tmp_path):
    """Run verbatim from a directory holding what it names: pipelines/configs/toy.json (the toy
    config, 2 epochs) and exported/g2p_cmudict (here the toy export)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("\n## Python API\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "pipelines" / "configs").mkdir(parents=True)
    toy = read_json(TOY_CONFIG)
    (tmp_path / "pipelines" / "configs" / "toy.json").write_text(json.dumps({**toy, "epochs": 2}), encoding="utf-8")
    shutil.copytree(exported_toy, tmp_path / "exported" / "g2p_cmudict")

    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "toy" / "model.keras").is_file()  # train_model ran
