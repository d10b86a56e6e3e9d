"""CausalVideoTokenizer / ImageTokenizer on tiny conformance-weight models exported as NVIDIA-layout .jit files."""

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tolerances import encoder_atol

from nemo_cosmos_tokenizer import CausalVideoTokenizer, ImageTokenizer
from nemo_cosmos_tokenizer.hub.convert import save_pretrained
from nemo_cosmos_tokenizer.hub.resolve import CheckpointNotFoundError, WrongFamilyError

CASES = [("DV4x8x8", CausalVideoTokenizer), ("CV8x16x16", CausalVideoTokenizer), ("CI8x8", ImageTokenizer),
         ("DI16x16", ImageTokenizer)]


def _load(cls, d, **kwargs):
    kwargs.setdefault("dtype", "float32")
    kwargs.setdefault("device", "cpu")
    return cls(checkpoint_enc=d / "encoder.jit", checkpoint_dec=d / "decoder.jit", **kwargs)


@pytest.mark.parametrize("case,cls", CASES)
def test_jit_mode_equals_native_mode_in_float32(case, cls, jit_case_dir, conformance_dir):
    d = jit_case_dir(case)
    jit = cls(checkpoint=d / "autoencoder.jit", checkpoint_enc=d / "encoder.jit", checkpoint_dec=d / "decoder.jit",
              dtype="float32", device="cpu", mode="jit")
    native = _load(cls, d)
    assert (jit.mode, native.mode) == ("jit", "torch")
    x = load_file(str(conformance_dir / case / "input.safetensors"))["input"]
    a, b = jit.encode(x), native.encode(x)
    assert len(a) == len(b) == (2 if native.is_discrete else 1)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and torch.equal(u, v)
    # Native mode reproduces the conformance (reference) outputs through the .jit file.
    golden = load_file(str(conformance_dir / case / "output.safetensors"))
    if native.is_discrete:
        assert torch.equal(b[0], golden["indices"])
    else:
        torch.testing.assert_close(b[0], golden["latent"], atol=5e-5, rtol=0)
    assert torch.equal(jit.decode(a[0]), native.decode(b[0]))
    assert torch.equal(jit.autoencode(x), native.autoencode(x))
    pixels = np.random.default_rng(0).integers(0, 256, (1, 5, 19, 21, 3) if native.config.is_video else (2, 19, 21, 3),
                                               dtype=np.uint8)
    assert np.array_equal(jit(pixels), native(pixels))


def test_readme_call_styles(jit_case_dir):
    d = jit_case_dir("DV4x8x8")
    # The original README: one object per file, default dtype (bfloat16) and device (CPU here).
    enc = CausalVideoTokenizer(checkpoint_enc=str(d / "encoder.jit"))
    x = torch.rand(1, 3, 9, 32, 32) * 2 - 1  # float32 input is cast to the tokenizer's bfloat16 at the boundary
    (indices, codes) = enc.encode(x)
    assert indices.shape == (1, 3, 4, 4) and indices.dtype == torch.int32 and codes.shape == (1, 6, 3, 4, 4)
    assert enc.dtype == torch.bfloat16 and enc.device.type == "cpu"
    dec = CausalVideoTokenizer(checkpoint_dec=str(d / "decoder.jit"))
    y = dec.decode(indices)
    assert y.shape == (1, 3, 9, 32, 32) and y.dtype == torch.bfloat16
    with pytest.raises(RuntimeError, match="without decoder weights; pass checkpoint_dec"):
        enc.decode(indices)
    with pytest.raises(RuntimeError, match="without encoder weights"):
        dec.encode(x)
    with pytest.raises(ValueError, match="1 \\+ k\\*4 frames"):
        enc.encode(torch.zeros(1, 3, 8, 32, 32))


def test_forward_pads_windows_and_crops(jit_case_dir):
    tok = _load(CausalVideoTokenizer, jit_case_dir("CV8x16x16"))
    video = np.random.default_rng(1).integers(0, 256, (2, 20, 13, 17, 3), dtype=np.uint8)
    out = tok(video, temporal_window=9, batch_windows=4)
    assert out.shape == video.shape and out.dtype == np.uint8
    # Window by window (0-9, 9-18, 18-20), each padded on its own: the first equals a direct autoencode.
    first = tok(video[:, :9], temporal_window=None)
    assert np.array_equal(out[:, :9], first)
    # Batching windows does not change the result (beyond float noise at the rounding step).
    one_by_one = tok(video, temporal_window=9, batch_windows=1)
    assert np.abs(out.astype(int) - one_by_one.astype(int)).max() <= 1
    # Window shorter than the compression, single frame, whole clip.
    assert tok(video[:, :1]).shape == (2, 1, 13, 17, 3)
    assert tok(video, temporal_window=None).shape == video.shape


