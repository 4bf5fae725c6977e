import threading
import time

import numpy as np

from video_policy_ros.policies.base import Policy
from video_policy_ros.runtime.async_worker import LatestOnlyWorker
from video_policy_ros.runtime.observation import ObservationAssembler
from video_policy_ros.types import ActionChunk, CameraFrame, Observation, PolicyOutput

POSE = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def frame(cam, stamp):
    return CameraFrame(cam, stamp, np.zeros((4, 4, 3), np.uint8))


class SlowPolicy(Policy):
    def __init__(self, delay):
        self.delay, self.seen, self.release = delay, [], threading.Event()

    def predict(self, observation):
        self.seen.append(observation.stamp)
        time.sleep(self.delay)
        if observation.instruction == "explode":
            raise RuntimeError("boom")
        return PolicyOutput(ActionChunk(observation.stamp, 0.1, POSE[None], np.zeros(1)))


def obs(stamp, instruction="touch"):
    return Observation({"front": frame("front", stamp)}, POSE, 0.0, instruction)


def test_latest_observation_wins_and_errors_do_not_kill_the_worker():
    policy = SlowPolicy(0.2)
    outputs, errors = [], []
    runner = LatestOnlyWorker(policy.predict, lambda out, lat: outputs.append((out, lat)), errors.append)
    try:
        runner.submit(obs(1.0))
        time.sleep(0.05)  # worker is busy with 1.0
        for stamp in (2.0, 3.0, 4.0):
            runner.submit(obs(stamp))
        deadline = time.time() + 3
        while len(outputs) < 2 and time.time() < deadline:
            time.sleep(0.01)
        assert policy.seen == [1.0, 4.0]  # 2.0 and 3.0 were superseded, not queued
        assert outputs[1][0].chunk.stamp == 4.0 and outputs[1][1] >= 0.2
        runner.submit(obs(5.0, "explode"))
        while not errors and time.time() < deadline:
            time.sleep(0.01)
        assert "boom" in str(errors[0])
        runner.submit(obs(7.0))
        while len(outputs) < 3 and time.time() < deadline:
            time.sleep(0.01)
        assert outputs[-1][0].chunk.stamp == 7.0
    finally:
        runner.close()


def test_assembler_reports_what_is_missing_or_stale():
    a = ObservationAssembler(("front", "wrist"), max_age_s=0.5)
    now = 100.0
    assert "wrist" in a.build(now)[1] or "front" in a.build(now)[1]
    a.add_frame(frame("front", now - 0.1))
    a.add_frame(frame("wrist", now - 0.9))
    observation, problem = a.build(now)
    assert observation is None and "wrist" in problem and "too old" in problem
    a.add_frame(frame("wrist", now - 0.05))
    assert "ee_pose" in a.build(now)[1]
    a.set_tcp_pose(now - 0.01, POSE)
    assert "instruction" in a.build(now)[1]
    assert a.set_instruction("touch the red cube") is True
    assert a.set_instruction("touch the red cube") is False
    observation, problem = a.build(now)
    assert problem == "" and list(observation.frames) == ["front", "wrist"]
    assert observation.stamp == now - 0.1  # the oldest measurement in it


def test_filmstrip_tiles_frames_left_to_right_and_enlarges_small_ones():
    from video_policy_ros.runtime.visualization import filmstrip

    frames = np.zeros((3, 16, 16, 3), np.uint8)
    for i in range(3):
        frames[i, :, :, i] = 255
    strip = filmstrip(frames, min_height=96)
    assert strip.shape == (96, 3 * 96, 3)
    assert [int(np.argmax(strip[50, 96 * i + 50])) for i in range(3)] == [0, 1, 2]
