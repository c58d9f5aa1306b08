"""data.decoder: torchcodec (the fvc-torchcodec distribution) picks the same frames as the PyAV reader.

Skipped, with the reason, where torchcodec is not installed or cannot load the system's FFmpeg
libraries (it needs FFmpeg 4-8 installed, e.g. `apt-get install ffmpeg`; CI without them skips).
"""

from __future__ import annotations

import polars as pl
import pytest
import torch

from fvc_core.errors import BadVideoError, PluginError
from tests.loaders.videos import available_encoders, index_of, make_video, marker_corner

reader = pytest.importorskip("fvc_loaders.reader")
from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402
from fvc_loaders.decoders import available_decoders, get_decoder  # noqa: E402

if "torchcodec" not in available_decoders():
    pytest.skip("the fvc-torchcodec plugin is not installed", allow_module_level=True)
try:
    get_decoder("torchcodec")
except PluginError as exc:
    pytest.skip(str(exc), allow_module_level=True)

ENCODERS = available_encoders()
CORPUS = {
    "h264-gop250-bframes": dict(codec="libx264", gop=250, bframes=3, frames=30),
    "h264-gop10": dict(codec="libx264", gop=10, bframes=2, frames=60),
    "hevc": dict(codec="libx265", bframes=2),
    "vp9-webm": dict(codec="libvpx-vp9"),
    "mjpeg-avi": dict(codec="mjpeg"),
    "odd-size-444": dict(codec="libx264", width=67, height=45, pix_fmt="yuv444p"),
    "with-audio": dict(codec="libx264", audio=True),
    "vfr": dict(codec="libx264", pts_ms=[0, 10, 20, 30, 40, 400, 800, 810, 820, 830, 840, 850], fps=100),
}


def indices(clip: torch.Tensor) -> list[int]:
    return [index_of(frame) for frame in clip.reshape(-1, *clip.shape[-3:])]


@pytest.fixture
def no_pyav_decoding(monkeypatch):
    """read_clip(decoder="torchcodec") must not fall back on the PyAV reader's decoding."""
    real = reader._sample

    def refuse(*args, **kwargs):
        raise AssertionError("the PyAV reader decoded")

    monkeypatch.setattr(reader, "_sample", refuse)
    return real


@pytest.mark.parametrize("name", CORPUS)
def test_same_frames_as_pyav(tmp_path, name, no_pyav_decoding, monkeypatch):
    options = dict(CORPUS[name])
    if options["codec"] not in ENCODERS:
        pytest.skip(f"this PyAV build has no {options['codec']} encoder")
    options.setdefault("width", 64 if options["codec"] == "libx265" else 48)
    options.setdefault("height", 64 if options["codec"] == "libx265" else 32)
    path = make_video(tmp_path / name, **options)

    def pyav(call, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(reader, "_sample", no_pyav_decoding)
            return call(*args, **kwargs)

    for num in (4, 7):
        ours = pyav(reader.read_clip, path, num, 32)
        theirs = reader.read_clip(path, num, 32, decoder="torchcodec")
        assert theirs.shape == ours.shape and theirs.dtype == torch.uint8
        assert indices(theirs) == indices(ours), num
        # Same letterbox geometry; pixels may differ by the resize's rounding only.
        assert (theirs.float() - ours.float()).abs().mean() < 8
    assert indices(reader.read_windows(path, 3, 32, count=2, fps=30, decoder="torchcodec")) == indices(
        pyav(reader.read_windows, path, 3, 32, count=2, fps=30))


@pytest.mark.parametrize("rotation", [90, 180])
def test_rotated_video_comes_out_upright(tmp_path, rotation):
    path = make_video(tmp_path / "rot", rotation=rotation, width=48, height=32, corner="top_right")
    clip = reader.read_clip(path, 3, 32, decoder="torchcodec")
    assert [marker_corner(f) for f in clip] == ["top_right"] * 3


def test_through_the_dataset_and_its_protocol(tmp_path):
    make_video(tmp_path / "a", frames=12)
    make_video(tmp_path / "b", frames=12, corner="bottom_left")
    pl.DataFrame({"video_path": ["a.mp4", "b.mp4"], "label": [0, 1]}).write_parquet(tmp_path / "m.parquet")
    data = MetadataDataset(MetadataConfig(metadata=tmp_path / "m.parquet", decoder="torchcodec", num_frames=4,
                                          size=32))
    assert data.protocol()["decoder"] == "torchcodec"
    assert indices(data.read_video(str(tmp_path / "a.mp4"))) == indices(reader.read_clip(tmp_path / "a.mp4", 4, 32))
    with pytest.raises(BadVideoError) as err:
        data.read_video(str(tmp_path / "missing.mp4"))
    assert "missing.mp4" in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_decoder_is_one_line_naming_the_valid_ones(tmp_path):
    make_video(tmp_path / "a", frames=4)
    pl.DataFrame({"video_path": ["a.mp4", "a2.mp4"], "label": [0, 1]}).write_parquet(tmp_path / "m.parquet")
    with pytest.raises(PluginError) as err:
        MetadataDataset(MetadataConfig(metadata=tmp_path / "m.parquet", decoder="torchcodek"))
    assert str(err.value).startswith("data.decoder: unknown decoder 'torchcodek'") and "torchcodec" in str(err.value)
