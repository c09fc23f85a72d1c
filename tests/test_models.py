import pytest
import torch

from igrm.models import MODELS, build_model, n_params

torch.set_num_threads(1)


@pytest.mark.parametrize("name,width", [("resnet18", 0.125), ("wrn16_8", 0.0625), ("small_cnn", 0.25)])
@pytest.mark.parametrize("in_channels,size,classes", [(3, 32, 10), (1, 28, 100)])
def test_output_shapes(name, width, in_channels, size, classes):
    torch.manual_seed(0)
    model = build_model(name, classes, in_channels, width)
    x = torch.randn(2, in_channels, size, size)
    model.train()
    assert model(x).shape == (2, classes)
    model.eval()
    with torch.no_grad():
        out_cf = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out_cl = model_cl(x.contiguous(memory_format=torch.channels_last))
    assert out_cf.shape == (2, classes)
    torch.testing.assert_close(out_cl, out_cf, rtol=1e-4, atol=1e-5)


def test_resnet18_full_width_parameter_count():
    # the CIFAR ResNet-18 (3x3 stem, no max-pool) has 11,173,962 parameters for 10 classes
    assert n_params(build_model("resnet18", 10, 3, 1.0)) == 11_173_962


def test_wrn16_8_parameter_count():
    # WRN-16-8 on CIFAR-10: about 11.0M parameters (Zagoruyko & Komodakis, table 1)
    assert 10.9e6 < n_params(build_model("wrn16_8", 10, 3, 1.0)) < 11.1e6


def test_unknown_model_names_choices():
    with pytest.raises(ValueError, match="small_cnn"):
        build_model("vgg", 10, 3, 1.0)
    assert set(MODELS) == {"resnet18", "wrn16_8", "small_cnn"}
