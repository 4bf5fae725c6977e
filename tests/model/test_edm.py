import math

import pytest
import torch

from video_policy_ros.model import edm


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
def test_scalings_match_formulas(sigma_data):
    sigma = torch.tensor([0.002, 0.5, 1.0, 7.3, 700.0])
    c_skip, c_out, c_in, c_noise = edm.scalings(sigma, sigma_data)
    for i, s in enumerate(sigma.tolist()):
        d = s * s + sigma_data**2
        assert c_skip[i].item() == pytest.approx(sigma_data**2 / d, rel=1e-5)
        assert c_out[i].item() == pytest.approx(-s * sigma_data / math.sqrt(d), rel=1e-5)
        assert c_in[i].item() == pytest.approx(1 / math.sqrt(d), rel=1e-5)
        assert c_noise[i].item() == pytest.approx(0.25 * math.log(s), rel=1e-5, abs=1e-6)
    w = edm.loss_weight(sigma, sigma_data)
    assert torch.allclose(w, (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2)
    # EDM's weighting makes the effective loss on the network output unit-weighted: c_out^2 * lambda = 1
    assert torch.allclose(c_out**2 * w, torch.ones_like(sigma), rtol=1e-4)
    # SVD's VScalingWithEDMcNoise is the sigma_data = 1 case
    if sigma_data == 1.0:
        assert torch.allclose(c_skip, 1 / (sigma**2 + 1))


def test_training_sigmas_are_lognormal():
    g = torch.Generator().manual_seed(0)
    log_s = edm.sample_sigma(200_000, 1.0, 1.6, "cpu", g).log()
    assert log_s.mean().item() == pytest.approx(1.0, abs=0.02)
    assert log_s.std().item() == pytest.approx(1.6, abs=0.02)


def test_loss_is_mean_over_frame_and_action_step_terms():
    video = torch.tensor([[1.0, 3.0]])  # one sample, 2 frames
    actions = torch.tensor([[2.0, 2.0, 5.0]])  # 3 action steps
    loss, logs = edm.edm_loss(video, actions)
    assert loss.item() == pytest.approx((1 + 3 + 2 + 2 + 5) / 5)
    # a sample without actions contributes only its frames
    loss, _ = edm.edm_loss(torch.ones(2, 2), torch.full((2, 3), 10.0), torch.tensor([True, False]))
    assert loss.item() == pytest.approx((4 * 1 + 3 * 10) / 7)
    # a sample whose frames must not teach (relabelled) contributes only its actions
    loss, logs = edm.edm_loss(torch.tensor([[1.0, 1.0], [9.0, 9.0]]), torch.full((2, 3), 2.0),
                              video_mask=torch.tensor([True, False]))
    assert loss.item() == pytest.approx((2 * 1 + 6 * 2) / 8) and logs["video"] == pytest.approx(1.0)


def test_karras_schedule_endpoints():
    s = edm.karras_sigmas(10, 0.002, 80.0)
    assert s.shape == (11,)
    assert s[0].item() == pytest.approx(80.0) and s[-2].item() == pytest.approx(0.002) and s[-1] == 0
    assert torch.all(s[:-1] > s[1:])


def test_euler_sampler_reaches_the_denoised_target_and_batches_guidance():
    target_v, target_a = torch.full((2, 3, 1, 2, 2), 0.7), torch.full((2, 4, 7), -0.3)
    seen = []

    def denoise(x_v, x_a, sigma):
        seen.append(x_v.shape[0])
        d_v = torch.cat([target_v, torch.zeros_like(target_v)])  # conditional half, unconditional half
        d_a = torch.cat([target_a, torch.zeros_like(target_a)])
        return d_v, d_a

    v, a = edm.euler_sample(denoise, (2, 3, 1, 2, 2), (2, 4, 7), edm.karras_sigmas(5, 0.002, 80.0), guidance=2.0)
    assert seen == [4] * 5  # cond and uncond in one batch per step
    assert torch.allclose(v, 2.0 * target_v, atol=1e-4)  # D_u + 2 (D_c - D_u) with D_u = 0
    assert torch.allclose(a, 2.0 * target_a, atol=1e-4)
