"""The paper's learning-rate policies, counted in iterations."""

import math

from experiments.config import config_from_dict
from experiments.training.schedule import LRPolicy


def test_cifar_paper_schedule_divides_at_32k_and_48k():
    policy = LRPolicy.from_config(config_from_dict({"preset": "cifar10-paper", "arch": "resnet", "depth": 56}))
    assert policy.milestone_steps == (32_000, 48_000)
    lrs = [policy.lr(s) for s in (0, 31_999, 32_000, 47_999, 48_000, 63_999)]
    assert [round(x, 6) for x in lrs] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_schedule_scales_with_max_steps_for_demos():
    policy = LRPolicy.from_config(config_from_dict({"preset": "cifar10-paper", "max_steps": 640}))
    assert policy.milestone_steps == (320, 480)


def test_resnet110_warmup_runs_at_001_then_returns_to_01_and_the_schedule():
    policy = LRPolicy.from_config(config_from_dict({"preset": "cifar10-paper", "arch": "resnet", "depth": 110}))
    assert policy.warmup and policy.lr(0) == 0.01
    policy.observe_train_error(300, 85.0)
    assert policy.lr(300) == 0.01
    policy.observe_train_error(400, 79.0)
    assert policy.lr(400) == 0.1 and policy.warmup_ended_at == 400
    policy.observe_train_error(500, 90.0)
    assert policy.lr(500) == 0.1, "warm-up never comes back"
    assert math.isclose(policy.lr(32_000), 0.01) and math.isclose(policy.lr(48_000), 0.001)


def test_plateau_divides_once_per_plateau():
    policy = LRPolicy.from_config(config_from_dict({"preset": "imagenet-paper", "dataset": "imagenet", "depth": 34}))
    assert policy.kind == "plateau" and policy.patience == 3
    for err in (60, 50, 40):
        policy.observe_val_error(err)
    assert policy.lr(0) == 0.1
    for err in (40.05, 40.0, 39.95):
        policy.observe_val_error(err)
    assert math.isclose(policy.lr(0), 0.01)
    policy.observe_val_error(39.9)
    policy.observe_val_error(39.9)
    assert math.isclose(policy.lr(0), 0.01), "a second division needs a full new plateau"
    policy.observe_val_error(39.9)
    assert math.isclose(policy.lr(0), 0.001)
    policy.observe_val_error(30.0)
    assert policy.bad_evals == 0


def test_state_round_trips_through_a_checkpoint():
    cfg = config_from_dict({"preset": "imagenet-paper", "dataset": "imagenet", "depth": 34})
    a = LRPolicy.from_config(cfg)
    for err in (50, 50, 50, 50):
        a.observe_val_error(err)
    b = LRPolicy.from_config(cfg)
    b.load_state_dict(a.state_dict())
    assert b.lr(0) == a.lr(0) and b.bad_evals == a.bad_evals and b.best_error == a.best_error
    fresh = LRPolicy.from_config(cfg)
    fresh.load_state_dict(LRPolicy.from_config(cfg).state_dict())
    assert fresh.best_error == math.inf
