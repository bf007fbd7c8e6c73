"""benchmarks/selection_bias.py: the perturbed models it scores, and its statistics."""

import subprocess
import sys

import pytest
import torch
from benchmark_scripts import BENCHMARKS, load_benchmark
from tiny_capsnet import tiny_capsnet

bias = load_benchmark("selection_bias.py")


def test_every_weight_and_nothing_else_gets_the_relative_noise():
    model = tiny_capsnet()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    noisy = bias.perturbed(model, 0.05, seed=3)
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    ratios = []
    for name, tensor in noisy.state_dict().items():
        if name.endswith("weight"):
            nonzero = before[name] != 0
            ratios.append((tensor[nonzero] / before[name][nonzero] - 1).flatten())
        else:
            assert torch.equal(tensor, before[name]), name
    spread = torch.cat(ratios)
    assert spread.numel() > 1000
    assert spread.std().item() == pytest.approx(0.05, rel=0.1)
    assert abs(spread.mean().item()) < 0.01
    # One seed, one perturbation; another seed, another.
    again, other = bias.perturbed(model, 0.05, seed=3), bias.perturbed(model, 0.05, seed=4)
    weights = [name for name in before if name.endswith("weight")]
    assert all(torch.equal(noisy.state_dict()[n], again.state_dict()[n]) for n in weights)
    assert not all(torch.equal(noisy.state_dict()[n], other.state_dict()[n]) for n in weights)


def test_mean_and_standard_error():
    assert bias.mean_and_error([0.2]) == (0.2, 0.0)
    mean, error = bias.mean_and_error([0.1, 0.3, 0.2, 0.4])
    assert mean == pytest.approx(0.25)
    assert error == pytest.approx(0.0645497, rel=1e-5)  # stdev 0.1291 / sqrt(4)


@pytest.mark.parametrize("sigma", ["0", "1.5", "-0.1"])
def test_a_sigma_outside_0_1_is_one_line_with_an_example(sigma):
    command = [sys.executable, str(BENCHMARKS / "selection_bias.py"), "--model", "zoo:shallowcaps-mnist"]
    completed = subprocess.run([*command, "--sigma", sigma], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "--sigma must lie in (0, 1)" in completed.stderr.strip().splitlines()[-1]
