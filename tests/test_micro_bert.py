"""language/micro_bert: SST-2 read as GLUE ships it, a BPE tokenizer learnt from the training sentences only
and deterministically, an encoder whose logits never depend on what sits in the padding, baselines measured, and a
leak check: the dev set drives no part of training, it is only scored."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common import benchmark
from conftest import workload_modules

DEFINITION = benchmark.load("micro_bert")
_baselines, _model, _train = workload_modules("micro_bert", "baselines", "model", "train")
CFG = DEFINITION["model"]


def _path(data_dir: Path, name: str) -> Path:
    return data_dir / next(e["path"] for e in DEFINITION["dataset"]["files"] if e["path"].endswith(name))


@pytest.fixture(scope="module")
def sst2(data_dir):
    return _train.read_sst2(_path(data_dir, "train.tsv")), _train.read_sst2(_path(data_dir, "dev.tsv"))


def test_glue_files_as_published(sst2):
    (train_sentences, train_labels), (dev_sentences, dev_labels) = sst2
    assert len(train_sentences) == 67349 and train_labels.sum().item() == 37569  # GLUE's SST-2: 67,349 train rows
    assert len(dev_sentences) == 872 and dev_labels.sum().item() == 444          # and 872 dev sentences
    assert dev_sentences[0] == "it 's a charming and often affecting journey ." and dev_labels[0] == 1


def test_a_file_that_is_not_sst2_is_refused_in_one_sentence(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(SystemExit, match="is not a GLUE SST-2 file"):
        _train.read_sst2(bad)
    bad.write_text("sentence\tlabel\nfine\tpositive\n")
    with pytest.raises(SystemExit, match="has a row that is not"):
        _train.read_sst2(bad)


def test_tokenizer_is_deterministic_bert_style_and_learnt_from_training_sentences_only(sst2):
    (train_sentences, _), (dev_sentences, _) = sst2
    first = _train.train_tokenizer(train_sentences, CFG["vocab_size"], CFG["max_len"])
    second = _train.train_tokenizer(list(train_sentences), CFG["vocab_size"], CFG["max_len"])
    assert first.get_vocab() == second.get_vocab() and first.get_vocab_size() == CFG["vocab_size"]
    assert [first.token_to_id(t) for t in _train.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoding = first.encode("It's UNFLINCHINGLY bleak!")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]"
    assert all(t == t.lower() for t in encoding.tokens[1:-1]) and "'" in encoding.tokens  # lower-cased, split on punctuation
    # A tokenizer learnt with the dev sentences added would differ: the one used is learnt without them.
    with_dev = _train.train_tokenizer(train_sentences + dev_sentences * 20, CFG["vocab_size"], CFG["max_len"])
    assert with_dev.get_vocab() != first.get_vocab()
    assert max(len(e.ids) for e in first.encode_batch(dev_sentences)) < CFG["max_len"]  # no dev sentence is cut


def test_the_libraries_wordpiece_trainer_is_not_deterministic_which_is_why_bpe_is_used(sst2):
    """If this starts failing, `tokenizers` made its WordPiece trainer deterministic and train.py could use it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    (train_sentences, _), _ = sst2
    vocabularies = []
    for _ in range(2):
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tokenizer.normalizer, tokenizer.pre_tokenizer = normalizers.BertNormalizer(), pre_tokenizers.BertPreTokenizer()
        tokenizer.train_from_iterator(train_sentences, trainers.WordPieceTrainer(vocab_size=CFG["vocab_size"],
                                                                                 show_progress=False))
        vocabularies.append(tokenizer.get_vocab())
    assert vocabularies[0] != vocabularies[1]


def test_padding_never_changes_the_logits():
    torch.manual_seed(0)
    model = _model.SentenceEncoder(_model.EncoderConfig(**CFG)).eval()
    ids = torch.randint(5, CFG["vocab_size"], (4, 12))
    lengths = torch.tensor([12, 7, 3, 1])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    padded = torch.where(mask, ids, _train.PAD_ID)
    logits = model(padded, mask)
    garbage = torch.where(mask, ids, torch.randint(0, CFG["vocab_size"], ids.shape))  # any ids in the padding
    assert torch.allclose(model(garbage, mask), logits, atol=1e-6)
    wider = torch.cat([padded, torch.randint(0, CFG["vocab_size"], (4, 5))], dim=1)  # more padding columns
    assert torch.allclose(model(wider, torch.cat([mask, torch.zeros(4, 5, dtype=torch.bool)], 1)), logits, atol=1e-6)
    alone = model(padded[3:, :1], mask[3:, :1])  # a row scored by itself, without padding, gives the same logits
    assert torch.allclose(alone, logits[3:], atol=1e-6)


