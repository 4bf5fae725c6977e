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
        from video_policy_ros.runtime.backends import DEFAULT_CACHE, BackendSettings

        settings = BackendSettings(
            device=config.device, precision=config.precision, torch_compile=config.torch_compile,
            onnxruntime_provider=config.onnxruntime_provider, cache_dir=config.cache_dir or DEFAULT_CACHE,
        )
        # num_steps 'auto' starts from the checkpoint's count; the node's latency budget lowers it to what fits.
        return VideoPolicy.from_checkpoint(
            config.model, expected_cameras=config.cameras, return_frames=config.publish_predicted_video,
            num_steps=config.num_steps if isinstance(config.num_steps, int) else None, guidance=config.guidance,
            backend=config.backend, settings=settings,
        )
    if config.policy == "bc":
        from video_policy_ros.policies.bc import BCPolicy

        return BCPolicy(config.model, expected_cameras=config.cameras)
    raise ValueError(f"unknown policy '{config.policy}'")  # unreachable: the config validates names


__all__ = ["Policy", "build_policy"]
