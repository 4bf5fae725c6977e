"""Bad configuration fails with one line that names the file and the key."""

import pytest

from video_policy_ros.config import (
    CONFIG_FILES,
    ConfigError,
    ControllerConfig,
    InferenceConfig,
    REPO_CONFIG_DIR,
    SimWorldConfig,
    load_yaml,
)


@pytest.mark.parametrize("node", sorted(CONFIG_FILES))
def test_shipped_yaml_files_validate_and_match_the_defaults(node):
    model = CONFIG_FILES[node]
    loaded = load_yaml(model, REPO_CONFIG_DIR / f"{node}.yaml")
    assert loaded == model(), f"config/{node}.yaml drifted from {model.__name__}'s defaults"


def write(tmp_path, text):
    path = tmp_path / "node.yaml"
    path.write_text(text)
    return path


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_unknown_key_is_named(tmp_path):
    path = write(tmp_path, "robot_ip: 127.0.0.1\nmax_linear_sped: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        load_yaml(ControllerConfig, path)
    assert "unknown key 'max_linear_sped'" in one_line(exc) and str(path) in one_line(exc)


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(ControllerConfig, write(tmp_path, "loop_rate_hz: fast\n"))
    assert "'loop_rate_hz'" in one_line(exc)


def test_out_of_range_speed_is_refused(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(ControllerConfig, write(tmp_path, "max_linear_speed: 5.0\n"))
    assert "'max_linear_speed'" in one_line(exc)


def test_nested_key_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(SimWorldConfig, write(tmp_path, "task:\n  target: purple\n"))
    assert "task" in one_line(exc) and "purple" in one_line(exc)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(ControllerConfig, tmp_path / "nope.yaml")
    assert "config file not found" in one_line(exc) and "nope.yaml" in one_line(exc)


def test_broken_yaml_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(ControllerConfig, write(tmp_path, "robot_ip: [unclosed\n"))
    assert "not valid YAML" in one_line(exc)


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_yaml(InferenceConfig, None, {"policy": "video_policy", "model": str(tmp_path / "ckpt")})
    assert "model checkpoint folder not found" in one_line(exc) and "ckpt" in one_line(exc)


def test_workspace_must_be_ordered():
    with pytest.raises(ConfigError, match="workspace"):
        load_yaml(ControllerConfig, None, {"workspace": {"min": [0.5, 0, 0], "max": [0.4, 1, 1]}})


def test_relative_paths_resolve_against_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEO_POLICY_ROS_HOME", str(tmp_path))
    assert load_yaml(SimWorldConfig, None, {"output_dir": "videos"}).output_dir == tmp_path / "videos"
    assert load_yaml(SimWorldConfig, None, {"output_dir": "/abs/videos"}).output_dir.as_posix() == "/abs/videos"
    # A checkpoint shipped with the package is found there when the data home has none of that name.
    shipped = load_yaml(InferenceConfig, None, {"policy": "video_policy", "model": "models/video_policy_tiny"}).model
    assert shipped.is_absolute() and (shipped / "config.json").is_file()
    (tmp_path / "models/video_policy_tiny").mkdir(parents=True)
    (tmp_path / "models/video_policy_tiny/config.json").write_text("{}")
    mine = load_yaml(InferenceConfig, None, {"policy": "video_policy", "model": "models/video_policy_tiny"}).model
    assert mine == tmp_path / "models/video_policy_tiny"


def test_the_sim_only_expert_is_refused_on_a_real_arm():
    with pytest.raises(ConfigError) as exc:
        load_yaml(InferenceConfig, None, {"use_sim": False})
    assert "cannot drive a real arm" in one_line(exc)


def _fields(model, prefix=""):
    from pydantic import BaseModel

    for key, field in model.model_fields.items():
        yield f"{prefix}{key}", field
        for sub in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                yield from _fields(sub, f"{prefix}{key}.")


@pytest.mark.parametrize("node", sorted(CONFIG_FILES))
def test_every_key_has_a_description_for_ros2_param_describe(node):
    missing = [name for name, field in _fields(CONFIG_FILES[node]) if not field.description]
    assert not missing, f"{node}: keys without a description: {missing}"
