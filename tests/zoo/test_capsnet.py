"""CapsNet (Sabour, Frosst, Hinton 2017): parameter arithmetic, shapes, options."""

import pytest
import torch

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.capsnet import CapsNet, squash

# Layer sizes from the paper's Section 4 / Figure 1 and 2.
CONV1 = 1 * 256 * 9 * 9 + 256  # 20,992
PRIMARY = 256 * (32 * 8) * 9 * 9 + 32 * 8  # 5,308,672
NUM_PRIMARY_CAPS = 32 * 6 * 6  # 1152: 28 -> 20 (9x9) -> 6 (9x9 stride 2)
DIGIT_W = NUM_PRIMARY_CAPS * 10 * 16 * 8  # 1,474,560; no bias, b_ij are not parameters
DECODER = (16 * 10 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 784 + 784)  # 1,411,344


def _params(model):
    return sum(p.numel() for p in model.parameters())


def _build(**kwargs):
    with torch.device("meta"):
        return get_model("capsnet", **kwargs)


def test_layer_arithmetic():
    assert CONV1 == 20_992
    assert PRIMARY == 5_308_672
    assert DIGIT_W == 1_474_560


def test_params_without_decoder():
    model = _build()
    assert _params(model) == CONV1 + PRIMARY + DIGIT_W
    # The paper: "6.8M parameters without the reconstruction subnetwork".
    assert round((CONV1 + PRIMARY + DIGIT_W) / 1e6, 1) == 6.8


def test_params_with_decoder():
    model = _build(decoder=True)
    total = CONV1 + PRIMARY + DIGIT_W + DECODER
    assert _params(model) == total
    # The paper: CapsNet has 8.2M parameters (with the reconstruction decoder).
    assert round(total / 1e6, 1) == 8.2


def test_per_layer_params():
    model = _build(decoder=True)
    assert sum(p.numel() for p in model.conv1.parameters()) == CONV1
    assert sum(p.numel() for p in model.primary_caps.parameters()) == PRIMARY
    assert tuple(model.digit_caps.weight.shape) == (1152, 10, 16, 8)
    assert [n for n, _ in model.digit_caps.named_parameters()] == ["weight"]
    assert sum(p.numel() for p in model.decoder.parameters()) == DECODER


def test_registry_metadata():
    info = model_info("capsnet")
    assert info.input_size == (1, 28, 28)
    assert info.num_classes == 10
    assert info.dataset == "MNIST"


def test_output_shape_meta():
    model = _build()
    out = model(torch.empty(2, 1, 28, 28, device="meta"))
    assert out.shape == (2, 10)


def test_primary_caps_shape():
    model = _build()
    x = torch.empty(2, 1, 28, 28, device="meta")
    u = model.primary_caps(model.relu1(model.conv1(x)))
    assert u.shape == (2, NUM_PRIMARY_CAPS, 8)


def test_decoder_outputs_meta():
    model = _build(decoder=True)
    lengths, recon = model(torch.empty(3, 1, 28, 28, device="meta"))
    assert lengths.shape == (3, 10)
    assert recon.shape == (3, 1, 28, 28)
    # Masking by the true label, as in training.
    target = torch.zeros(3, dtype=torch.long, device="meta")
    lengths, recon = model(torch.empty(3, 1, 28, 28, device="meta"), target)
    assert recon.shape == (3, 1, 28, 28)


def test_decoder_masks_longest_capsule_cpu():
    torch.manual_seed(0)
    model = CapsNet(decoder=True).eval()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        lengths, recon = model(x)
        # Reconstruct by hand from the longest capsule only.
        v = model.digit_caps(model.primary_caps(model.relu1(model.conv1(x))))
        k = lengths.argmax(dim=1)
        masked = torch.zeros_like(v)
        masked[torch.arange(2), k] = v[torch.arange(2), k]
        expected = model.decoder(masked.flatten(1)).view(2, 1, 28, 28)
    assert torch.allclose(recon, expected)
    assert torch.all((lengths >= 0) & (lengths < 1))  # squash keeps lengths in [0, 1)


def test_routing_iterations_option():
    model = _build(routings=1)
    assert model.digit_caps.routings == 1
    assert model(torch.empty(1, 1, 28, 28, device="meta")).shape == (1, 10)
    with pytest.raises(ValueError, match="routings must be >= 1, got 0"):
        _build(routings=0)


def test_routing_changes_output_cpu():
    # With one iteration the coupling is uniform; more iterations must reweight it.
    torch.manual_seed(0)
    one = CapsNet(routings=1)
    three = CapsNet(routings=3)
    three.load_state_dict(one.state_dict())
    x = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        assert not torch.allclose(one(x), three(x))


def test_squash():
    s = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    v = squash(s)
    # ||s|| = 5 -> ||v|| = 25 / 26, same direction; zero stays zero.
    assert torch.allclose(v[0], s[0] / 5 * 25 / 26)
    assert torch.equal(v[1], torch.zeros(2))


def test_num_classes_and_in_channels():
    model = _build(num_classes=5, in_channels=3, decoder=True)
    assert tuple(model.digit_caps.weight.shape) == (1152, 5, 16, 8)
    lengths, recon = model(torch.empty(2, 3, 28, 28, device="meta"))
    assert lengths.shape == (2, 5)
    assert recon.shape == (2, 3, 28, 28)
    expected = (
        (3 * 256 * 9 * 9 + 256) + PRIMARY + 1152 * 5 * 16 * 8
        + (16 * 5 * 512 + 512) + (512 * 1024 + 1024) + (1024 * 3 * 784 + 3 * 784)
    )
    assert _params(model) == expected
