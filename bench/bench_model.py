"""Video Policy model benchmark: CPU time per chunk (tiny config), model sizes (tiny + paper),
and on a GPU the paper preset's cost per guided denoising step.

    PYTHONPATH=src python bench/bench_model.py [--threads 1] [--cameras 1] [--repeats 3]
    PYTHONPATH=src python bench/bench_model.py --paper-step --steps 1   # CUDA: random SVD-XT-sized weights

Without CUDA the paper preset is instantiated on the meta device: sizes only, no memory, not run.
With ``--paper-step`` on CUDA it runs one guided step (cond + uncond batched, 25 frames and the
action chunk) in the preset's ``edm.inference_dtype`` (fp16) and in bf16, and reports peak memory.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.video_policy import VideoPolicyModel


def sizes(model: VideoPolicyModel) -> dict[str, int]:
    parts = {name: sum(p.numel() for p in module.parameters()) for name, module in model.named_children()}
    parts["total"] = sum(parts.values())
    return parts


def print_sizes(name: str, model: VideoPolicyModel) -> None:
    parts = sizes(model)
    line = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in parts.items() if k != "total")
    total = parts["total"]
    print(f"{name}: {total / 1e6:.2f}M params ({line}); weights {total * 4 / 2**30:.2f} GiB fp32, "
          f"{total * 2 / 2**30:.2f} GiB bf16")


def time_chunks(cfg: VideoPolicyConfig, steps_list: list[int], repeats: int) -> None:
    model = VideoPolicyModel(cfg).eval()
    frames = torch.rand(1, len(cfg.cameras), 3, *cfg.image_size) * 2 - 1
    cond = model.encode_condition(frames)
    text = model.encode_text(["put the red cube in the bowl"])
    model.sample(cond, text, num_steps=1, guidance=2.0)  # warm-up
    print(f"tiny config, {len(cfg.cameras)} camera(s), {cfg.num_frames} frames at "
          f"{cfg.latent_size[0]}x{cfg.latent_size[1]}, {torch.get_num_threads()} thread(s); seconds per chunk:")
    print(f"{'steps':>6} {'guidance off':>13} {'guidance 2.0':>13}")
    for steps in steps_list:
        row = []
        for guidance in (1.0, 2.0):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                model.sample(cond, text, num_steps=steps, guidance=guidance)
                best = min(best, time.perf_counter() - start)
            row.append(best)
        print(f"{steps:>6} {row[0]:>13.3f} {row[1]:>13.3f}")
    start = time.perf_counter()
    latents, _ = model.sample(cond, text, num_steps=1, guidance=1.0, with_actions=False)
    model.decode(latents)
    print(f"(decoding the predicted frames adds {time.perf_counter() - start:.3f} s incl. one video-only step)")


def time_head_share(name: str, cfg: VideoPolicyConfig, repeats: int) -> None:
    """One guided denoising step (batch 2) with and without the action head, interleaved so
    that a shared machine's load hits both alike."""
    model = VideoPolicyModel(cfg).eval()
    x = torch.zeros(2, cfg.num_frames, cfg.vae.latent_channels, *cfg.latent_size)
    args = (x, torch.zeros(2, cfg.action.horizon, 7), torch.ones(2), x, model.encode_text(["a", "b"]),
            torch.zeros(2, 7) if cfg.proprio else None)
    best = {True: float("inf"), False: float("inf")}
    with torch.no_grad():
        for _ in range(repeats + 1):
            for head in best:
                start = time.perf_counter()
                model.denoise(*args, run_head=head)
                best[head] = min(best[head], time.perf_counter() - start)
    print(f"{name}: {best[True] * 1000:.0f} ms per guided step, of which the head "
          f"{(best[True] - best[False]) * 1000:.0f} ms")


def time_paper_step(repeats: int) -> None:
    """Seconds and peak memory per guided denoising step of the paper preset on CUDA."""
    if not torch.cuda.is_available():
        print("paper step: no CUDA device here, skipped (run on a GPU machine)")
        return
    cfg = VideoPolicyConfig.paper()
    model = VideoPolicyModel(cfg).cuda().eval()
    b, f, c = 2, cfg.num_frames, cfg.vae.latent_channels  # conditional + unconditional branch
    x = torch.randn(b, f, c, *cfg.latent_size, device="cuda")
    actions = torch.randn(b, cfg.action.horizon, 7, device="cuda")
    text = torch.randn(b, 1, cfg.unet.cross_attention_dim, device="cuda")
    sigma = torch.full((b,), 10.0, device="cuda")
    drop = torch.tensor([False, True], device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
            model.denoise(x, actions, sigma, x, text, drop=drop)  # warm-up
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                model.denoise(x, actions, sigma, x, text, drop=drop)
                torch.cuda.synchronize()
                best = min(best, time.perf_counter() - start)
        print(f"paper preset, {torch.cuda.get_device_name()}, {dtype}: {best * 1000:.1f} ms per guided step "
              f"({cfg.edm.num_steps} steps: {best * cfg.edm.num_steps:.2f} s per chunk without VAE decoding), "
              f"peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10, 20, 30])
    parser.add_argument("--paper-step", action="store_true", help="time the paper preset's denoising step (CUDA)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.paper_step:
        time_paper_step(args.repeats)
    tiny = VideoPolicyConfig.tiny(cameras=tuple(f"cam{i}" for i in range(args.cameras)))
    time_chunks(tiny, args.steps, args.repeats)
    print_sizes("tiny", VideoPolicyModel(tiny))
    time_head_share("tiny preset (3D-ResNet head)", tiny, args.repeats)
    shipped = Path(__file__).resolve().parents[1] / "models" / "video_policy_tiny" / "config.json"
    time_head_share("shipped checkpoint's config (pooled head)", VideoPolicyConfig.model_validate_json(
        shipped.read_text()), args.repeats)
    with torch.device("meta"):  # no memory is allocated for the paper model
        paper = VideoPolicyModel(VideoPolicyConfig.paper())
    print_sizes("paper (SVD-XT, 1 + 3 cams x 8 frames, 256x256)", paper)


if __name__ == "__main__":
    main()
