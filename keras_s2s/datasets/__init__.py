"""Built-in datasets: CMUdict grapheme-to-phoneme and a tiny English -> Korean toy set."""

from keras_s2s.datasets.cmudict_g2p import cmudict_pairs, write_cmudict_splits
from keras_s2s.datasets.splits import hash_bucket, split_of
from keras_s2s.datasets.toy import TOY_TSV, toy_pairs

__all__ = ["TOY_TSV", "cmudict_pairs", "hash_bucket", "split_of", "toy_pairs", "write_cmudict_splits"]
