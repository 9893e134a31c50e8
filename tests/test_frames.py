"""Frame sources: an image folder and a synthetic scene rendered on demand give the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepmot.data.frames import IMAGENET_MEAN, ImageFolder, RenderedFrames, image_to_tensor
from deepmot.data.sequence import Sequence
from deepmot.data.synthetic import SceneConfig, generate_scene, write_sequence
from deepmot.errors import DeepMOTError

SMALL = SceneConfig(frames=12, width=320, height=240, people=5, seed=3, name="S")


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SMALL)


def test_rendered_scene_and_written_jpegs_give_the_same_pixels(tmp_path, scene):
    folder = write_sequence(scene, tmp_path / "S", progress=False)
    from_disk = Sequence.from_dir(folder)
    in_memory = scene.to_sequence()
    assert isinstance(from_disk.frame_source, ImageFolder) and from_disk.has_images
    assert isinstance(in_memory.frame_source, RenderedFrames) and in_memory.has_images
    rendered = [in_memory.read_image(f).astype(np.int16) for f in in_memory.frames]
    for frame in (1, 6, 12):
        a = from_disk.read_image(frame).astype(np.int16)
        assert a.shape == rendered[0].shape == (240, 320, 3)
        errors = [np.abs(a - b).mean() for b in rendered]
        # JPEG at quality 90: a small mean error, and the written frame is closest to its own
        assert errors[frame - 1] < 4.0, errors[frame - 1]
        assert int(np.argmin(errors)) == frame - 1, errors


def test_clips_read_the_frames_of_their_own_numbering(scene):
    seq = scene.to_sequence()
    clip = seq.clip(range(5, 9))
    np.testing.assert_array_equal(clip.read_image(1), seq.read_image(5))
    np.testing.assert_array_equal(clip.read_image(4), scene.render_frame(8))
    with pytest.raises(IndexError):
        clip.read_image(5)


def test_rendered_frames_are_cached_deterministic_and_read_only(scene):
    calls = []

    def render(frame: int) -> np.ndarray:
        calls.append(frame)
        return scene.render_frame(frame)

    source = RenderedFrames(render, cache_size=2)
    a = source.read(3)
    assert source.read(3) is a and calls == [3]
    source.read(4)
    source.read(5)  # evicts 3
    again = source.read(3)
    assert calls == [3, 4, 5, 3]
    np.testing.assert_array_equal(again, a)  # deterministic: the same pixels re-rendered
    with pytest.raises(ValueError):
        a[0, 0, 0] = 1
    with pytest.raises(ValueError, match="cache_size"):
        RenderedFrames(render, cache_size=-1)


def test_sequences_without_frames_say_so(tmp_path, scene):
    folder = write_sequence(scene, tmp_path / "S", render=False)
    seq = Sequence.from_dir(folder)
    assert not seq.has_images and seq.frame_source is None
    with pytest.raises(DeepMOTError, match="no frames"):
        seq.read_image(1)
    missing = ImageFolder(tmp_path / "nowhere")
    with pytest.raises(DeepMOTError, match="000001.jpg"):
        missing.read(1)


def test_image_to_tensor():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255
    tensor = image_to_tensor(image)
    assert tensor.shape == (3, 4, 6) and tensor.dtype == torch.float32
    assert float(tensor[0].min()) == 1.0 and float(tensor[1:].abs().max()) == 0.0
    normalised = image_to_tensor(image, normalize=True)
    expected_green = -IMAGENET_MEAN[1] / 0.224
    torch.testing.assert_close(normalised[1], torch.full((4, 6), expected_green))
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(image.astype(np.float32))


def test_a_read_only_frame_converts_without_a_warning() -> None:
    import warnings

    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    image.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = image_to_tensor(image)
    assert tensor.shape == (3, 4, 5)
    assert float(tensor[2, 3, 4]) == pytest.approx(image[3, 4, 2] / 255.0)
