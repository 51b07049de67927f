"""Reserved token ids and names shared by every vocabulary, model and export."""

PAD_ID = 0
UNK_ID = 1
SOS_ID = 2
EOS_ID = 3

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
SOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"

RESERVED_TOKENS = (PAD_TOKEN, UNK_TOKEN, SOS_TOKEN, EOS_TOKEN)

# Character-level tokenization shows a run of whitespace as this one visible token
# (as SentencePiece does), so vocabulary files never hold a bare space.
SPACE_TOKEN = "\u2581"

# Tensor names of the encoder and decoder graphs (keras_s2s.models builds them; the export
# signatures are read off the models; runtimes look outputs up by these names).
SOURCE_IDS = "source_ids"
TOKEN_IDS = "token_ids"
DECODER_INPUT_IDS = "decoder_input_ids"
LOGITS = "logits"
MEMORY = "memory"
SOURCE_MASK = "source_mask"
ATTENTION_WEIGHTS = "attention_weights"
# The attention memory projected once per source for the decoding loops (models.step_encoder).
ATTENTION_KEYS = "attention_keys"
ATTENTION_VALUES = "attention_values"
ATTENTION_CELL_VALUES = "attention_cell_values"  # Bahdanau: the context's part of the cell input
ATTENTION_BIAS = "attention_bias"

# Outputs of the greedy graph (keras_s2s.export.greedy).
OUTPUT_IDS = "output_ids"
OUTPUT_LENGTHS = "output_lengths"
LOG_PROB = "log_prob"
FINISHED = "finished"

# Inputs of the beam graph (keras_s2s.export.beam): the search's settings, per request.
BEAM_WIDTH = "beam_width"
NBEST = "nbest"
LENGTH_PENALTY = "length_penalty"

# The translate graph (keras_s2s.export.translate): strings in, strings out, and what was read.
TEXT_INPUT = "text"
OUTPUT_TEXT = "output_text"
SCORE = "score"
SOURCE_LENGTHS = "source_lengths"  # also the fused ONNX encoders' sequence_lens
TRUNCATED = "truncated"
UNKNOWN_TOKENS = "unknown_tokens"
