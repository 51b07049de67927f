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
