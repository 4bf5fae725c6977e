import numpy as np
import pytest

from video_policy_ros.config import TaskConfig
from video_policy_ros.policies.scripted import layout_for_instruction
from video_policy_ros.sim.expert import TOP_DOWN, ExpertParams, PlaceExpert, TouchExpert, make_expert, timed_path
from video_policy_ros.types import FINGERS_CLOSED, FINGERS_OPEN
from video_policy_ros.sim.scene import (
    BOWL_INNER_HALF_SIZE, BOWL_WALL_THICKNESS, CUBE_HALF_SIZE, bowl_floor_top, sample_layout,
)
from video_policy_ros.sim.task import SceneState, check, is_success, touch_distance

START = np.array([0.554, 0.0, 0.521, 1.0, 0.0, 0.0, 0.0])  # the FR3's start pose in the sim world


def test_layout_is_a_function_of_the_seed():
    a, b, c = sample_layout(3, TaskConfig()), sample_layout(3, TaskConfig()), sample_layout(4, TaskConfig())
    assert a.target == b.target and all(np.array_equal(a.cube_positions[k], b.cube_positions[k]) for k in a.cube_positions)
    assert np.array_equal(a.bowl_position, b.bowl_position)
    assert any(not np.array_equal(a.cube_positions[k], c.cube_positions[k]) for k in a.cube_positions)


def test_objects_do_not_overlap_and_target_is_honoured():
    for seed in range(50):
        layout = sample_layout(seed, TaskConfig(target="blue"))
        xy = np.array([p[:2] for p in layout.cube_positions.values()])
        gaps = [np.linalg.norm(xy[i] - xy[j]) for i in range(3) for j in range(i + 1, 3)]
        bowl_gap = np.linalg.norm(xy - layout.bowl_position[:2], axis=1).min()
        assert min(gaps) >= 0.1 and layout.target == "blue"
        assert bowl_gap > BOWL_INNER_HALF_SIZE + BOWL_WALL_THICKNESS + CUBE_HALF_SIZE
        assert layout.instruction == "touch the blue cube"


def test_every_expert_waypoint_lies_in_the_default_controller_workspace():
    """The scene and the controller are configured apart: a cube placed beyond the workspace box
    makes the controller reject every chunk that reaches for it."""
    from video_policy_ros.config import ControllerConfig, default_config_path, load_yaml

    workspace = load_yaml(ControllerConfig, default_config_path("controller")).workspace
    lo, hi = np.array(workspace.min), np.array(workspace.max)
    for seed in range(300):
        layout = sample_layout(seed, TaskConfig(kind="mixed"))
        expert = make_expert(layout)
        points = [p[:3] for p in expert.waypoints(START)] if isinstance(expert, TouchExpert) else []
        points += [c for c in layout.cube_positions.values()] + [layout.bowl_position + [0, 0, 0.18]]
        for point in points:
            assert np.all(point[:2] >= lo[:2] + 0.01) and np.all(point[:2] <= hi[:2] - 0.01), (seed, point)


def test_task_kind_is_chosen_by_config_and_per_seed_when_mixed():
    assert sample_layout(0, TaskConfig(kind="place", target="red")).instruction == "put the red cube in the bowl"
    kinds = [sample_layout(seed, TaskConfig(kind="mixed")).task for seed in range(40)]
    assert 10 <= kinds.count("place") <= 30 and set(kinds) == {"touch", "place"}


def test_unknown_colour_is_refused():
    with pytest.raises(ValueError, match="unknown colour"):
        sample_layout(0, TaskConfig(colors=("red", "mauve")))


def test_instruction_selects_task_and_target_for_the_expert():
    layout = sample_layout(0, TaskConfig(kind="touch", target="red"))
    place = layout_for_instruction(layout, "Put the green cube in the bowl")
    assert (place.task, place.target) == ("place", "green")
    assert layout_for_instruction(layout, "dance") is layout
    assert layout_for_instruction(layout, "touch the mauve cube") is layout


def _state(layout, cube_position, fingers, tcp=START[:3]):
    cubes = dict(layout.cube_positions, **{layout.target: np.asarray(cube_position, float)})
    return SceneState(np.asarray(tcp, float), cubes, fingers)


def test_place_succeeds_only_with_the_cube_resting_in_the_bowl_and_released():
    layout = sample_layout(2, TaskConfig(kind="place"))
    bowl = layout.bowl_position
    resting = [bowl[0] + 0.03, bowl[1] - 0.03, bowl_floor_top(bowl) + CUBE_HALF_SIZE]
    assert check(layout, _state(layout, resting, FINGERS_OPEN), 0.03).success
    assert not check(layout, _state(layout, resting, CUBE_HALF_SIZE), 0.03).success  # still held
    lifted = [resting[0], resting[1], resting[2] + 0.05]
    assert not check(layout, _state(layout, lifted, FINGERS_OPEN), 0.03).success
    beside = [bowl[0] + BOWL_INNER_HALF_SIZE + 0.04, bowl[1], CUBE_HALF_SIZE]
    outcome = check(layout, _state(layout, beside, FINGERS_OPEN), 0.03)
    assert not outcome.success and outcome.distance_m == pytest.approx(BOWL_INNER_HALF_SIZE + 0.04)
    # A cube in the bowl does not solve "touch the ... cube", and vice versa.
    touch = layout_for_instruction(layout, f"touch the {layout.target} cube")
    assert not check(touch, _state(touch, resting, FINGERS_OPEN), 0.03).success


