"""Train a small BERT-style encoder from scratch on SST-2 until its accuracy on the GLUE dev set reaches the target.

    python language/micro_bert/train.py --seed 1 [--smoke] [--data-dir data] [--log-file out.txt]
    torchrun --nproc_per_node 2 language/micro_bert/train.py --seed 1 ...   (DDP; same global batch)

SST-2 as GLUE distributes it: 67,349 training phrases and sentences of movie reviews and 872 dev sentences, each
labelled positive (1) or negative (0). A byte-pair-encoding tokenizer (Hugging Face `tokenizers`, BERT's lower-casing
normaliser and pre-tokeniser) is trained on the training sentences only, before the clock starts; the encoder of
model.py is trained on them with cross-entropy; the score is the fraction of dev sentences classified correctly.
All numbers come from benchmark.yaml.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # repository root, for `common` (see common/__init__.py)

from common.training import TrainingRun, exit_now  # noqa: E402
from model import EncoderConfig, SentenceEncoder  # noqa: E402

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0-4, in this order (BERT's names)
PAD_ID = 0


def read_sst2(path: Path) -> tuple[list[str], torch.Tensor]:
    """(sentences, labels) of a GLUE SST-2 file: a `sentence<TAB>label` header, then one row per example."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        raise SystemExit(f"error: {path} is not a GLUE SST-2 file (its header is not 'sentence<TAB>label')")
    rows = [line.rsplit("\t", 1) for line in lines[1:]]
    if any(len(row) != 2 or row[1] not in ("0", "1") for row in rows):
        raise SystemExit(f"error: {path} has a row that is not 'sentence<TAB>0' or 'sentence<TAB>1'")
    return [row[0].strip() for row in rows], torch.tensor([int(row[1]) for row in rows])


def train_tokenizer(sentences: list[str], vocab_size: int, max_len: int) -> Tokenizer:
    """A BERT-style subword tokenizer learnt from `sentences` alone: BERT's normaliser (lower-cased, accents
    stripped) and pre-tokeniser (split on whitespace and punctuation), then byte-pair-encoding merges of characters
    up to vocab_size tokens; encodings are [CLS] sentence [SEP], truncated to max_len tokens.
    BPE rather than BERT's WordPiece: the `tokenizers` WordPiece trainer numbers its '##' continuation characters in
    hash-map order, so two trainings on the same sentences give different vocabularies (a test shows the BPE trainer
    does not: its alphabet is sorted and ties between merges are broken by token id)."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.BPEDecoder()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")),
                                                 ("[SEP]", tokenizer.token_to_id("[SEP]"))])
    tokenizer.enable_truncation(max_length=max_len)
    return tokenizer


def encode(tokenizer: Tokenizer, sentences: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (N, max_len) padded with PAD_ID, lengths (N,)) of the sentences."""
    encodings = tokenizer.encode_batch(sentences)
    ids = torch.full((len(sentences), max_len), PAD_ID, dtype=torch.long)
    lengths = torch.tensor([len(e.ids) for e in encodings])
    for row, encoding in enumerate(encodings):
        ids[row, :len(encoding.ids)] = torch.tensor(encoding.ids)
    return ids, lengths


def batch_of(ids: torch.Tensor, lengths: torch.Tensor, rows: torch.Tensor):
    """(ids, mask) of the given rows, cut to the longest of them: mask is True at real tokens."""
    width = int(lengths[rows].max())
    mask = torch.arange(width)[None, :] < lengths[rows][:, None]
    return ids[rows, :width], mask


def load_data(run_or_dir, definition: dict) -> dict:
    """The training and dev sets, tokenised with a tokenizer trained on the training sentences only."""
    data_dir = Path(run_or_dir)
    files = {Path(entry["path"]).name: data_dir / entry["path"] for entry in definition["dataset"]["files"]}
    train_sentences, train_labels = read_sst2(files[definition["dataset"]["train_file"]])
    dev_sentences, dev_labels = read_sst2(files[definition["dataset"]["test_file"]])
    cfg = definition["model"]
    tokenizer = train_tokenizer(train_sentences, cfg["vocab_size"], cfg["max_len"])
    return {"tokenizer": tokenizer,
            "train": (*encode(tokenizer, train_sentences, cfg["max_len"]), train_labels),
            "dev": (*encode(tokenizer, dev_sentences, cfg["max_len"]), dev_labels)}


@torch.no_grad()
def evaluate(model, split, ctx, device, batch: int) -> float:
    """Accuracy over every row of `split` (ids, lengths, labels); each rank scores a shard, the counts are
    all-reduced."""
    ids, lengths, labels = split
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)
    chunks = torch.arange(len(labels)).split(batch)
    for rows in chunks[ctx.rank::ctx.world_size]:
        x, mask = batch_of(ids, lengths, rows)
        predicted = model(x.to(device), mask.to(device)).argmax(-1)
        totals += torch.stack([(predicted == labels[rows].to(device)).sum().double(),
                               torch.tensor(float(len(rows)), dtype=torch.float64, device=device)])
    ctx.all_reduce_sum(totals)
    model.train()
    return (totals[0] / totals[1]).item()


def learning_rate(step: int, hp: dict) -> float:
    """Linear warmup from 0 to the base rate, then linear decay to the end rate at the decay step."""
    base, end = hp["opt_base_learning_rate"], hp["opt_end_learning_rate"]
    warmup, decay = hp["opt_learning_rate_warmup_steps"], hp["opt_learning_rate_decay_steps"]
    if step < warmup:
        return base * (step + 1) / warmup
    if step >= decay:
        return end
    return end + (base - end) * (decay - step) / (decay - warmup)


def main(argv=None) -> int:
    run = TrainingRun.from_command_line(__doc__, HERE, argv)
    hp, quality, device = run.hyperparameters, run.quality, run.device

    data = load_data(run.data_dir, run.definition)
    train_ids, train_lengths, train_labels = data["train"]
    model = SentenceEncoder(EncoderConfig(**run.model_config)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["opt_base_learning_rate"],
                                  betas=(hp["opt_adamw_beta_1"], hp["opt_adamw_beta_2"]),
                                  eps=hp["opt_adamw_epsilon"], weight_decay=hp["opt_adamw_weight_decay"])
    ddp_model = run.distributed(model)
    # The same permutation of the training rows on every rank each epoch (the last partial batch is dropped).
    sampler = torch.Generator().manual_seed(run.seed)
    steps_per_epoch = len(train_labels) // run.global_batch
    run.log_hyperparameters(train_samples=len(train_labels), eval_samples=len(data["dev"][2]),
                            model_parameters=model.num_params())

    for step in run.steps():
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(train_labels), generator=sampler)
        rows = run.rank_slice(order[(step % steps_per_epoch) * run.global_batch:][:run.global_batch])
        x, mask = batch_of(train_ids, train_lengths, rows)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, hp)
        loss = F.cross_entropy(ddp_model(x.to(device), mask.to(device)), train_labels[rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["opt_gradient_clip_norm"])
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, data["dev"], run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
