"""A user's own footage: video files, frame folders and the first-frame mask checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.data.io import write_indexed_png, write_rgb
from workbench.errors import DataError
from workbench.vos.video_io import read_first_mask, read_frames


def _frames(t: int = 5, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((t, h, w, 3)) * 255).astype(np.uint8)


def test_frame_folder_and_video_file(tmp_path):
    import imageio.v2 as imageio

    frames = _frames()
    for i, f in enumerate(frames):
        write_rgb(tmp_path / "frames" / f"{i:05d}.png", f)
    got, names = read_frames(tmp_path / "frames")
    assert got.shape == (5, 48, 64, 3) and names == [f"{i:05d}" for i in range(5)]
    assert np.array_equal(got, frames)
    with imageio.get_writer(tmp_path / "clip.mp4", fps=10, macro_block_size=16) as wr:
        for f in frames:
            wr.append_data(f)
    got, names = read_frames(tmp_path / "clip.mp4")
    assert got.shape == (5, 48, 64, 3) and names[0] == "00000"
    assert np.abs(got.astype(int) - frames).mean() < 60   # lossy codec, same content


def test_first_mask_accepts_indexed_and_binary(tmp_path):
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 5:15], m[30:40, 40:60] = 1, 2
    write_indexed_png(tmp_path / "m.png", m)
    assert np.array_equal(read_first_mask(tmp_path / "m.png", (48, 64)), m)
    Image.fromarray((m > 0).astype(np.uint8) * 255, mode="L").save(tmp_path / "bin.png")
    assert np.array_equal(read_first_mask(tmp_path / "bin.png", (48, 64)), (m > 0).astype(np.uint8))


@pytest.mark.parametrize("case, message", [("empty", "empty"), ("rgb", "RGB image"),
                                           ("size", "64x40")])
def test_first_mask_errors_name_the_file(tmp_path, case, message):
    path = tmp_path / f"{case}.png"
    if case == "empty":
        write_indexed_png(path, np.zeros((48, 64), np.uint8))
    elif case == "rgb":
        rgb = np.zeros((48, 64, 3), np.uint8)
        rgb[10:20, 10:20] = (128, 0, 0)
        Image.fromarray(rgb, mode="RGB").save(path)
    else:
        m = np.zeros((40, 64), np.uint8)
        m[5:10, 5:10] = 1
        write_indexed_png(path, m)
    with pytest.raises(DataError) as err:
        read_first_mask(path, (48, 64))
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_video_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_frames(tmp_path / "nope.mp4")
