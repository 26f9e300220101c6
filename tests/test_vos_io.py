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


@pytest.mark.parametrize("case, message", [("empty", "empty"), ("rgb", "soft or blurred"),
                                           ("size", "64x40")])
def test_first_mask_errors_name_the_file(tmp_path, case, message):
    path = tmp_path / f"{case}.png"
    if case == "empty":
        write_indexed_png(path, np.zeros((48, 64), np.uint8))
    elif case == "rgb":  # a soft RGB mask: noise of many colours, no edge to snap
        rgb = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
        Image.fromarray(rgb, mode="RGB").save(path)
    else:
        m = np.zeros((40, 64), np.uint8)
        m[5:10, 5:10] = 1
        write_indexed_png(path, m)
    with pytest.raises(DataError) as err:
        read_first_mask(path, (48, 64))
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def _two_objects() -> np.ndarray:
    m = np.zeros((48, 64), np.uint8)
    m[10:20, 5:15], m[30:40, 40:60] = 1, 2
    return m


def test_rgb_mask_davis_colours_keep_their_ids_other_colours_are_numbered(tmp_path):
    from workbench.data.labels import davis_palette

    m = _two_objects()
    pal = np.array(davis_palette(), np.uint8).reshape(-1, 3)
    Image.fromarray(pal[m], mode="RGB").save(tmp_path / "davis_rgb.png")  # an indexed mask saved as RGB
    assert np.array_equal(read_first_mask(tmp_path / "davis_rgb.png", (48, 64)), m)
    Image.fromarray(pal[np.where(m == 1, 2, np.where(m == 2, 1, 0))], mode="RGB").save(tmp_path / "swapped.png")
    assert np.array_equal(read_first_mask(tmp_path / "swapped.png", (48, 64)), np.where(m == 1, 2, np.where(m == 2, 1, 0)))
    own = np.zeros((48, 64, 4), np.uint8)  # RGBA in the user's own colours: 1..K in colour order
    own[..., 3] = 255
    own[m == 1, :3], own[m == 2, :3] = (250, 200, 0), (0, 90, 255)
    Image.fromarray(own, mode="RGBA").save(tmp_path / "own.png")
    got = read_first_mask(tmp_path / "own.png", (48, 64))
    assert np.array_equal(got, np.where(m == 1, 2, np.where(m == 2, 1, 0)))  # (0,90,255) < (250,200,0)


def test_anti_aliased_masks_are_snapped_not_read_as_many_objects(tmp_path, caplog):
    """A binary or RGB mask with a soft one-pixel edge of many in-between values is thresholded
    (with a warning), never read as dozens of objects; a soft mask with no hard object is refused."""
    m = _two_objects()
    gray = (m > 0).astype(np.float64) * 255
    edge = np.zeros_like(m, bool)
    edge[9, 5:15], edge[20, 5:15] = True, True  # the rows above and below object 1
    ramp = np.linspace(20, 235, edge.sum())
    soft = gray.copy()
    soft[edge] = ramp
    Image.fromarray(soft.astype(np.uint8), mode="L").save(tmp_path / "soft_gray.png")
    with caplog.at_level("WARNING"):
        got = read_first_mask(tmp_path / "soft_gray.png", (48, 64))
    expected = (m > 0).astype(np.uint8)
    expected[edge] = (ramp >= 128).astype(np.uint8)  # nearest of 0 / 255
    assert np.array_equal(got, expected) and "anti-aliased" in caplog.text
    rgb = np.zeros((48, 64, 3), np.float64)
    rgb[m == 1], rgb[m == 2] = (255, 0, 0), (0, 0, 255)
    rgb[edge] = np.stack([ramp, np.zeros_like(ramp), np.zeros_like(ramp)], axis=1)  # black -> red blend
    Image.fromarray(rgb.astype(np.uint8), mode="RGB").save(tmp_path / "soft_rgb.png")
    got = read_first_mask(tmp_path / "soft_rgb.png", (48, 64))
    assert set(np.unique(got).tolist()) == {0, 1, 2}  # two objects, not 20
    assert np.array_equal(got[~edge], np.where(m == 1, 2, np.where(m == 2, 1, 0))[~edge])  # blue < red

    # a grey id mask keeps its ids, its void (255) and a small object (9 pixels, with an interior)
    ids = m.copy()
    ids[0, :] = 255
    ids[42:45, 2:5] = 3
    Image.fromarray(ids, mode="L").save(tmp_path / "ids.png")
    assert np.array_equal(read_first_mask(tmp_path / "ids.png", (48, 64)), ids)
    # a blurred mask (wide ramps, not a one-pixel edge) is refused, saying why
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter((m > 0).astype(np.float64) * 255, sigma=4)
    Image.fromarray(blurred.round().astype(np.uint8), mode="L").save(tmp_path / "blurred.png")
    with pytest.raises(DataError, match="soft or blurred"):
        read_first_mask(tmp_path / "blurred.png", (48, 64))


def test_missing_video_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_frames(tmp_path / "nope.mp4")