def test_touch_expert_reaches_the_target_at_its_speed():
    layout = sample_layout(5, TaskConfig())
    expert = make_expert(layout)
    assert isinstance(expert, TouchExpert)
    pose, t = START, 0.0
    for _ in range(20):  # follow the plans open-loop, 0.5 s at a time, as the inference node would
        chunk = expert.plan(pose, FINGERS_CLOSED, t)
        steps = np.linalg.norm(np.diff(np.vstack([pose[:3], chunk.poses[:, :3]]), axis=0), axis=1)
        assert steps.max() <= ExpertParams().speed * chunk.dt + 1e-9
        pose, t = chunk.poses[4], t + 0.5
    distance = touch_distance(layout, layout.cube_positions, pose[:3])
    assert is_success(distance, 0.03) and pose[2] < layout.cube_positions[layout.target][2] + CUBE_HALF_SIZE


def test_timed_path_brakes_into_each_waypoint_within_the_acceleration():
    """A stop from cruise speed within one step asked for more than the controller's acceleration cap,
    and the arm ran up to 2 cm past the grasp height; the path now ramps at ``acceleration``."""
    params = ExpertParams(chunk_steps=64)
    hover = np.concatenate([START[:3] + [0.1, 0.05, -0.2], TOP_DOWN])
    grasp = np.concatenate([hover[:3] - [0, 0, 0.1], TOP_DOWN])
    poses = timed_path(START, [hover, grasp], params)
    positions = np.vstack([START[:3], poses[:, :3]])
    velocities = np.diff(positions, axis=0) / params.dt
    accelerations = np.linalg.norm(np.diff(velocities[1:], axis=0), axis=1) / params.dt  # the first step enters at speed
    assert np.linalg.norm(velocities, axis=1).max() <= params.speed + 1e-9
    assert accelerations.max() <= params.acceleration + 1e-9
    np.testing.assert_allclose(poses[-1], grasp, atol=1e-9)
    stop = np.argmin(np.linalg.norm(positions - hover[:3], axis=1))  # the arm rests at the hover point before descending
    assert np.linalg.norm(positions[stop] - hover[:3]) < 2e-3 and np.linalg.norm(velocities[stop - 1]) < 0.05


def test_the_move_into_contact_goes_at_the_approach_speed():
    """A simulated arm that lags its set-point on a loaded machine ran 4-6 mm past a grasp entered at 0.15 m/s."""
    params = ExpertParams(chunk_steps=64)
    hover = np.concatenate([START[:3] + [0.1, 0.05, -0.2], TOP_DOWN])
    grasp = np.concatenate([hover[:3] - [0, 0, 0.1], TOP_DOWN])
    positions = np.vstack([START[:3], timed_path(START, [hover, grasp], params, approach=True)[:, :3]])
    speeds = np.linalg.norm(np.diff(positions, axis=0), axis=1) / params.dt
    descending = positions[1:, 2] < hover[2] - 1e-6
    assert speeds[~descending].max() > 0.9 * params.speed
    assert speeds[descending].max() <= params.approach_speed + 1e-9
    np.testing.assert_allclose(positions[-1], grasp[:3], atol=1e-9)


def test_place_expert_grasps_carries_and_releases_over_the_bowl():
    """Open loop with ideal tracking; the fingers stop on the cube when they close around it."""
    layout = sample_layout(6, TaskConfig(kind="place"))
    expert = make_expert(layout)
    assert isinstance(expert, PlaceExpert)
    cube = layout.cube_positions[layout.target].copy()
    pose, fingers, t = START, 0.02, 0.0
    commands = []
    for _ in range(120):
        chunk = expert.plan(pose, fingers, t)
        pose, command, t = chunk.poses[4], chunk.gripper[4], t + 0.5
        commands.append(command)
        around_cube = np.linalg.norm(pose[:2] - cube[:2]) < 0.01 and abs(pose[2] - cube[2]) < 0.02
        fingers = CUBE_HALF_SIZE if command == FINGERS_CLOSED and (around_cube or expert.grasped) else command
        if expert.grasped and fingers == CUBE_HALF_SIZE:
            cube = pose[:3] - [0, 0, ExpertParams().grasp_offset]  # carried in the hand
        elif expert.grasped:  # released: the cube drops onto the bowl floor (or the table)
            over_bowl = np.all(np.abs(cube[:2] - layout.bowl_position[:2]) <= BOWL_INNER_HALF_SIZE)
            cube = np.array([cube[0], cube[1], CUBE_HALF_SIZE + (bowl_floor_top(layout.bowl_position) if over_bowl else 0)])
        if check(layout, _state(layout, cube, fingers), 0.03).success:
            break
    else:
        raise AssertionError(f"the cube never reached the bowl; it is at {cube}, the bowl at {layout.bowl_position}")
    assert expert.grasped and commands[0] == FINGERS_OPEN and FINGERS_CLOSED in commands and commands[-1] == FINGERS_OPEN
