"""Baselines for the quality target, scored exactly like the benchmark: accuracy on the 872 GLUE SST-2 dev
sentences.

- majority class: every sentence gets the training set's most frequent label (positive);
- bag of words: scikit-learn's logistic regression (default regularisation C = 1, lbfgs) on unigram and bigram
  counts of the lower-cased words (CountVectorizer's default tokenisation), the classic strong linear baseline.

Both are fitted on the 67,349 training rows only; nothing is tuned on dev (the defaults are used as they are).

    python language/micro_bert/baselines.py [--data-dir data]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from common import benchmark  # noqa: E402
from train import read_sst2  # noqa: E402


def baseline_accuracy(definition: dict, data_dir: Path) -> dict:
    files = {Path(e["path"]).name: Path(data_dir) / e["path"] for e in definition["dataset"]["files"]}
    train_sentences, train_labels = read_sst2(files[definition["dataset"]["train_file"]])
    dev_sentences, dev_labels = read_sst2(files[definition["dataset"]["test_file"]])
    majority = int(torch.bincount(train_labels).argmax())
    vectorizer = CountVectorizer(ngram_range=(1, 2), lowercase=True)
    classifier = LogisticRegression(max_iter=2000)
    classifier.fit(vectorizer.fit_transform(train_sentences), train_labels.numpy())
    predicted = torch.from_numpy(classifier.predict(vectorizer.transform(dev_sentences)))
    return {"majority class": (dev_labels == majority).double().mean().item(),
            "bag of words (unigrams + bigrams), logistic regression": (predicted == dev_labels).double().mean().item()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args()
    definition = benchmark.load(HERE)
    for name, accuracy in baseline_accuracy(definition, args.data_dir).items():
        print(f"{name:<58} dev accuracy {accuracy:.4f}")
    print(f"{'target':<58} dev accuracy {definition['quality']['target']}")
