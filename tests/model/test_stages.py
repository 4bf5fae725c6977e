"""Each training stage trains exactly its part of the model, at its own learning rate."""

import pytest
import torch

from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.train import TrainOptions, parameter_groups, train
from video_policy_ros.model.video_policy import VideoPolicyModel

PARTS = {"video": {"unet", "text_encoder"}, "head": {"head"}, "joint": {"unet", "text_encoder", "head"}}


def _trained_parts(model, mode) -> tuple[set[str], list[float]]:
    groups = parameter_groups(model, mode)
    ids = {id(p) for g in groups for p in g["params"]}
    return {n.split(".")[0] for n, p in model.named_parameters() if id(p) in ids}, [g["lr"] for g in groups]


@pytest.mark.parametrize("mode", ["video", "head", "joint"])
def test_parameter_groups_per_stage(mode):
    cfg = VideoPolicyConfig.tiny()
    parts, lrs = _trained_parts(VideoPolicyModel(cfg), mode)
    assert parts == PARTS[mode]
    t = cfg.train
    assert lrs == {"video": [t.lr], "head": [t.head_lr], "joint": [t.lr, t.head_lr]}[mode]


def test_paper_stage_1_leaves_the_frozen_text_tower_and_the_vae_alone():
    with torch.device("meta"):
        model = VideoPolicyModel(VideoPolicyConfig.paper())
    assert _trained_parts(model, "video")[0] == {"unet"}
    assert _trained_parts(model, "joint")[0] == {"unet", "head"}


@pytest.mark.parametrize("mode", ["video", "head", "joint"])
def test_one_step_changes_only_the_stages_weights(episodes_dir, tmp_path, mode):
    folder = episodes_dir(2, cameras=("front", "wrist"), length=12)
    cfg = VideoPolicyConfig.tiny(cameras=("front", "wrist"))
    torch.manual_seed(0)  # train() seeds 0 and builds the same fresh model first
    before = VideoPolicyModel(cfg).state_dict()
    out = train(TrainOptions(data=folder, out=tmp_path / mode, mode=mode, steps=1, batch_size=2, config=cfg,
                             eval_every=0, progress=False))
    after = load_checkpoint(out).model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == PARTS[mode]
