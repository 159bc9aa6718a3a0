"""The device-resident fast path trains to the same result as the usual DataLoader pipeline."""

import pytest
import torch
import torch.nn.functional as F

from experiments.config import config_from_dict
from experiments.data.augment import normalize
from experiments.data.sources import pixel_mean, synthetic_arrays
from experiments.train import train
from models import build_model

SETUP = {"preset": "demo", "arch": "resnet", "depth": 8, "width": 8, "image_size": 16, "train_size": 2048,
         "test_size": 512, "batch_size": 64, "max_steps": 240, "eval_every": 240, "log_every": 40,
         "checkpoint_every": 240, "response_images": 0, "wandb": "disabled", "seed": 0}  # fmt: skip


def _reference_pipeline_error() -> float:
    """Same data, init and schedule through torchvision per-image transforms, a DataLoader and a bare loop."""
    from torchvision import transforms

    cfg = config_from_dict(SETUP)
    train_set, test_set = synthetic_arrays(10, 16, 2048, 512, seed=0)
    mean = pixel_mean(train_set.images)
    augment = transforms.Compose([transforms.RandomCrop(16, padding=4), transforms.RandomHorizontalFlip()])

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(train_set)

        def __getitem__(self, i):
            return augment(normalize(train_set.images[i : i + 1], mean)[0]), train_set.labels[i]

    torch.manual_seed(0)
    net = build_model("resnet", 8, "cifar10", width=8, num_classes=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[120, 180], gamma=0.1)
    loader = torch.utils.data.DataLoader(
        Data(), batch_size=64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(1)
    )
    step = 0
    net.train()
    while step < cfg.max_steps:
        for x, y in loader:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == cfg.max_steps:
                break
    net.eval()
    with torch.no_grad():
        logits = net(normalize(test_set.images, mean))
    return 100.0 * (logits.argmax(1) != test_set.labels).float().mean().item()


@pytest.mark.integration
def test_fast_path_matches_the_reference_pipeline_within_tolerance(tmp_path):
    (summary,) = train(config_from_dict({**SETUP, "runs_dir": str(tmp_path)}), echo=lambda *a, **k: None).values()
    fast = summary["final_test_error"]
    reference = _reference_pipeline_error()
    print(f"test error: fast path {fast:.2f}%, reference pipeline {reference:.2f}%")
    assert fast < 40 and reference < 40, "both learn the task"
    assert abs(fast - reference) < 6.0, "same distribution of batches, same recipe: same result within noise"
