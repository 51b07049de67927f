"""Nothing silent at inference: what the model cannot read of an input is reported.

1. Source tokens the vocabulary does not hold (UNK): listed per input by
   ``Translator.translate_inputs``, warned about on stderr by ``keras-s2s translate`` (and in its
   ``--json`` objects), counted by ``evaluate``.
2. Inputs longer than the model's ``max_source_length``: the model reads the first
   ``max_source_length`` tokens (as ``length_policy: "truncate"`` does at training); reported per
   input, a warning on stderr (CLI) or an ``InputTruncatedWarning`` (Python), counted by evaluate.
   The id-level API and the exported graphs take ids as given.
3. ``keras-s2s export RUN --out FILE``: an error that says an export directory was expected.

The first tests use a fake backend (no model); the others the session's toy runs (conftest.py).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from keras_s2s.cli import main
from keras_s2s.constants import EOS_ID, RESERVED_TOKENS
from keras_s2s.runtime.interface import Carry, DecodingInterface, GraphSignature, TensorInfo
from keras_s2s.runtime.translator import InputTruncatedWarning, TextCodec, Translator
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

slow = pytest.mark.slow

SOURCE_VOCAB = Vocabulary([*RESERVED_TOKENS, "i", "go", "home", "now"])  # ids 4, 5, 6, 7
TARGET_VOCAB = Vocabulary([*RESERVED_TOKENS, "x"])


class RecordingBackend:
    """Records the source ids it encodes; its decoder always predicts EOS."""

    def __init__(self) -> None:
        self.sources: list[np.ndarray] = []

    def run_encoder(self, feeds):
        self.sources.append(feeds["source_ids"].copy())
        return {"state": np.zeros((len(feeds["source_ids"]), 1), np.float32)}

    def run_decoder(self, feeds):
        batch, steps = feeds["token_ids"].shape
        logits = np.zeros((batch, steps, len(TARGET_VOCAB)), np.float32)
        logits[..., EOS_ID] = 1.0
        return {"logits": logits, "next_state": feeds["state"]}


def fake_translator(*, max_source_length=3, reverse=False) -> Translator:
    ids = lambda name, vocab: TensorInfo(name, "int32", (None, None), (0, len(vocab)))  # noqa: E731
    state = lambda name: TensorInfo(name, "float32", (None, 1))  # noqa: E731
    return Translator(
        RecordingBackend(),
        encoder_signature=GraphSignature("encoder", (ids("source_ids", SOURCE_VOCAB),), (state("state"),)),
        decoder_signature=GraphSignature(
            "decoder", (ids("token_ids", TARGET_VOCAB), state("state")),
            (TensorInfo("logits", "float32", (None, None, len(TARGET_VOCAB))), state("next_state")),
        ),
        decoding=DecodingInterface("source_ids", "token_ids", "logits", (Carry("state", "state", "next_state"),)),
        source=TextCodec(TextSpec("word", lowercase=True), SOURCE_VOCAB, reverse=reverse),
        target=TextCodec(TextSpec("word"), TARGET_VOCAB),
        max_decode_length=4,
        max_source_length=max_source_length,
    )


# --- the Translator, without a model -----------------------------------------------------------
def test_read_source_keeps_the_first_tokens_and_lists_the_unknown_ones_it_reads():
    source = fake_translator(max_source_length=3).read_source(["i", "zzz", "go", "qqq", "home"])
    assert (source.tokens, source.unknown_tokens, source.length, source.truncated) == (
        ["i", "zzz", "go"], ["zzz"], 5, True
    )
    unlimited = fake_translator(max_source_length=None).read_source(("i", "zzz", "<s>", "zzz", "</s>"))
    assert unlimited.unknown_tokens == ["zzz", "<s>", "zzz", "</s>"]  # repeats kept; reserved text is UNK
    assert not unlimited.truncated


def test_translate_inputs_reports_each_input_s_unknown_tokens_and_truncation():
    translator = fake_translator(max_source_length=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it reports; it does not warn
        results = translator.translate_inputs(["I go home", "h😀me go 😀 now", "", "I go home now"])
    assert [r.text for r in results] == ["I go home", "h😀me go 😀 now", "", "I go home now"]
    assert [r.source.unknown_tokens for r in results] == [[], ["h😀me", "😀"], [], []]
    assert [(r.source.length, r.source.truncated) for r in results] == [(3, False), (4, True), (0, False), (4, True)]
    assert all(r.hypotheses[0].text == "" for r in results)  # the fake decoder says EOS at once


@pytest.mark.parametrize("reverse, fed", [(False, [[4, 5, 6]]), (True, [[6, 5, 4]])])
def test_the_model_reads_the_first_max_source_length_tokens_of_a_longer_input(reverse, fed):
    """Truncation keeps the first tokens in reading order, then reverses, as the training pipeline does."""
    translator = fake_translator(max_source_length=3, reverse=reverse)
    translator.translate_inputs(["I go home now now"])
    np.testing.assert_array_equal(translator.backend.sources[0], fed)


@pytest.mark.parametrize("method", ["translate", "translate_nbest"])
def test_text_methods_that_return_only_translations_warn_about_truncated_inputs(method):
    translator = fake_translator(max_source_length=3)
    pattern = r"1 of 2 inputs are longer than the model's maximum source length of 3 tokens .*: input 2 \(5 tokens\)"
    with pytest.warns(InputTruncatedWarning, match=pattern):
        getattr(translator, method)(["I go", "I go home now now"])
    assert [ids.shape[1] for ids in translator.backend.sources] == [3]


def test_token_methods_warn_too_and_nothing_warns_within_the_limit():
    translator = fake_translator(max_source_length=3)
    with pytest.warns(InputTruncatedWarning, match=r"input 1 \(4 tokens\)"):
        translator.translate_tokens([["i", "go", "home", "now"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translator.translate(["I go home", "go"])
        translator.translate_tokens_nbest([["i", "go", "home"]])
    assert fake_translator(max_source_length=None).translate_inputs(["i go home now now"])[0].source.truncated is False


def test_teacher_forced_accuracy_reads_truncated_sources_too():
    translator = fake_translator(max_source_length=2)
    translator.teacher_forced_accuracy([(["i", "go", "home"], ["x"])])
    np.testing.assert_array_equal(translator.backend.sources[0], [[4, 5]])


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "10"])
def test_an_invalid_max_source_length_is_rejected(bad):
    with pytest.raises(ValueError, match="`max_source_length`, expected None or a positive integer"):
        fake_translator(max_source_length=bad)


# --- the toy model: command line and Python API ------------------------------------------------
LONG = "I go home I go home I go home I go home"  # 12 tokens; the toy model reads at most 10
LONG_READ = "I go home I go home I go home I"


@pytest.fixture
def toy_export(exported_toy):
    """The session's toy export (conftest.py), only read here."""
    return exported_toy


