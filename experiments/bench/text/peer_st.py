"""The peer side of the text benchmark (run.sh): sentence-transformers on PyTorch, CPU, loading the
same model folder once, then embedding the sentences REPS times at a batch size; prints one JSON
line with the median sentences per second.

usage: peer_st.py MODEL_DIR SENTENCES.txt BATCH REPS THREADS"""
import json
import statistics
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    model_dir, path, batch, reps, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    torch.set_num_threads(threads)
    sentences = [s for s in open(path, encoding="utf-8").read().split("\n") if s]
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(sentences[:8], batch_size=batch)  # warm-up
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        model.encode(sentences, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        rates.append(len(sentences) / (time.perf_counter() - t0))
    print(json.dumps({"sentences": len(sentences), "batch": batch, "sentences_per_s": statistics.median(rates),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
