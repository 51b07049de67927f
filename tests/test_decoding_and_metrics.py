"""greedy_decode against fake encode/step callables (one-hot logits, no model), and the
sequence metrics (edit distance, multi-reference error rates) on golden values."""

import numpy as np
import pytest

from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID
from keras_s2s.decoding import greedy_decode
from keras_s2s.metrics import closest_reference, edit_distance, error_rates

VOCAB = 10


class ScriptedModel:
    """encode/step whose argmax at step t of row r is script[r][t] (then EOS forever).

    Records the token ids fed to every step and checks that the state is threaded through.
    """

    def __init__(self, script, *, logits_rank=3):
        self.script = script
        self.logits_rank = logits_rank
        self.fed: list[list[int]] = []
        self.encoded = None

    def encode(self, source_ids):
        self.encoded = np.array(source_ids)
        return {"step": 0, "rows": source_ids.shape[0]}

    def step(self, token_ids, state):
        assert token_ids.shape == (state["rows"], 1)
        assert token_ids.dtype == np.int32
        t = state["step"]
        self.fed.append(token_ids[:, 0].tolist())
        logits = np.zeros((state["rows"], 1, VOCAB), np.float32)
        for row in range(state["rows"]):
            tokens = self.script[row]
            logits[row, 0, tokens[t] if t < len(tokens) else EOS_ID] = 1.0
        if self.logits_rank == 2:
            logits = logits[:, 0, :]
        return logits, {"step": t + 1, "rows": state["rows"]}

    @property
    def steps(self) -> int:
        return len(self.fed)


def decode(script, max_length=20, **kwargs):
    model = ScriptedModel(script)
    source = np.ones((len(script), 4), np.int32)
    return greedy_decode(model.encode, model.step, source, max_length=max_length, **kwargs), model


# --- greedy decoding ---------------------------------------------------------------------------
def test_greedy_decode_follows_the_argmax_and_drops_the_final_eos():
    outputs, _ = decode([[5, 6, 7, EOS_ID]])
    assert outputs == [[5, 6, 7]]


def test_first_step_is_fed_sos_and_later_steps_the_previous_argmax():
    _, model = decode([[5, 6, EOS_ID], [8, 4, EOS_ID]])
    assert model.fed == [[SOS_ID, SOS_ID], [5, 8], [6, 4]]