def test_batches_are_cut_to_their_longest_row():
    ids = torch.arange(20).view(4, 5)
    x, mask = _train.batch_of(ids, torch.tensor([5, 2, 3, 1]), torch.tensor([1, 3, 2]))
    assert x.tolist() == [[5, 6, 7], [15, 16, 17], [10, 11, 12]]
    assert mask.tolist() == [[True, True, False], [True, False, False], [True, True, True]]


def test_parameter_count_and_the_definition_reaches_the_model():
    model = _model.SentenceEncoder(_model.EncoderConfig(**CFG))
    d, ff, layers = CFG["d_model"], CFG["d_ff"], CFG["layers"]
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)  # 2 LayerNorms, qkv, proj, MLP
    expected = CFG["vocab_size"] * d + CFG["max_len"] * d + layers * block + 2 * d + d * 2 + 2
    assert model.num_params() == expected == 1_453_826
    assert len(model.blocks) == layers and model.blocks[0].attn.heads == CFG["heads"]


def test_baselines_and_the_target_is_honest(data_dir):
    accuracy = _baselines.baseline_accuracy(DEFINITION, data_dir)
    assert accuracy["majority class"] == pytest.approx(444 / 872)
    bag_of_words = accuracy["bag of words (unigrams + bigrams), logistic regression"]
    assert 0.80 < bag_of_words < 0.84  # the classic linear baseline of SST-2 (GLUE reports ~0.82 for BoW models)
    assert DEFINITION["quality"]["target"] >= 0.78 and DEFINITION["quality"]["target"] > accuracy["majority class"] + 0.25


def _events(log: Path) -> list[dict]:
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.read_text().splitlines() if ":::MLLOG" in line]


def test_the_dev_set_drives_no_part_of_training(data_dir, tmp_path, monkeypatch):
    """Replacing the dev sentences (and flipping their labels) leaves the tokenizer and the logged training losses
    unchanged bit for bit; only the evaluation moves (to exactly 1 - accuracy, as every label is flipped)."""
    real_reader = _train.read_sst2
    dev_file = _path(data_dir, "dev.tsv")

    def changed(path):
        sentences, labels = real_reader(path)
        if Path(path) != dev_file:
            return sentences, labels
        return [s + " a completely different ending" for s in sentences], 1 - labels

    runs, vocabularies, train_ids = {}, {}, {}
    for name, reader in (("real", real_reader), ("changed", changed)):
        monkeypatch.setattr(_train, "read_sst2", reader)
        data = _train.load_data(data_dir, benchmark.load("micro_bert", smoke=True))
        vocabularies[name], train_ids[name] = data["tokenizer"].get_vocab(), data["train"][0]
        log = tmp_path / f"{name}.txt"
        _train.main(["--seed", "3", "--smoke", "--data-dir", str(data_dir), "--log-file", str(log), "--device", "cpu"])
        runs[name] = _events(log)

    def logged(events, key):
        return [e["value"] for e in events if e["key"] == key]

    assert vocabularies["real"] == vocabularies["changed"] and torch.equal(train_ids["real"], train_ids["changed"])
    assert logged(runs["real"], "train_loss") and logged(runs["real"], "train_loss") == logged(runs["changed"], "train_loss")
    real, other = logged(runs["real"], "eval_accuracy"), logged(runs["changed"], "eval_accuracy")
    assert real and len(real) == len(other) and all(a + b == pytest.approx(1.0) for a, b in zip(real, other))


def test_smoke_run_succeeds(smoke_logs):
    _, _, events = smoke_logs("micro_bert")
    stop = [e for e in events if e["key"] == "run_stop"][-1]
    assert stop["metadata"]["status"] == "success"
