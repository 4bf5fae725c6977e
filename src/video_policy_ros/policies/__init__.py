"""Policy registry: config name → factory. Heavy policies import only when chosen."""

from __future__ import annotations

from video_policy_ros.config import InferenceConfig
from video_policy_ros.policies.base import Policy


def build_policy(config: InferenceConfig) -> Policy:
    if config.policy == "scripted_expert":
        from video_policy_ros.policies.scripted import ScriptedExpertPolicy

        return ScriptedExpertPolicy(config.load_sim_world(), config.cameras)
    if config.policy == "video_policy":
        from video_policy_ros.policies.video_policy import VideoPolicy

        return VideoPolicy.from_checkpoint(
            config.model, device="auto", expected_cameras=config.cameras, return_frames=config.publish_predicted_video,
            num_steps=config.num_steps, guidance=config.guidance,
        )
    if config.policy == "bc":
        from video_policy_ros.policies.bc import BCPolicy

        return BCPolicy(config.model, expected_cameras=config.cameras)
    raise ValueError(f"unknown policy '{config.policy}'")  # unreachable: the config validates names


__all__ = ["Policy", "build_policy"]