def test_argmax_picks_the_largest_logit_not_the_first_nonzero():
    def step(token_ids, state):
        logits = np.array([[0.1, 0.3, -2.0, 0.2, 0.9, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
        if state == 1:
            logits[0, EOS_ID] = 5.0
        return logits, state + 1

    assert greedy_decode(lambda s: 0, step, np.ones((1, 2), np.int32), max_length=5) == [[4]]


def test_encode_receives_the_source_ids_as_int32():
    _, model = decode([[EOS_ID]])
    assert model.encoded.dtype == np.int32
    assert model.encoded.shape == (1, 4)


def test_each_row_stops_at_its_first_eos():
    outputs, _ = decode([[5, EOS_ID, 6, 7, EOS_ID]])
    assert outputs == [[5]]


def test_output_never_contains_eos():
    outputs, _ = decode([[EOS_ID, 5], [4, EOS_ID], [4, 4, 4]], max_length=3)
    assert outputs == [[], [4], [4, 4, 4]]
    assert all(EOS_ID not in row for row in outputs)
    assert all(SOS_ID not in row for row in outputs)


def test_ids_are_returned_as_predicted_and_vocabulary_decode_drops_sos_and_pad():
    from keras_s2s.vocab import Vocabulary

    outputs, _ = decode([[5, SOS_ID, 6, EOS_ID]])
    assert outputs == [[5, SOS_ID, 6]]
    vocab = Vocabulary(["<pad>", "<unk>", "<s>", "</s>", "a", "b", "c"])
    assert vocab.decode(outputs[0]) == ["b", "c"]


def test_batched_rows_finish_independently():
    outputs, model = decode([[4, EOS_ID], [5, 6, 7, 8, EOS_ID], [EOS_ID], [9, 9, EOS_ID]])
    assert outputs == [[4], [5, 6, 7, 8], [], [9, 9]]
    assert model.steps == 5  # the loop ends when the last row emits EOS


def test_a_finished_row_ignores_what_the_model_predicts_later():
    outputs, _ = decode([[4, EOS_ID, 5, 6, 7], [4, 4, 4, 4, 4, EOS_ID]])
    assert outputs[0] == [4]


def test_decoding_stops_after_max_length_steps_without_eos():
    outputs, model = decode([[4] * 100, [5, EOS_ID]], max_length=7)
    assert outputs == [[4] * 7, [5]]
    assert model.steps == 7


def test_max_length_one_runs_a_single_step():
    outputs, model = decode([[4, 5, EOS_ID]], max_length=1)
    assert (outputs, model.steps) == ([[4]], 1)


@pytest.mark.parametrize("max_length", [0, -1])
def test_max_length_below_one_is_rejected(max_length):
    with pytest.raises(ValueError, match=rf"argument `max_length`, expected a positive integer, got {max_length}"):
        decode([[4, EOS_ID]], max_length=max_length)


def test_logits_may_be_rank_two():
    model = ScriptedModel([[6, 5, EOS_ID]], logits_rank=2)
    assert greedy_decode(model.encode, model.step, np.ones((1, 3), np.int32), max_length=9) == [[6, 5]]


def test_custom_sos_and_eos_ids_are_honoured():
    outputs, model = decode([[EOS_ID, 7, 8, 9]], sos_id=5, eos_id=8)
    assert outputs == [[EOS_ID, 7]]
    assert model.fed[0] == [5]


def test_pad_id_is_zero_and_distinct_from_sos_and_eos():
    assert len({PAD_ID, SOS_ID, EOS_ID}) == 3


# --- edit distance -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "a, b, distance",
    [
        ("kitten", "sitting", 3),
        ("sitting", "kitten", 3),
        ("flaw", "lawn", 2),
        ("intention", "execution", 5),
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("same", "same", 0),
        ("나는 집에", "너는 집에", 1),
        (["HH", "AH0", "L", "OW1"], ["HH", "EH0", "L", "OW1"], 1),
        (["a", "b"], ["b", "a"], 2),
        ([], ["x"], 1),
    ],
)
def test_edit_distance_golden_values(a, b, distance):
    assert edit_distance(a, b) == distance


def test_closest_reference_returns_distance_and_length_of_the_nearest():
    assert closest_reference("abc", ["abd", "xyzw", "abc"]) == (0, 3)
    assert closest_reference("ab", ["abc", "a"]) == (1, 1)  # ties: the shorter reference
    with pytest.raises(ValueError, match="no references"):
        closest_reference("ab", [])


# --- error rates with multiple references -----------------------------------------------------
def test_error_rates_golden_values_with_multiple_references():
    predictions = [
        ["a", "b", "c"],  # equals its only reference
        ["x", "y"],  # matches no reference; closest are x z (1 edit / 2) and x y w (1 edit / 3)
        ["p"],  # matches no reference; closest r (1 edit / 1)
        ["m", "n"],  # equals its second reference
    ]
    references = [
        [["a", "b", "c"]],
        [["x", "z"], ["x", "y", "w"], ["q", "q", "q"]],
        [["p", "q"], ["r"]],
        [["m"], ["m", "n"]],
    ]
    scores = error_rates(predictions, references)
    assert scores["sequence_accuracy"] == pytest.approx(2 / 4)
    assert scores["wer"] == pytest.approx(2 / 4)
    # token edits 0 + 1 + 1 + 0 over closest-reference lengths 3 + 2 + 1 + 2
    assert scores["per"] == pytest.approx(2 / 8)
    # characters of " ".join: "a b c" 0/5, "x y"~"x z" 1/3, "p"~"r" 1/1, "m n" 0/3
    assert scores["cer"] == pytest.approx(2 / 12)


def test_a_prediction_matching_any_reference_is_correct():
    scores = error_rates([["HH", "AH", "L", "OW"]], [[["HH", "EH", "L", "OW"], ["HH", "AH", "L", "OW"]]])
    assert scores == {"sequence_accuracy": 1.0, "wer": 0.0, "per": 0.0, "cer": 0.0}


def test_cer_uses_the_given_detokenizer():
    scores = error_rates([["a", "b"]], [[["a", "c"]]], detokenize="".join)
    assert scores["cer"] == pytest.approx(1 / 2)
    assert scores["per"] == pytest.approx(1 / 2)


def test_an_empty_prediction_counts_every_reference_token_as_an_error():
    scores = error_rates([[]], [[["a", "b", "c"]]])
    assert (scores["wer"], scores["per"]) == (1.0, 1.0)


def test_references_may_be_tuples():
    assert error_rates([["a"]], [[("a",)]])["sequence_accuracy"] == 1.0


def test_mismatched_numbers_of_predictions_and_references_is_an_error():
    with pytest.raises(ValueError, match="Received 2 predictions for 1 reference sets"):
        error_rates([["a"], ["b"]], [[["a"]]])


def test_no_predictions_is_an_error():
    with pytest.raises(ValueError, match="no predictions"):
        error_rates([], [])


def test_a_source_without_references_is_an_error():
    with pytest.raises(ValueError, match="no references"):
        error_rates([["a"]], [[]])
