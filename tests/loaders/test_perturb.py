"""``fvc evaluate --perturb``'s damage, each against an independent computation of it, on real encoded videos."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fvc_loaders import perturb
from fvc_loaders.perturb import Perturbed, available_perturbations, parse_specs, perturb_video
from fvc_loaders.reader import iter_frames, read_clip, timeline
from scipy import ndimage

from fvc_core.errors import UserError
from tests.builders import write_distribution
from tests.loaders.videos import make_video

RNG = np.random.default_rng(0)
# A textured picture: flat frames would hide blur, pixelation and compression.
PICTURE = np.clip(RNG.normal(128, 50, size=(48, 80, 3)), 0, 255).astype(np.uint8)

# BT.601 full range, written out (OpenCV's YCrCb is what the code uses).
Y_WEIGHTS = np.array([0.299, 0.587, 0.114])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64) / 255
    y = rgb @ Y_WEIGHTS
    return np.stack([y, (rgb[..., 2] - y) / 1.772, (rgb[..., 0] - y) / 1.402], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    r, b = y + 1.402 * cr, y + 1.772 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.stack([r, g, b], axis=-1) * 255


def close(ours: np.ndarray, reference: np.ndarray, tolerance: float) -> bool:
    return float(np.abs(ours.astype(np.float64) - reference).max()) <= tolerance


def test_the_issues_parameters_at_levels_one_to_five():
    known = available_perturbations()
    levels = {name: known[name].levels for name in perturb.GROUPS["deeperforensics"]}
    assert levels == {"saturation": (0.4, 0.3, 0.2, 0.1, 0.0), "contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
                      "block": (16, 32, 48, 64, 80), "noise": (0.001, 0.002, 0.005, 0.01, 0.05),
                      "blur": (7, 9, 13, 17, 21), "pixelation": (2, 3, 4, 5, 6),
                      "compression": (30, 32, 35, 38, 40)}
    assert known["c23"].levels == (23,) and known["c40"].levels == (40,)
    assert [p.name for p in parse_specs(["ffpp"], known=known)] == ["c23-1", "c40-1"]
    assert len(parse_specs(["deeperforensics"], known=known)) == 35


@pytest.mark.parametrize("factor", [0.4, 0.0])
def test_saturation_scales_the_chroma_and_keeps_the_luma(factor):
    ycc = rgb_to_ycbcr(PICTURE)
    ycc[..., 1:] *= factor
    assert close(perturb.saturation(PICTURE, factor, RNG), np.clip(ycbcr_to_rgb(ycc), 0, 255), 1.0)


def test_contrast_scales_every_pixel():
    assert close(perturb.contrast(PICTURE, 0.35, RNG), PICTURE * 0.35, 0.5 + 1e-6)


def test_noise_is_the_seeded_draw_added_in_limited_range_ycbcr():
    variance = 0.005
    ours = perturb.noise(PICTURE, variance, np.random.default_rng(5))
    draw = np.sqrt(variance) * np.random.default_rng(5).standard_normal(PICTURE.shape)
    ycc = rgb_to_ycbcr(PICTURE)
    # Limited range: Y' = (16 + 219 Y) / 255, C' = (128 + 224 C) / 255; the draw is added there.
    ycc[..., 0] += draw[..., 0] * 255 / 219
    ycc[..., 1] += draw[..., 1] * 255 / 224
    ycc[..., 2] += draw[..., 2] * 255 / 224
    assert close(ours, np.clip(ycbcr_to_rgb(ycc), 0, 255), 1.0)


@pytest.mark.parametrize("kernel", [7, 21])
def test_blur_is_a_gaussian_of_sigma_kernel_over_six(kernel):
    sigma = kernel / 6
    x = np.arange(kernel) - kernel // 2
    weights = np.exp(-x ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    reference = PICTURE.astype(np.float64)
    for axis in (0, 1):  # OpenCV's default border mirrors without repeating the edge: scipy's "mirror"
        reference = ndimage.correlate1d(reference, weights, axis=axis, mode="mirror")
    assert close(perturb.blur(PICTURE, kernel, RNG), reference, 0.5 + 1e-3)


def _bilinear(image: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    t = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t, size=size, mode=mode, **kw)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("factor", [2, 4])
def test_pixelation_is_bilinear_down_and_up(factor):
    h, w = PICTURE.shape[:2]
    small = np.clip(np.rint(_bilinear(PICTURE, (h // factor, w // factor))), 0, 255)
    reference = _bilinear(small, (h, w))
    assert close(perturb.pixelation(PICTURE, factor, RNG), reference, 0.5 + 1e-3)


def test_resize_averages_down_and_is_bilinear_up():
    h, w = PICTURE.shape[:2]
    small = np.clip(np.rint(PICTURE.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))), 0, 255)
    assert close(perturb.resize(PICTURE, 0.5, RNG), _bilinear(small, (h, w)), 0.5 + 1e-3)


def test_block_draws_grey_squares_where_the_seed_says():
    frame = np.zeros((300, 520, 3), dtype=np.uint8)  # short side 300: one whole 256, so 16 blocks
    ours = perturb.block(frame, 16, np.random.default_rng(9))
    rng, expected = np.random.default_rng(9), frame.copy()
    for _ in range(16):
        left, top = rng.integers(0, 520 - 8), rng.integers(0, 300 - 8)
        expected[top:top + 8, left:left + 8] = 128
    assert np.array_equal(ours, expected)
    assert perturb.block_count(600, 1000, 16) == 32 and perturb.block_count(64, 96, 16) == 16


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255 ** 2 / mse)


@pytest.fixture(scope="module")
def textured(tmp_path_factory):
    """A 64x96 video of moving noise (compression has something to lose), at a variable frame rate."""
    path = tmp_path_factory.mktemp("perturb") / "textured.mp4"
    rng = np.random.default_rng(1)
    base = np.clip(rng.normal(128, 60, size=(64, 160, 3)), 0, 255).astype(np.uint8)
    pts = [0, 40, 90, 130, 200, 240, 300, 340]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.time_base = stream.time_base = __import__("fractions").Fraction(1, 1000)
        stream.options = {"crf": "5", "preset": "ultrafast"}
        for i, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i * 8:i * 8 + 96]), format="rgb24")
            frame.pts = t
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_compression_is_a_real_libx264_reencode_losing_more_at_each_crf(textured, tmp_path):
    known = available_perturbations()
    source = list(iter_frames(textured))
    quality = []
    for level in range(1, 6):
        out = perturb_video(textured, tmp_path / f"c{level}.mkv", Perturbed(known["compression"], level))
        with av.open(str(out)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        # x264 writes its settings into the stream: the CRF asked for is the CRF used.
        assert f"crf={known['compression'].parameter(level)}.0".encode() in out.read_bytes()
        frames = list(iter_frames(out))
        assert len(frames) == len(source)
        quality.append(np.mean([_psnr(a, b) for a, b in zip(source, frames, strict=True)]))
    assert all(a > b for a, b in zip(quality, quality[1:], strict=False)), quality
    c23 = perturb_video(textured, tmp_path / "c23.mkv", Perturbed(known["c23"], 1))
    assert _psnr(source[0], next(iter_frames(c23))) > quality[0]


def test_frame_damage_is_applied_at_source_resolution_and_keeps_every_timestamp(textured, tmp_path):
    known = available_perturbations()
    out = perturb_video(textured, tmp_path / "blur.mp4", Perturbed(known["blur"], 5))
    assert timeline(out) == timeline(textured)
    damaged, source = list(iter_frames(out)), list(iter_frames(textured))
    # Frame by frame, the damage of the source-resolution frame, stored losslessly.
    for a, b in zip(source, damaged, strict=True):
        assert a.shape == b.shape == (64, 96, 3)
        assert np.array_equal(b, perturb.blur(a, 21, RNG))
    # The reader then scales the damaged frames as it scales clean ones: the same frames are picked.
    assert read_clip(out, 4, 32).shape == read_clip(textured, 4, 32).shape


def test_random_damage_is_reproducible_per_video_and_differs_between_videos(textured, tmp_path):
    known = available_perturbations()
    other = make_video(tmp_path / "other.mp4", width=96, height=64, frames=8)
    item = Perturbed(known["noise"], 3)
    a = perturb_video(textured, tmp_path / "a.mp4", item)
    b = perturb_video(textured, tmp_path / "b.mp4", item)
    assert np.array_equal(np.stack(list(iter_frames(a))), np.stack(list(iter_frames(b))))
    seeded = Perturbed(known["noise"], 3, seed=1)
    c = perturb_video(textured, tmp_path / "c.mp4", seeded)
    assert not np.array_equal(np.stack(list(iter_frames(a))), np.stack(list(iter_frames(c))))
    assert perturb.video_seed(textured, item).integers(1 << 30) != perturb.video_seed(other, item).integers(1 << 30)


@pytest.mark.parametrize("spec, message", [
    ("blurr", "unknown perturbation 'blurr'"),
    ("blur:6", "level 6 does not exist (levels 1-5)"),
    ("c23:2", "level 2 does not exist (levels 1-1)"),
    ("blur:x", "expected NAME or NAME:LEVELS"),
    ("blur:5-1", "the range '5-1' holds no level"),
])
def test_a_wrong_spec_is_one_line_naming_it(spec, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_specs([spec])


PERTURBATION_PLUGIN = '''
import numpy as np
from fvc_core.contract import hookimpl

class Invert:
    levels = (1.0,)
    unit = "share inverted"

    def apply(self, frame, parameter, rng):
        return (255 - frame).astype(np.uint8)

@hookimpl
def register_perturbations(register):
    register("invert", Invert(), description="a plugin's own damage")
'''


def test_a_plugins_perturbation_is_found_by_name(site, textured, tmp_path):
    write_distribution(site, "fvctest-invert", {"fvctest_invert": PERTURBATION_PLUGIN},
                       {"invert": "fvctest_invert"})
    [item] = parse_specs(["invert"])
    assert item.perturbation.plugin == "invert" and item.record()["description"] == "a plugin's own damage"
    out = perturb_video(textured, tmp_path / "inverted.mp4", item)
    assert np.array_equal(next(iter_frames(out)), 255 - next(iter_frames(textured)))
