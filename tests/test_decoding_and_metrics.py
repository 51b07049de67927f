"""The sequence metrics (edit distance, multi-reference error rates) on golden values.
(Decoding is tested in test_decoding.py.)"""

import pytest

from keras_s2s.metrics import (
    closest_reference,
    corpus_bleu_chrf,
    edit_distance,
    error_rates,
    paired_comparison,
    word_errors,
)


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


def test_edit_distance_compares_token_lists_token_by_token_not_character_by_character():
    assert edit_distance(["abc"], ["xyz"]) == 1  # one substituted token, not 3 characters
    assert edit_distance(["HH", "AH0"], ["HH", "AH0", "L"]) == 1
    assert edit_distance(("ab", "c"), ["a", "bc"]) == 2  # same characters, different tokens
    assert edit_distance(["나는", "집에"], ["너는", "집에"]) == 1


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


def test_word_errors_marks_the_sources_whose_prediction_matches_no_reference():
    predictions = [["a"], ["b"], ["c", "d"]]
    references = [[["a"]], [["x"], ("b",)], [["c"]]]
    assert word_errors(predictions, references) == [False, False, True]


# --- two models on the same sources ---------------------------------------------------------------
def test_paired_comparison_golden_mcnemar_p_value():
    # 10 sources only A gets wrong, 2 only B, 88 both right: 12 fair coins under "equally good",
    # two-sided p = 2 * P(X <= 2), X ~ Binomial(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    errors_a = [True] * 10 + [False] * 2 + [False] * 88
    errors_b = [False] * 10 + [True] * 2 + [False] * 88
    result = paired_comparison(errors_a, errors_b)
    assert result["p_value"] == pytest.approx(2 * 79 / 4096)
    assert (result["only_a_wrong"], result["only_b_wrong"], result["sources"]) == (10, 2, 100)
    assert (result["wer_a"], result["wer_b"]) == (pytest.approx(0.10), pytest.approx(0.02))
    assert result["difference"] == pytest.approx(-0.08)


def test_sources_both_models_get_wrong_or_right_do_not_move_the_test():
    base = paired_comparison([True, True, False], [False, False, False])
    padded = paired_comparison([True, True, False] + [True] * 50 + [False] * 50, [False, False, False] + [True] * 50 + [False] * 50)
    assert base["p_value"] == padded["p_value"] == pytest.approx(0.5)  # 2 * P(X <= 0), X ~ Binomial(2, 1/2)


def test_equal_models_have_p_value_one_and_a_zero_interval():
    errors = [True, False, False, True]
    result = paired_comparison(errors, errors)
    assert result["p_value"] == 1.0
    assert result["difference"] == result["interval_low"] == result["interval_high"] == 0.0


def test_paired_bootstrap_interval_matches_the_normal_approximation():
    # 1,000 sources, 60 only A gets wrong, 20 only B: WER difference -0.04 with standard error
    # sqrt((0.06 + 0.02 - 0.04**2) / 1000) = 0.00885, so the 95% interval is about -0.04 +- 0.0174.
    errors_a = [True] * 60 + [False] * 20 + [False] * 920
    errors_b = [False] * 60 + [True] * 20 + [False] * 920
    result = paired_comparison(errors_a, errors_b)
    assert result["interval_low"] == pytest.approx(-0.0574, abs=0.002)
    assert result["interval_high"] == pytest.approx(-0.0226, abs=0.002)
    assert result["p_value"] < 1e-5
    assert paired_comparison(errors_a, errors_b) == result  # seeded: the same interval every time
    assert paired_comparison(errors_a, errors_b, seed=1)["interval_low"] != result["interval_low"]


def test_paired_comparison_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="3 results for model A and 2"):
        paired_comparison([True, False, True], [True, False])
    with pytest.raises(ValueError, match="no sources"):
        paired_comparison([], [])


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


# --- BLEU and chrF (sacrebleu) -----------------------------------------------------------------
# sacrebleu's README example for a variable number of references: BLEU = 29.44.
SYSTEM = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
VARIABLE_REFERENCES = [
    ["The dog had bit the man."],
    ["It was not unexpected.", "No one was surprised."],
    ["The man bit him first.", "The man had bitten the dog."],
]


def test_corpus_bleu_with_a_variable_number_of_references_matches_sacrebleus_documented_value():
    scores = corpus_bleu_chrf(SYSTEM, VARIABLE_REFERENCES)
    assert scores["bleu"] == pytest.approx(29.44, abs=0.005)
    assert scores["chrf"] == pytest.approx(51.70, abs=0.005)
    assert scores["bleu_signature"].startswith("nrefs:var|")
    assert scores["chrf_signature"].startswith("nrefs:var|")


def test_reference_order_within_a_source_does_not_matter():
    reordered = [list(reversed(refs)) for refs in VARIABLE_REFERENCES]
    assert corpus_bleu_chrf(SYSTEM, reordered) == corpus_bleu_chrf(SYSTEM, VARIABLE_REFERENCES)


def test_an_output_equal_to_any_reference_scores_100():
    scores = corpus_bleu_chrf(["a b c d e", "f g h i j"], [["a b c d e"], ["x y z", "f g h i j"]])
    assert (scores["bleu"], scores["chrf"]) == (pytest.approx(100.0), pytest.approx(100.0))
    assert corpus_bleu_chrf(["q"], [["a b c d e"]])["bleu"] == 0.0


@pytest.mark.parametrize(
    "hypotheses, references, message",
    [(["a"], [["a"], ["b"]], "1 hypotheses for 2"), ([], [], "no hypotheses"), (["a"], [[]], "no references")],
)
def test_corpus_bleu_chrf_rejects_mismatched_or_empty_input(hypotheses, references, message):
    with pytest.raises(ValueError, match=message):
        corpus_bleu_chrf(hypotheses, references)