@pytest.fixture(params=["keras", "onnx"])
def toy_path(request, trained_toy_run):
    """The toy model as a run directory (max_source_length from config.json) and as an export
    (from metadata.json)."""
    return trained_toy_run if request.param == "keras" else request.getfixturevalue("toy_export")


def translate_cli(capsys, path, *argv) -> tuple[list[str], list[str]]:
    assert main(["translate", str(path), *argv]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err.splitlines()


@slow
def test_cli_translate_warns_per_input_naming_its_unknown_tokens(toy_path, capsys):
    out, err = translate_cli(capsys, toy_path, "I go home", "I go 😀 home", "water 😀 <s> 😀")
    assert out[0] == "나는 집에 간다" and len(out) == 3
    assert err == [
        "keras-s2s: warning: input 2 'I go 😀 home': 1 unknown source token mapped to <unk>: '😀'",
        "keras-s2s: warning: input 3 'water 😀 <s> 😀': 3 unknown source tokens mapped to <unk>: '😀', '<s>', '😀'",
    ]


@slow
def test_cli_translate_json_lists_unknown_tokens_and_truncation_per_input(toy_path, capsys):
    out, err = translate_cli(capsys, toy_path, "--json", "I go home", "I go 😀 home", LONG)
    objects = [json.loads(line) for line in out]
    assert [o["unknown_tokens"] for o in objects] == [[], ["😀"], []]
    assert [o["truncated"] for o in objects] == [False, False, True]
    assert len(err) == 2  # the warnings are on stderr with --json too


@slow
def test_cli_translate_truncates_an_over_length_input_with_a_warning(toy_path, capsys):
    out, err = translate_cli(capsys, toy_path, LONG, "I go home")
    assert err == [
        f"keras-s2s: warning: input 1 '{LONG}': 12 source tokens, more than the model's maximum of 10; "
        "translated the first 10 only"
    ]
    expected, no_warning = translate_cli(capsys, toy_path, LONG_READ, "I go home")
    assert out == expected and no_warning == []


@slow
def test_the_python_api_truncates_over_length_inputs_and_says_so(toy_path):
    from keras_s2s.runtime import load_translator

    translator = load_translator(toy_path)
    assert translator.max_source_length == 10
    (result,) = translator.translate_inputs([LONG])
    assert (result.source.length, len(result.source.tokens), result.source.truncated) == (12, 10, True)
    with pytest.warns(InputTruncatedWarning, match="maximum source length of 10 tokens"):
        translated = translator.translate([LONG])
    assert translated == [result.hypotheses[0].text] == translator.translate([LONG_READ])


@slow
def test_evaluate_counts_unknown_tokens_and_truncated_sources(trained_toy_run, tmp_path, capsys):
    data = tmp_path / "data.tsv"
    data.write_text(f"I go home\t나는 집에 간다\nI go 😀 home 😀\t나는 집에 간다\n{LONG}\t나는 집에 간다\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputTruncatedWarning)  # evaluate reports; no Python warning
        assert main(["evaluate", str(trained_toy_run), "--data", str(data), "--json"]) == 0
        scores = json.loads(capsys.readouterr().out)
        assert main(["evaluate", str(trained_toy_run), "--data", str(data)]) == 0
    assert (scores["unknown_source_tokens"], scores["sources_with_unknown_tokens"]) == (2, 1)
    assert (scores["sources_truncated"], scores["max_source_length"]) == (1, 10)
    table = capsys.readouterr().out.splitlines()
    assert "unknown tokens:    2 source tokens mapped to <unk>, in 1 of 3 distinct sources" in table
    assert any(line.startswith("truncated:         1 of 3 distinct sources (longer than the model's maximum of 10")
               for line in table)


@slow
def test_attention_maps_show_the_source_tokens_the_model_read(trained_toy_attention_run):
    from keras_s2s.runtime import load_translator

    attention_map = load_translator(trained_toy_attention_run).attention_map(LONG)
    assert attention_map.source_tokens == LONG_READ.lower().split()
    assert attention_map.weights.shape[1] == 10


@slow
@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_the_id_level_api_and_the_exported_graphs_take_longer_sources_as_given(toy_export, runtime):
    """Documented: the graphs have a dynamic source axis and run on any length; only the text and
    token methods of the Python runtimes apply max_source_length."""
    from keras_s2s.runtime import load_translator

    translator = load_translator(toy_export, runtime)
    limit = translator.max_source_length
    source_ids = np.random.default_rng(0).integers(4, len(translator.source.vocab), (2, 3 * limit), dtype=np.int32)
    state = translator.encode(source_ids)
    assert all(value.shape[0] == 2 for value in state.values())
    first_ids_only = translator.encode(source_ids[:, :limit])
    assert any(not np.allclose(state[name], first_ids_only[name], atol=1e-4) for name in state), "ids past the limit were dropped"
    assert len(translator.decode_ids(source_ids)) == 2


@slow
def test_the_savedmodel_signature_runs_on_an_over_length_source(toy_export):
    """What a TF Serving client gets for a too-long ``source_ids``: the encoder runs (no error)."""
    import tensorflow as tf

    metadata = json.loads((toy_export / "assets" / "metadata.json").read_text(encoding="utf-8"))
    encoder = tf.saved_model.load(str(toy_export / metadata["graphs"]["encoder"]["savedmodel"]))
    too_long = tf.fill([1, 3 * metadata["max_source_length"]], 4)
    outputs = encoder.signatures["serving_default"](source_ids=too_long)
    assert outputs["state_h_0"].shape[0] == 1


# --- export onto a file ---------------------------------------------------------------------------
@slow
@pytest.mark.parametrize("out", ["some_file", "some_file/inside"])
def test_export_onto_a_file_says_an_export_directory_was_expected(trained_toy_run, tmp_path, capsys, out):
    (tmp_path / "some_file").write_text("keep me\n")
    assert main(["export", str(trained_toy_run), "--out", str(tmp_path / out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("keras-s2s: error: cannot export to ") and "\n" not in error
    assert f"{tmp_path / 'some_file'} is a file" in error or "it is a file" in error
    assert "expected an export directory" in error and "Errno" not in error
    assert (tmp_path / "some_file").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["some_file"]  # no staging directory left


@slow
def test_the_readme_warning_example_is_what_translate_prints(trained_toy_run, capsys):
    import shlex

    from conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Unknown tokens and over-length inputs.**", 1)[1].split("```\n", 2)[1]
    command, *expected = block.strip().splitlines()
    argv = shlex.split(command.removeprefix("$ keras-s2s ").removesuffix(" >/dev/null"))
    assert argv[:2] == ["translate", "runs/toy"]
    assert main([argv[0], str(trained_toy_run), *argv[2:]]) == 0
    assert capsys.readouterr().err.splitlines() == expected
