"""The scripted expert behind the Policy port. SIM ONLY: it reads privileged state.

Its privileged state is the scene layout, recomputed from the sim world's config
and seed (the same function the sim world uses), not anything it could see in
the images. The target colour comes from the instruction when one is given.
"""

from __future__ import annotations

import dataclasses
import re

from video_policy_ros.config import SimWorldConfig
from video_policy_ros.policies.base import Policy
from video_policy_ros.sim.expert import ScriptedExpert
from video_policy_ros.sim.scene import sample_layout
from video_policy_ros.types import Observation, PolicyOutput

_TARGET = re.compile(r"touch the (\w+) cube")


class ScriptedExpertPolicy(Policy):
    def __init__(self, sim_world: SimWorldConfig, camera_names: tuple[str, ...] = ()):
        self.layout = sample_layout(sim_world.seed, sim_world.task)
        self.camera_names = camera_names

    @property
    def description(self) -> str:
        return f"scripted expert (SIM ONLY, privileged scene state, seed-derived layout; {self.layout.instruction})"

    def predict(self, observation: Observation) -> PolicyOutput:
        layout = self.layout
        match = _TARGET.search(observation.instruction.lower())
        if match and match.group(1) in layout.cube_positions:
            layout = dataclasses.replace(layout, target=match.group(1))
        chunk = ScriptedExpert(layout).plan(observation.tcp_pose, observation.stamp)
        return PolicyOutput(chunk=chunk)
