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


@pytest.mark.parametrize("mode", ["video", "head", "joint"])
def test_frozen_parts_run_as_at_inference(mode):
    """Stage 2's frozen U-Net and text encoder run without dropout (the byte-level text encoder has 0.1), so the
    head learns from the instruction token the policy will give it; the trained parts keep training mode,
    also after an evaluation switched the model to eval and back."""
    model = VideoPolicyModel(VideoPolicyConfig.tiny())
    trained = {id(p) for g in parameter_groups(model, mode) for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in trained)
    model.eval().train()
    assert model.head.training == (mode != "video") and model.text_encoder.training == (mode != "head")
    assert model.unet.training == (mode != "head")
    with torch.no_grad():
        tokens = [model.encode_text(["touch the red cube"]) for _ in range(2)]
    assert torch.equal(*tokens) == (mode == "head")


def test_a_recipe_file_gets_the_lead_camera_of_its_cameras(tmp_path):
    """``preset: tiny`` + ``cameras: [front, wrist]``: the wrist leads, as in the preset built with those cameras."""
    from tests.repo import REPO

    recipe = VideoPolicyConfig.from_yaml(REPO / "models" / "recipes" / "sim_cpu.yaml")
    assert recipe.cameras == ("front", "wrist") and recipe.lead_camera == "wrist"
    (tmp_path / "front.yaml").write_text("preset: tiny\ncameras: [front]\n")
    assert VideoPolicyConfig.from_yaml(tmp_path / "front.yaml").lead_camera == "front"
