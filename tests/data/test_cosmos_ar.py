"""``layout="cosmos_ar"``: the build writes what NVIDIA's ``prepare_dataset.py`` writes, checked against an
implementation of its steps written here, independently of :mod:`nemo_cosmos_tokenizer.data.cosmos_ar`.

The reference below reads frames with PyAV as ``torchvision.io.read_video`` does, normalises, pads, resizes with
``torch.nn.functional.interpolate(antialias=True)`` (what torchvision's tensor ``resize`` calls), crops with
torchvision's offsets (half-way offsets rounded to even) and encodes each video alone with the DV8x16x16
conformance network, float32 on CPU. Equal inputs through the same float32 network in the same batch size give
the same indices bit for bit, so the comparison is exact.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nemo_cosmos_tokenizer.data.build import BuildConfig, run_build
from nemo_cosmos_tokenizer.data.cosmos_ar import CosmosARLayout, read_cosmos_ar_sample
from nemo_cosmos_tokenizer.distributed import DistEnv

VIDEOS = (
    "cockatoo_portrait_360x640.mp4",  # portrait: resized to 57 x 32, the crop offset 12.5 rounds to 12 (even)
    "dog_odd_638x359.webm",  # odd sizes: resized to 32 x 57, offset 12.5 -> 12 (not 13, as half-up would)
    "keyboard_rot90_3frames.mov",  # 3 frames: padded with the last; rotation metadata not applied
    "plant_tiny_64x48.mp4",  # resized to 32 x 43: offset 5.5 -> 6 (not 5, as flooring would)
    "broken_truncated.mp4",  # a decodable head: its frames, padded
    "nasa_single_frame.mp4",
    "cat_tiny_17x13.png",  # an image: upscaled
    "broken_empty.mp4",  # failures
    "broken_text.mp4",
)
FAILED = {"broken_empty.mp4": "empty_file", "broken_text.mp4": "unreadable"}
HEIGHT, WIDTH, FRAMES = 32, 32, 9


def reference_frames(path: Path, num_frames: int) -> np.ndarray:
    """All frames up to ``num_frames`` of the first video stream as RGB, in decoding order; what decodes before an
    error is kept (torchvision's ``read_video`` swallows decoding errors)."""
    import av

    frames = []
    with av.open(str(path)) as container:
        try:
            for frame in container.decode(video=0):
                frames.append(frame.to_rgb().to_ndarray())
                if len(frames) == num_frames:
                    break
        except av.error.FFmpegError:
            assert frames, "the test expects a decodable head"
    return np.stack(frames)


def round_half_even(numerator: int) -> int:
    """``round(numerator / 2)`` with ties to the even integer, in integers."""
    half, odd = divmod(numerator, 2)
    return half + (1 if odd and half % 2 else 0)


def reference_pixels(path: Path) -> torch.Tensor:
    """float32 ``[3, T, H, W]`` in [-1, 1]: what NVIDIA's ``read_input_videos`` hands the encoder (batch dim aside)."""
    frames = torch.from_numpy(reference_frames(path, FRAMES)).to(torch.float32)  # [t, h, w, 3]
    video = frames / 255.0 * 2 - 1
    if len(video) < FRAMES:
        video = torch.cat([video] + [video[-1:]] * (FRAMES - len(video)))
    video = video[:FRAMES].permute(0, 3, 1, 2)  # [T, 3, h, w]
    h, w = video.shape[2:]
    scale = max(WIDTH / w, HEIGHT / h)
    new_h, new_w = math.ceil(scale * h), math.ceil(scale * w)
    if (new_h, new_w) != (h, w):
        video = torch.nn.functional.interpolate(video, size=(new_h, new_w), mode="bilinear", antialias=True)
    top, left = round_half_even(new_h - HEIGHT), round_half_even(new_w - WIDTH)
    video = video[:, :, top : top + HEIGHT, left : left + WIDTH]  # [T, 3, H, W]
    return video.permute(1, 0, 2, 3)  # [3, T, H, W]


def reference_tokens(network, path: Path) -> np.ndarray:
    with torch.no_grad():
        indices = network.encode(reference_pixels(path)[None])[0]  # [1, T', H', W']
    return indices[0].numpy().reshape(-1).astype(np.uint16)  # T, H, W order


def test_pixels_equal_an_independent_implementation(build):
    """The encoder's input, exactly (a one-pixel crop shift may leave a tiny network's 2 x 2 tokens unchanged)."""
    from nemo_cosmos_tokenizer.data.manifest import read_manifest
    from nemo_cosmos_tokenizer.media.clips import ClipSpec

    config, _, folder = build
    spec = ClipSpec(num_frames=FRAMES, height=HEIGHT, width=WIDTH, temporal_compression=8, spatial_compression=16)
    for sample in read_manifest(str(folder)).samples:
        read = read_cosmos_ar_sample(sample, spec)
        if sample.id in FAILED:
            assert read.failure is not None and read.failure.reason == FAILED[sample.id]
            continue
        (clip,) = read.clips
        assert clip.dtype == np.float32 and clip.shape == (3, FRAMES, HEIGHT, WIDTH)
        assert torch.equal(torch.from_numpy(clip), reference_pixels(folder / sample.id)), sample.id


@pytest.fixture(scope="module")
def build(tmp_path_factory, media_dir):
    from conformance_helpers import load_conformance_model, need_media

    need_media(media_dir, *VIDEOS)

    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    root = tmp_path_factory.mktemp("cosmos_ar")
    folder = root / "videos"  # NVIDIA's input: a folder of files, read in sorted order
    folder.mkdir()
    for name in VIDEOS:
        (folder / name).symlink_to(media_dir / name)
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    config = BuildConfig(input=str(folder), output_prefix=str(root / "out" / "ar"), tokenizer=str(model_dir),
                         layout="cosmos_ar", resolution=[HEIGHT, WIDTH], num_frames=FRAMES, batch_size=1,
                         chunk_size=3, device="cpu", dtype="float32", progress=False, nvidia_folders=True)
    summary = run_build(config, env=DistEnv())
    return config, summary, folder


def test_documents_equal_an_independent_implementation(build):
    from conformance_helpers import load_conformance_model
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    config, summary, folder = build
    network = load_conformance_model("DV8x16x16")
    written = sorted(name for name in VIDEOS if name not in FAILED)
    assert (summary.documents, summary.failed_samples) == (len(written), len(FAILED))
    dataset = IndexedDataset(config.output_prefix)
    assert len(dataset) == len(written)
    for i, name in enumerate(written):
        document = np.array(dataset[i], copy=True)
        assert document.dtype == np.uint16 and document.shape == (2 * 2 * 2,), name  # 9 frames -> 2 x (32/16) x (32/16)
        np.testing.assert_array_equal(document, reference_tokens(network, folder / name), err_msg=name)

    sidecar = json.loads(Path(f"{config.output_prefix}.json").read_text())
    assert sidecar["document_length"] == 8 and sidecar["dtype"] == "uint16" and sidecar["vocab_size"] == 64000
    assert sidecar["eod_id"] is None and sidecar["text_tokenizer"] is None
    assert sidecar["layout"] == CosmosARLayout(64000, (2, 2, 2)).to_dict()
    failures = {json.loads(line)["id"]: json.loads(line)["reason"] for line in config.failures_path.read_text().splitlines()}
    assert failures == FAILED


def test_nvidia_folders_hold_the_same_documents(build):
    """What NVIDIA's ``general.py`` reads: every ``<data_path>/<sub>/.bin`` + ``.idx``, as the prefix ``<sub>/``."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    config, summary, _ = build
    root = Path(config.output_prefix)
    subfolders = [p for p in sorted(root.iterdir()) if (p / ".bin").is_file() and (p / ".idx").is_file()]
    assert [p.name for p in subfolders] == ["0", "1", "2"]  # 9 samples in chunks of 3, named as NVIDIA names them
    assert not (root / ".bin").exists()  # (general.py would read a root .bin alone)
    documents = [np.array(ds[i]) for p in subfolders for ds in [IndexedDataset(f"{p}/")] for i in range(len(ds))]
    merged = IndexedDataset(config.output_prefix)
    assert len(documents) == len(merged) == summary.documents
    assert all(np.array_equal(a, merged[i]) for i, a in enumerate(documents))


@pytest.mark.parametrize(
    ("fields", "fix"),
    [
        (dict(template="both"), "no caption"),
        (dict(clips_per_video=2), "one document per video"),
        (dict(fps=12.0), "--fps"),
        (dict(video_backend="decord"), "--video-backend"),
        (dict(layout="generic", nvidia_folders=True), "--layout cosmos_ar"),
    ],
)
def test_settings_cosmos_ar_cannot_honour_are_refused(fields, fix):
    with pytest.raises(ValueError, match=fix):
        BuildConfig(**{"layout": "cosmos_ar", **fields})


def test_no_text_tokenizer_needed():
    BuildConfig(input="videos", output_prefix="out/ar", layout="cosmos_ar").require_paths()
    with pytest.raises(ValueError, match="--text-tokenizer"):
        BuildConfig(input="videos", output_prefix="out/ds").require_paths()


def test_cli_needs_no_text_tokenizer(tmp_path):
    """The CLI's early argument check follows the config: ``--layout cosmos_ar`` without ``--text-tokenizer`` is
    accepted, the generic layout without it is refused."""
    from nemo_cosmos_tokenizer.cli._errors import UsageError
    from nemo_cosmos_tokenizer.cli.build_dataset import build_parser, check_args

    (tmp_path / "videos").mkdir()
    common = ["--input", str(tmp_path / "videos"), "--output-prefix", str(tmp_path / "out" / "ar"),
              "--tokenizer", "tiny-random-dv8x16x16"]
    check_args(build_parser().parse_args([*common, "--layout", "cosmos_ar"]))
    with pytest.raises(UsageError, match="missing --text-tokenizer"):
        check_args(build_parser().parse_args(common))


def test_megatron_settings_say_there_is_no_eod(build):
    """Megatron-LM flags for a layout without eod: NullTokenizer over the 64,000 codes, no document-boundary flags,
    and a report that does not claim an eod id."""
    from nemo_cosmos_tokenizer.megatron import megatron_settings

    config, summary, _ = build
    settings = megatron_settings(config.output_prefix)
    args = settings.megatron_lm_args()
    assert args[args.index("--vocab-size") + 1] == "64000" and "--eod-mask-loss" not in args
    assert settings.seq_length == 64  # the smallest multiple of 64 holding the 8-id documents
    report = settings.format()
    assert "this layout writes no eod" in report and "eod is None" not in report
    # 7 videos in NVIDIA's one folder: 98,1,1 leaves valid and test empty; 5,1,1 gives each one video.
    assert "7 videos in one folder leave its valid or test split empty" in report and "--split_string 5,1,1" in report


def test_defaults_are_nvidias_and_explicit_settings_win():
    """cosmos_ar's defaults are NVIDIA's prepare_dataset.py settings (bf16 also on a CPU, one video per call, 250
    videos per folder, the folders); the other layouts keep theirs; explicit values win and are named."""
    from nemo_cosmos_tokenizer.data.cosmos_ar import NVIDIA_SETTINGS, nvidia_differences

    ar = BuildConfig(layout="cosmos_ar", device="cpu")
    assert (ar.dtype, ar.batch_size, ar.chunk_size, ar.nvidia_folders) == ("bfloat16", 1, 250, True)
    generic = BuildConfig(device="cpu")
    assert (generic.dtype, generic.batch_size, generic.chunk_size, generic.nvidia_folders) == ("auto", 8, 512, False)
    mine = BuildConfig(layout="cosmos_ar", dtype="float32", batch_size=4, chunk_size=512, nvidia_folders=False)
    assert (mine.dtype, mine.batch_size, mine.chunk_size, mine.nvidia_folders) == ("float32", 4, 512, False)
    assert nvidia_differences({k: getattr(ar, k) for k in NVIDIA_SETTINGS}) == []
    named = [d.split("=")[0] for d in nvidia_differences({k: getattr(mine, k) for k in NVIDIA_SETTINGS})]
    assert named == ["dtype", "batch_size", "chunk_size", "nvidia_folders"]


def test_sidecar_names_what_differs_from_nvidia(build):
    config, _, _ = build  # float32, chunks of 3
    nvidia = json.loads(Path(f"{config.output_prefix}.json").read_text())["nvidia"]
    assert nvidia["exact"] is False and nvidia["folders"] == "ar/"
    assert [d.split("=")[0] for d in nvidia["differences"]] == ["dtype", "chunk_size"]


@pytest.fixture(scope="module")
def default_build(tmp_path_factory, media_dir):
    """A cosmos_ar build with every default but the frame size: bf16 on the CPU, one chunk."""
    from conformance_helpers import load_conformance_model

    from nemo_cosmos_tokenizer.hub.convert import save_pretrained

    root = tmp_path_factory.mktemp("cosmos_ar_default")
    folder = root / "videos"
    folder.mkdir()
    for name in VIDEOS[:3]:
        (folder / name).symlink_to(media_dir / name)
    model_dir = save_pretrained(load_conformance_model("DV8x16x16"), root / "dv8x16x16")
    config = BuildConfig(input=str(folder), output_prefix=str(root / "out" / "ar"), tokenizer=str(model_dir),
                         layout="cosmos_ar", resolution=[HEIGHT, WIDTH], num_frames=FRAMES, device="cpu",
                         progress=False)
    return config, run_build(config, env=DistEnv()), folder


def test_default_build_is_bf16_in_one_nvidia_folder(default_build):
    """bf16 tokens (equal to the conformance network cast to bf16 encoding the reference pixels alone), one chunk
    laid out as NVIDIA's single folder <prefix>/.bin, the dtype in the config hash, the sidecar saying exact."""
    import copy

    from conformance_helpers import load_conformance_model
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    config, summary, folder = default_build
    network = copy.deepcopy(load_conformance_model("DV8x16x16")).to(torch.bfloat16)
    root = Path(config.output_prefix)
    assert (root / ".bin").is_file() and not [p for p in root.iterdir() if p.is_dir()]
    dataset, merged = IndexedDataset(f"{root}/"), IndexedDataset(config.output_prefix)
    names = sorted(p.name for p in folder.iterdir())
    assert len(dataset) == len(merged) == summary.documents == len(names)
    for i, name in enumerate(names):
        with torch.no_grad():
            expected = network.encode(reference_pixels(folder / name)[None].to(torch.bfloat16))[0]  # [1, T', H', W']
        np.testing.assert_array_equal(np.array(dataset[i]), expected[0].numpy().reshape(-1).astype(np.uint16), name)
        np.testing.assert_array_equal(np.array(dataset[i]), np.array(merged[i]))
    sidecar = json.loads(Path(f"{config.output_prefix}.json").read_text())
    assert sidecar["encoding"]["dtype"] == "bfloat16" and sidecar["chunks"]["chunk_size"] == 250
    assert sidecar["nvidia"] == {"exact": True, "differences": [], "folders": "ar/"}


def test_default_build_refuses_another_dtype_and_relays_folders(default_build):
    import dataclasses

    from nemo_cosmos_tokenizer.data import ConfigMismatchError
    from nemo_cosmos_tokenizer.data.build.merging import write_nvidia_folders

    config, _, _ = default_build
    with pytest.raises(ConfigMismatchError, match="dtype"):
        run_build(dataclasses.replace(config, dtype="float32"), env=DistEnv())
    root = Path(config.output_prefix)
    write_nvidia_folders(config, [0], 2)  # as if the build had two chunks: <prefix>/0/, and no root .bin any more
    assert (root / "0" / ".bin").is_file() and not (root / ".bin").exists()
    write_nvidia_folders(config, [0], 1)  # back to one chunk: the folder 0 is gone
    assert (root / ".bin").is_file() and not (root / "0").exists()


def test_bfloat16_reader_changes_ids():
    """NVIDIA's Video2World reader casts ids to bfloat16 first: an id survives only with at most 8 significant
    bits (counted here with integers, independently of torch's cast)."""
    from nemo_cosmos_tokenizer.data.video2world import BOV_ID, PAD_ID, as_read_by_nvidia

    ids = torch.arange(0, 64064)
    survives = torch.tensor([i < 256 or (i >> (i.bit_length() - 8)) << (i.bit_length() - 8) == i for i in range(64064)])
    np.testing.assert_array_equal((as_read_by_nvidia(ids) == ids).numpy(), survives.numpy())
    assert int(as_read_by_nvidia(torch.tensor([PAD_ID]))) == BOV_ID and int((~survives).sum()) > 62000


def test_check_bfloat16_ids_of_a_folder(tmp_path):
    from nemo_cosmos_tokenizer.data.video2world import check_bfloat16_ids, video_tokens

    torch.save(video_tokens(np.array([0, 7, 256, 257, 63999])), tmp_path / "train_video_0.pt")
    torch.save(video_tokens(np.array([1, 2, 3])), tmp_path / "test_video_0.pt")
    report = check_bfloat16_ids(tmp_path)
    # 257 -> 256, 63999 -> 64000, and the 64 pads 64002 -> 64000 of each file; BOV 64000 survives.
    assert (report.files, report.ids, report.changed) == (2, (1 + 5 + 64) + (1 + 3 + 64), (2 + 64) + 64)
    assert report.examples == ((64002, 64000),) * 5  # test_video_0.pt comes first: its pads
    assert "change in NVIDIA's reader" in report.format()
