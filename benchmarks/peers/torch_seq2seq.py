"""PyTorch reference of the default G2P model, for benchmarks only (run in the peer venv).

    benchmarks/.peer-venv/bin/python benchmarks/peers/torch_seq2seq.py train  --data DIR --pairs 40000 --epochs 3
    benchmarks/.peer-venv/bin/python benchmarks/peers/torch_seq2seq.py decode --weights W.npz --words WORDS.json --batch 1

Same model as keras-s2s' default config: Embedding 64 -> LSTM 256 encoder, its final (h, c)
the initial state of an Embedding 64 -> LSTM 256 decoder, Dense to the target vocabulary;
sources reversed, PAD=0, SOS=2, EOS=3. Training: teacher forcing, masked cross-entropy,
Adam (lr 2e-3, clipnorm 1), batch 128, batches bucketed by length (width 4, as ours) and
packed sequences for the encoder (oneDNN LSTM). Decoding: greedy, with weights copied from
the trained Keras model (Keras' LSTM gate order i, f, c, o equals PyTorch's i, f, g, o), so
the outputs can be compared with ours. Prints one JSON line with the measurements.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAD, UNK, SOS, EOS = 0, 1, 2, 3


class Seq2Seq(nn.Module):
    def __init__(self, source_vocab: int, target_vocab: int, embedding: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(source_vocab, embedding)
        self.encoder = nn.LSTM(embedding, hidden, batch_first=True)
        self.target_embedding = nn.Embedding(target_vocab, embedding)
        self.decoder = nn.LSTM(embedding, hidden, batch_first=True)
        self.logits = nn.Linear(hidden, target_vocab)

    def encode(self, source_ids: torch.Tensor, lengths: torch.Tensor):
        packed = nn.utils.rnn.pack_padded_sequence(
            self.source_embedding(source_ids), lengths, batch_first=True, enforce_sorted=False
        )
        _, state = self.encoder(packed)
        return state

    def forward(self, source_ids, lengths, decoder_input_ids):
        outputs, _ = self.decoder(self.target_embedding(decoder_input_ids), self.encode(source_ids, lengths))
        return self.logits(outputs)

    def load_keras_weights(self, weights: dict) -> None:
        def lstm(module: nn.LSTM, prefix: str) -> None:
            module.weight_ih_l0.data = torch.from_numpy(weights[f"{prefix}/kernel"].T.copy())
            module.weight_hh_l0.data = torch.from_numpy(weights[f"{prefix}/recurrent_kernel"].T.copy())
            module.bias_ih_l0.data = torch.from_numpy(weights[f"{prefix}/bias"].copy())
            module.bias_hh_l0.data.zero_()

        self.source_embedding.weight.data = torch.from_numpy(weights["encoder/embedding"])
        self.target_embedding.weight.data = torch.from_numpy(weights["decoder/embedding"])
        lstm(self.encoder, "encoder/lstm")
        lstm(self.decoder, "decoder/lstm")
        self.logits.weight.data = torch.from_numpy(weights["decoder/logits/kernel"].T.copy())
        self.logits.bias.data = torch.from_numpy(weights["decoder/logits/bias"])


@torch.no_grad()
def greedy(model: Seq2Seq, source_ids: torch.Tensor, lengths: torch.Tensor, max_length: int) -> list[list[int]]:
    state = model.encode(source_ids, lengths)
    tokens = torch.full((len(source_ids), 1), SOS, dtype=torch.long)
    done = torch.zeros(len(source_ids), dtype=torch.bool)
    steps = []
    for _ in range(max_length):
        outputs, state = model.decoder(model.target_embedding(tokens), state)
        tokens = model.logits(outputs[:, -1]).argmax(-1, keepdim=True)
        steps.append(tokens[:, 0])
        done |= tokens[:, 0] == EOS
        if bool(done.all()):
            break
    ids = torch.stack(steps, 1).tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in ids]


def read_vocab(path: Path) -> dict[str, int]:
    return {token: index for index, token in enumerate(path.read_text(encoding="utf-8").splitlines())}


def train(args) -> dict:
    source_vocab, target_vocab = read_vocab(args.data / "source_vocab.txt"), read_vocab(args.data / "target_vocab.txt")
    pairs = []
    for line in (args.data / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()[: args.pairs]:
        word, phones = line.split("\t")
        source = [source_vocab.get(c, UNK) for c in word.lower()][::-1]
        target = [target_vocab.get(p, UNK) for p in phones.split()]
        pairs.append((source, target))
    target_tokens = sum(len(t) + 1 for _, t in pairs)
    random.seed(0)
    torch.manual_seed(0)
    model = Seq2Seq(len(source_vocab), len(target_vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)

    def batches():
        buckets: dict[int, list] = {}
        order = list(range(len(pairs)))
        random.shuffle(order)
        for index in order:
            source, target = pairs[index]
            key = -(-max(len(source), len(target) + 1) // 4)
            buckets.setdefault(key, []).append(pairs[index])
            if len(buckets[key]) == 128:
                yield buckets.pop(key)
        yield from (bucket for bucket in buckets.values() if bucket)

    def tensors(batch):
        width = -(-max(max(len(s), len(t) + 1) for s, t in batch) // 4) * 4
        source = torch.zeros(len(batch), width, dtype=torch.long)
        decoder_input = torch.zeros(len(batch), width, dtype=torch.long)
        target = torch.zeros(len(batch), width, dtype=torch.long)
        for row, (s, t) in enumerate(batch):
            source[row, : len(s)] = torch.tensor(s)
            decoder_input[row, : len(t) + 1] = torch.tensor([SOS] + t)
            target[row, : len(t) + 1] = torch.tensor(t + [EOS])
        return source, torch.tensor([len(s) for s, _ in batch]), decoder_input, target

    epoch_seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for batch in batches():
            source, lengths, decoder_input, target = tensors(batch)
            logits = model(source, lengths, decoder_input)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
    steady = statistics.median(epoch_seconds[1:]) if len(epoch_seconds) > 1 else epoch_seconds[0]
    return {"epoch_seconds": epoch_seconds, "target_tokens": target_tokens, "tokens_per_second": target_tokens / steady,
            "final_loss": float(loss)}


def decode(args) -> dict:
    weights = dict(np.load(args.weights))
    words = json.loads(args.words.read_text(encoding="utf-8"))
    source_vocab = {t: i for i, t in enumerate(json.loads(str(weights["source_vocab"])))}
    model = Seq2Seq(int(weights["source_vocab_size"]), int(weights["target_vocab_size"]))
    model.load_keras_weights(weights)
    model.eval()
    rows = [[source_vocab.get(c, UNK) for c in word.lower()][::-1] for word in words]

    def run(batch_rows):
        lengths = torch.tensor([len(r) for r in batch_rows])
        source = torch.zeros(len(batch_rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(batch_rows):
            source[i, : len(r)] = torch.tensor(r)
        return greedy(model, source, lengths, int(weights["max_decode_length"]))

    run(rows[:8])
    start = time.perf_counter()
    outputs = []
    for begin in range(0, len(rows), args.batch):
        outputs.extend(run(rows[begin : begin + args.batch]))
    seconds = time.perf_counter() - start
    return {"words_per_second": len(rows) / seconds, "outputs": outputs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "decode"])
    parser.add_argument("--data", type=Path, help="a keras-s2s run directory (data/train.tsv, vocabularies)")
    parser.add_argument("--pairs", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--words", type=Path)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(train(args) if args.mode == "train" else decode(args)))


if __name__ == "__main__":
    main()
