# One entry point for setting up and running the stack. `make help` lists the targets.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
ROS2_LAUNCH ?= ../shared/ros2-launch/install.sh
APT_PACKAGES := libusb-1.0-0 libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 ffmpeg
# Only the tests need these: a headless browser for the view, network namespaces and a shifted clock for two hosts.
TEST_APT_PACKAGES := chromium chromium-driver iproute2 faketime
# Tests and the demo keep DDS on this machine.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export MUJOCO_GL ?= egl

.PHONY: help install system-deps demo test bench clean

help:
	@echo "make install   system packages + $(VENV) with pinned deps + this package (ament index under $(VENV))"
	@echo "make demo      the full graph in the simulated world; prints the result and the path of an mp4"
	@echo "make test      the test suite"
	@echo "make bench     benchmarks (bench/)"

install: $(STAMP)

system-deps:
	@if command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; \
	  fi; \
	else echo "no apt-get: install $(APT_PACKAGES) $(EXTRA_APT_PACKAGES) (or your distribution's equivalents) yourself"; fi

$(STAMP): requirements.txt setup.py package.xml $(shell find src launch config rviz calibration models scripts -type f 2>/dev/null)
	$(MAKE) system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps --force-reinstall .
	# pip copies lib/<package>/ as data: point its executables at this venv's python, so that
	# `ros2 run` / `ros2 launch` work without activating the venv first.
	sed -i '1s|.*|#!$(abspath $(BIN))/python|' $(VENV)/lib/video_policy_ros/*
	@grep -q AMENT_PREFIX_PATH $(BIN)/activate || echo 'export AMENT_PREFIX_PATH="$$VIRTUAL_ENV$${AMENT_PREFIX_PATH:+:$$AMENT_PREFIX_PATH}"' >> $(BIN)/activate
	# The real `ros2 launch` / `ros2` CLI (not on pip) where the workspace provides its wheels.
	if [ -x $(ROS2_LAUNCH) ]; then $(ROS2_LAUNCH) $(VENV); else echo "no $(ROS2_LAUNCH): ros2 launch tests will skip"; fi
	touch $(STAMP)

demo: install
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-42} $(BIN)/video-policy run --output-dir outputs

test: install
	$(MAKE) system-deps EXTRA_APT_PACKAGES="$(TEST_APT_PACKAGES)"
	$(BIN)/python -m pytest -q

bench: install
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info outputs
