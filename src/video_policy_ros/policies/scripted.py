"""The scripted expert behind the Policy port. SIM ONLY: it reads privileged state.

Its privileged state is the scene layout, recomputed from the sim world's config
and seed (the same function the sim world uses), not anything it could see in
the images. The task and target colour come from the instruction when it names
one of the scene's cubes ("touch the red cube", "put the red cube in the bowl").
"""

from __future__ import annotations

import dataclasses
import re

from video_policy_ros.config import SimWorldConfig
from video_policy_ros.policies.base import Policy
from video_policy_ros.sim.expert import ScriptedExpert, make_expert
from video_policy_ros.sim.scene import SceneLayout, sample_layout
from video_policy_ros.types import Observation, PolicyOutput

_INSTRUCTIONS = {
    "touch": re.compile(r"touch the (\w+) cube"),
    "place": re.compile(r"put the (\w+) cube in the bowl"),
}


def layout_for_instruction(layout: SceneLayout, instruction: str) -> SceneLayout:
    """``layout`` with the task and target the instruction names (unchanged if it names none)."""
    for task, pattern in _INSTRUCTIONS.items():
        match = pattern.search(instruction.lower())
        if match and match.group(1) in layout.cube_positions:
            return dataclasses.replace(layout, task=task, target=match.group(1))
    return layout


class ScriptedExpertPolicy(Policy):
    def __init__(self, sim_world: SimWorldConfig, camera_names: tuple[str, ...] = ()):
        self.layout = sample_layout(sim_world.seed, sim_world.task)
        self.camera_names = camera_names
        self._expert: ScriptedExpert | None = None

    @property
    def description(self) -> str:
        return f"scripted expert (SIM ONLY, privileged scene state, seed-derived layout; {self.layout.instruction})"

    def reset(self) -> None:
        self._expert = None  # a new instruction: the place expert forgets that it has grasped

    def predict(self, observation: Observation) -> PolicyOutput:
        layout = layout_for_instruction(self.layout, observation.instruction)
        if self._expert is None or (self._expert.layout.task, self._expert.layout.target) != (layout.task, layout.target):
            self._expert = make_expert(layout)
        chunk = self._expert.plan(observation.tcp_pose, observation.gripper, observation.stamp)
        return PolicyOutput(chunk=chunk)