def test_last_frame_padding_keeps_causal_latents(jit_case_dir):
    tok = _load(CausalVideoTokenizer, jit_case_dir("CV8x16x16"))
    video = np.random.default_rng(2).integers(0, 256, (1, 12, 32, 32, 3), dtype=np.uint8)
    (latent,) = tok.encode_uint8(video, temporal_window=None)  # 12 frames -> padded to 17 -> 3 latent frames
    (exact,) = tok.encode_uint8(video[:, :9], temporal_window=None)  # 9 = 1 + 8: no padding, 2 latent frames
    assert latent.shape == (1, 16, 3, 2, 2)
    # Causal: the first latent frames see the same pixels; only the sums' order may differ (another frame count).
    # Bound from the network's reductions and |exact| (tests/tolerances.py).
    atol = encoder_atol(tok.network, exact)
    torch.testing.assert_close(latent[:, :, :2], exact, atol=atol, rtol=0)
    (windowed,) = tok.encode_uint8(video, temporal_window=9)  # windows of 9 + 3 (-> 9) frames: 2 + 2 latent frames
    assert windowed.shape == (1, 16, 4, 2, 2)
    torch.testing.assert_close(windowed[:, :, :2], exact, atol=atol, rtol=0)


def test_image_forward_and_encode_uint8(jit_case_dir):
    tok = _load(ImageTokenizer, jit_case_dir("DI16x16"))
    images = np.random.default_rng(3).integers(0, 256, (3, 13, 17, 3), dtype=np.uint8)
    out = tok(images, batch_size=2)
    assert out.shape == images.shape
    assert np.array_equal(out, tok(images))
    indices, codes = tok.encode_uint8(images)  # padded to 16 x 32
    assert indices.shape == (3, 1, 2) and codes.shape == (3, 6, 1, 2)


def test_wrong_family_missing_file_unknown_architecture(jit_case_dir, tmp_path):
    video_dir, image_dir = jit_case_dir("DV4x8x8"), jit_case_dir("CI8x8")
    with pytest.raises(WrongFamilyError, match="discrete causal video tokenizer .*use CausalVideoTokenizer"):
        ImageTokenizer(checkpoint_enc=video_dir / "encoder.jit")
    # Without config.json the family comes from the weights' key names.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(image_dir / "decoder.jit", bare / "decoder.jit")
    with pytest.raises(WrongFamilyError, match="continuous image tokenizer .*use ImageTokenizer"):
        CausalVideoTokenizer(checkpoint_dec=bare / "decoder.jit")
    with pytest.raises(WrongFamilyError):
        CausalVideoTokenizer(checkpoint_dec=bare / "decoder.jit", mode="jit")
    with pytest.raises(CheckpointNotFoundError, match="not found: .*nowhere/encoder.jit"):
        CausalVideoTokenizer(checkpoint_enc=tmp_path / "nowhere" / "encoder.jit")
    with pytest.raises(ValueError, match="needs checkpoint"):
        CausalVideoTokenizer()
    # A reduced model with no config.json: no released architecture matches. Native mode says what to pass;
    # the default falls back to running the TorchScript file.
    with pytest.raises(ValueError, match="match no released model. Pass tokenizer_config="):
        ImageTokenizer(checkpoint_dec=bare / "decoder.jit", mode="torch")
    fallback = ImageTokenizer(checkpoint_dec=bare / "decoder.jit", dtype="float32")
    assert fallback.mode == "jit" and fallback.config is None and fallback.spatial_multiple == 16
    explicit = ImageTokenizer(checkpoint_dec=bare / "decoder.jit", dtype="float32",
                              tokenizer_config=_kwargs(image_dir))
    assert explicit.mode == "torch" and explicit.spatial_multiple == 8


def _kwargs(d):
    import json

    return json.loads((d / "config.json").read_text())["kwargs"]


def test_safetensors_directory_and_device_dtype_boundary(jit_case_dir, load_conformance_model, tmp_path):
    model = load_conformance_model("CI8x8")
    save_pretrained(model, tmp_path / "ci")
    tok = ImageTokenizer(checkpoint=tmp_path / "ci", dtype="float32", device="cpu")
    x = torch.rand(2, 3, 16, 24, dtype=torch.float64) * 2 - 1  # float64 input is cast at the boundary
    (latent,) = tok.encode(x)
    assert latent.dtype == torch.float32
    # The same weights, input and shapes run the same kernels in the same order: bit-identical on any CPU.
    torch.testing.assert_close(latent, model.encode(x.float())[0], atol=0, rtol=0)
    native = tok.to_native()
    assert native is tok
    jit = ImageTokenizer(checkpoint_enc=jit_case_dir("CI8x8") / "encoder.jit", mode="jit", dtype="float32")
    converted = jit.to_native()
    assert converted.mode == "torch" and torch.equal(converted.encode(x)[0], jit.encode(x)[0])
    # .to() on the wrapper moves the weights, and inputs follow.
    tok.to(torch.float64)
    assert tok.dtype == torch.float64 and tok.encode(x)[0].dtype == torch.float64
