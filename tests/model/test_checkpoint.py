import json

import pytest
import torch

from video_policy_ros.model.checkpoint import CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.normalization import ActionNormalizer
from video_policy_ros.model.video_policy import VideoPolicyModel

from conftest import make_episode


def _save(tmp_path, cameras=("front", "wrist"), representation="delta", sampler="joint", **config):
    cfg = VideoPolicyConfig.tiny(cameras=cameras, **config)
    cfg = cfg.model_copy(update={"action": cfg.action.model_copy(update={"representation": representation}),
                                 "edm": cfg.edm.model_copy(update={"sampler": sampler})})
    model = VideoPolicyModel(cfg)
    ep = make_episode(0)
    norm = ActionNormalizer.fit(representation, [(ep.tcp_poses, ep.gripper)], cfg.action.horizon)
    meta = CheckpointMeta(dt=0.1, data_fingerprint="abc", step=3, mode="joint", cameras=cfg.cameras,
                          image_size=cfg.image_size, action_representation=representation, action_horizon=32)
    return model, save_checkpoint(tmp_path / "ckpt", model, meta, norm)


def _outputs(model, seed=0):
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(1, cfg.num_frames, 3, *cfg.image_size, generator=g) * 2 - 1
    cond = model.encode_condition(model.current_frames(video), g)
    return model.sample(cond, model.encode_text(["stack"]), num_steps=3, guidance=2.0,
                        generator=torch.Generator().manual_seed(seed))


def test_save_load_gives_identical_outputs(tmp_path):
    model, folder = _save(tmp_path)
    loaded = load_checkpoint(folder)
    assert loaded.config == model.cfg and loaded.meta.dt == 0.1 and loaded.normalizer.representation == "delta"
    model.eval()
    v0, a0 = _outputs(model)
    v1, a1 = _outputs(loaded.model)
    assert torch.equal(v0, v1) and torch.equal(a0, a1)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "meta.json", "model.safetensors",
                                                        "normalization.json"]


def test_a_checkpoint_keeps_the_crops_its_frames_were_cut_to(tmp_path):
    crops = {"front": (0.4, 0.1, 1.0, 0.9)}
    _, folder = _save(tmp_path, crops=crops)
    assert load_checkpoint(folder).config.crops == crops


def test_missing_file_names_the_file(tmp_path):
    _, folder = _save(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"checkpoint file missing: .*model\.safetensors"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="checkpoint folder not found"):
        load_checkpoint(tmp_path / "nope")


def test_corrupted_weights_give_a_clear_error(tmp_path):
    _, folder = _save(tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(folder)
    (folder / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(folder)


def test_shape_mismatch_is_reported(tmp_path):
    _, folder = _save(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["head"]["camera_channels"] = [64, 32]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(folder)


def test_corrupt_config_and_wrong_cameras(tmp_path):
    _, folder = _save(tmp_path)
    with pytest.raises(CheckpointError, match=r"trained on cameras \['front', 'wrist'\]"):
        load_checkpoint(folder, expected_cameras=("front",))
    assert load_checkpoint(folder, expected_cameras=("wrist", "front")).config.cameras == ("front", "wrist")
    (folder / "config.json").write_text('{"cameras": ["front"], "unknown_field": 1}')
    with pytest.raises(CheckpointError, match="not a valid VideoPolicyConfig"):
        load_checkpoint(folder)


def test_video_only_checkpoint_cannot_act(tmp_path):
    _, folder = _save(tmp_path)
    (folder / "normalization.json").unlink()
    assert load_checkpoint(folder).normalizer is None
    with pytest.raises(CheckpointError, match="trained video-only"):
        load_checkpoint(folder, require_actions=True)
