"""Lab 1's deliberately slow ResNet-18 training on Fashion-MNIST: make it reach 0.88 within the budget.

    SUBMISSION_DIVISION=open ./run_and_time.sh 1        (from labs/lab1_fast_resnet/)

It trains vision/resnet18's model (same data, same evaluation, same target) but slowly, in three ways a
student should find by measuring (README.md, "What is slow"):

1. a tiny batch (lab.yaml: global_batch_size 16): eight times the optimizer steps and framework calls per image;
2. a per-image input pipeline with no data-loader workers: every image goes through PIL and torchvision's
   transforms in the training process, one at a time, before each step;
3. no learning-rate schedule (lab.yaml: no warmup, no decay): the constant rate neither starts gently nor anneals.

Everything else is resnet18's: the model file, AdamW, the evaluation of the 10,000 test images, the MLPerf log.
The log names benchmark resnet18, so the suite's checker judges it against vision/resnet18/benchmark.yaml (open
division); check_lab.py adds the lab's budget.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as transforms
import yaml
from torch.utils.data import DataLoader, Dataset

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESNET18 = REPO / "vision" / "resnet18"
sys.path[:0] = [str(REPO), str(RESNET18)]  # the harness, and resnet18's own model and data code

from common import benchmark  # noqa: E402
from common.runtime import parse_args  # noqa: E402
from common.training import TrainingRun, exit_now  # noqa: E402
from model import ResNetConfig, num_params, resnet18  # noqa: E402  (vision/resnet18/model.py)
from train import evaluate, load_fashion_mnist, make_normalize, make_optimizer  # noqa: E402  (vision/resnet18)

LAB = yaml.safe_load((HERE / "lab.yaml").read_text())


def lab_definition(smoke: bool) -> dict:
    """resnet18's definition with the lab's baseline overrides (or its smoke overrides); the code hash in the
    log's provenance is this lab folder's (definition['directory'])."""
    definition = benchmark.load(RESNET18, smoke=smoke)
    for section, values in LAB["smoke" if smoke else "baseline"].items():
        definition[section] = {**definition[section], **values}
    definition["directory"] = str(HERE)
    return definition


class PerImageFashionMNIST(Dataset):
    """Fashion-MNIST served one image at a time, through PIL and torchvision's transforms (slow on purpose)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float):
        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToImage(), transforms.ToDtype(torch.float32, scale=True),
                                             transforms.Normalize([mean], [std])])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = transforms.functional.to_pil_image(self.images[index])  # as image datasets decode files
        return self.transform(image), self.labels[index]


def main(argv=None) -> int:
    os.environ.setdefault("SUBMISSION_DIVISION", LAB["division"])
    args = parse_args(__doc__, argv)
    try:
        run = TrainingRun(lab_definition(args.smoke), args)
    except Exception as error:  # noqa: BLE001  (the harness's expected failures: one sentence)
        raise SystemExit(f"error: {error}") from None
    if run.dist.enabled:
        raise SystemExit("error: the lab's baseline runs in one process (unset NPROC)")
    hp, quality, device = run.hyperparameters, run.quality, run.device

    train_x, train_y, test_x, test_y = load_fashion_mnist(run.definition, run.data_dir)
    if quality.get("eval_max_images"):
        test_x, test_y = test_x[:quality["eval_max_images"]], test_y[:quality["eval_max_images"]]
    normalize = make_normalize(train_x)
    pixels = train_x.float().div(255)
    images = DataLoader(PerImageFashionMNIST(train_x, train_y, pixels.mean().item(), pixels.std().item()),
                        batch_size=run.global_batch, shuffle=True, drop_last=True, num_workers=0,
                        generator=torch.Generator().manual_seed(run.seed))
    model = resnet18(ResNetConfig(**run.model_config)).to(device)
    optimizer = make_optimizer(model, hp)  # AdamW at opt_base_learning_rate, never changed: no schedule
    run.log_hyperparameters(train_samples=len(train_x), eval_samples=len(test_x), model_parameters=num_params(model))

    batches = iter(images)
    for _ in run.steps():
        try:
            x, y = next(batches)
        except StopIteration:  # next epoch
            batches = iter(images)
            x, y = next(batches)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.step_done(loss)
        if run.eval_due():
            run.eval_result(evaluate(model, test_x, test_y, normalize, run.dist, device, quality["eval_batch"]))
    return run.finish(model)


if __name__ == "__main__":
    exit_now(main())
