"""Video input: sampling formula, frame access, one decode pass, bytes / frame folders, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from artemis_model.errors import FrameIndexError, VideoDecodeError
from artemis_model.video import (
    DecordVideo,
    FrameFolderVideo,
    iter_frames,
    open_video,
    read_frames_union,
    sample_global_indices,
)
from artemis_model.video import source as video_mod
from artemis_model.video.pyav import PyAVVideo
from tests.artemis_model.synthetic_clips import textured_background, write_mp4

N_FRAMES = 90
GOP = 15
BITS = 8


def coded_frame(i: int, bg: np.ndarray) -> np.ndarray:
    """A frame whose top row of 16 px blocks spells ``i`` in binary (white = 1)."""
    frame = bg.copy()
    for b in range(BITS):
        frame[0:16, b * 16 : (b + 1) * 16] = 255 if (i >> b) & 1 else 0
    return frame


def read_code(frame: np.ndarray) -> int:
    return sum(1 << b for b in range(BITS) if frame[8, b * 16 + 8].mean() > 128)


@pytest.fixture(scope="module")
def coded_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bg = textured_background(5, 160, 120)
    frames = [coded_frame(i, bg) for i in range(N_FRAMES)]
    return write_mp4(tmp_path_factory.mktemp("video") / "coded.mp4", frames, gop=GOP)


@pytest.fixture(params=["pyav", "decord"])
def decoder(request: pytest.FixtureRequest) -> str:
    return request.param


def spec_indices(n: int, max_frames: int = 100) -> list[int]:
    """The reference formula, written out again for the test."""
    t = min(n, max_frames)
    seg = (n - 1) / t
    out = []
    for i in range(t):
        start, end = round(seg * i), round(seg * (i + 1))
        out.append((start + end) // 2)
    return out


# --- sampling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 99, 100, 101, 250, 1000, 1801, 18000])
def test_sampling_matches_the_spec_formula(n: int) -> None:
    got = sample_global_indices(n)
    assert got == spec_indices(n)
    assert len(got) == min(n, 100)
    assert all(0 <= i < n for i in got)
    assert got == sorted(got)


def test_sampling_hand_values() -> None:
    # seg = 0.9: round(4.5) = 4 (half to even) makes frame 4 appear twice and frame 9 never.
    assert sample_global_indices(10) == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8]
    assert sample_global_indices(3) == [0, 1, 1]
    assert sample_global_indices(1) == [0]
    long = sample_global_indices(1000)  # seg = 9.99
    assert long[:3] == [5, 15, 25] and long[-1] == 994
    assert sample_global_indices(200)[:3] == [1, 3, 5]
    assert sample_global_indices(20, max_frames=4) == [2, 7, 12, 16]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_sampling_rejects_bad_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="num_frames"):
        sample_global_indices(bad)  # type: ignore[arg-type]


# --- frame access ---------------------------------------------------------------------------------------


def test_metadata_and_frames_in_request_order(coded_mp4: Path, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    assert isinstance(video, PyAVVideo if decoder == "pyav" else DecordVideo)
    assert (video.num_frames, video.width, video.height) == (N_FRAMES, 160, 120)
    assert video.fps == pytest.approx(25.0)
    request = [70, 3, 3, 89, 0, 44, 3]
    frames = video.get_frames(request)
    assert frames.shape == (len(request), 120, 160, 3) and frames.dtype == np.uint8
    assert [read_code(f) for f in frames] == request
    assert video.stats.decode_calls == 1
    assert video.stats.frames_decoded == len(set(request))  # duplicates decoded once
    assert np.array_equal(frames[1], frames[2])


def test_frames_match_a_sequential_pyav_decode(coded_mp4: Path, decoder: str) -> None:
    with av.open(str(coded_mp4)) as container:
        reference = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    video = open_video(coded_mp4, decoder=decoder)
    rng = np.random.default_rng(0)
    request = [int(i) for i in rng.choice(N_FRAMES, size=20, replace=False)]
    for idx, frame in zip(request, video.get_frames(request), strict=True):
        diff = np.abs(frame.astype(np.int16) - reference[idx].astype(np.int16)).mean()
        assert diff < 3.0, (idx, diff)


def test_global_and_roi_frames_come_from_one_decode_pass(coded_mp4: Path, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    global_idx = sample_global_indices(video.num_frames, max_frames=16)
    roi_idx = [50, 3, 77, 77, global_idx[2]]
    g, r = read_frames_union(video, global_idx, roi_idx)
    assert video.stats.decode_calls == 1
    assert video.stats.frames_decoded == len(set(global_idx) | set(roi_idx))
    assert [read_code(f) for f in g] == global_idx
    assert [read_code(f) for f in r] == roi_idx


def test_decode_time_resize(coded_mp4: Path, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    small = video.get_frames([5, 1], size=(80, 60))
    assert small.shape == (2, 60, 80, 3)
    full = video.get_frames([5])[0]
    expected = cv2.resize(full, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(small[0].astype(np.int16) - expected.astype(np.int16)).mean() < 12


def test_backward_streaming_decodes_each_gop_once(coded_mp4: Path, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    keys = video.key_frames
    assert keys is not None and keys[0] == 0 and len(keys) >= N_FRAMES // GOP
    order = list(range(N_FRAMES - 1, -1, -1))
    seen = [(idx, read_code(frame)) for idx, frame in iter_frames(video, order, chunk_size=8)]
    assert [i for i, _ in seen] == order
    assert all(i == code for i, code in seen)
    assert video.stats.decode_calls == len(keys)  # one chunk per group of pictures
    assert video.stats.frames_decoded == N_FRAMES


def test_forward_streaming_in_chunks(coded_mp4: Path, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    seen = [idx for idx, frame in iter_frames(video, range(10, 50), chunk_size=16) if read_code(frame) == idx]
    assert seen == list(range(10, 50))
    assert video.stats.decode_calls == 3


@pytest.mark.parametrize("bad", [-1, N_FRAMES, 10**6, 2.0, "3"])
def test_out_of_range_index_raises_frame_index_error(coded_mp4: Path, bad: object, decoder: str) -> None:
    video = open_video(coded_mp4, decoder=decoder)
    with pytest.raises(FrameIndexError, match=str(bad)):
        video.get_frames([0, bad])  # type: ignore[list-item]
    assert video.stats.decode_calls == 0


def test_numpy_indices_are_accepted(coded_mp4: Path) -> None:
    video = open_video(coded_mp4)
    frames = video.get_frames(np.array([4, 2]))
    assert [read_code(f) for f in frames] == [4, 2]


# --- bytes, folders, hashes -----------------------------------------------------------------------------


def test_bytes_input_matches_the_file(coded_mp4: Path, tmp_path: Path, decoder: str) -> None:
    data = coded_mp4.read_bytes()
    from_file = open_video(coded_mp4, decoder=decoder)
    from_bytes = open_video(data, decoder=decoder)
    assert from_bytes.num_frames == from_file.num_frames
    assert from_bytes.content_hash == from_file.content_hash == hashlib.sha256(data).hexdigest()
    assert np.array_equal(from_bytes.get_frames([7, 60]), from_file.get_frames([7, 60]))

    spill = tmp_path / "spill"
    via_file = open_video(data, tmp_dir=spill, decoder=decoder)
    assert [p.parent for p in spill.iterdir()] == [spill]  # the temp file lives where the caller said
    assert via_file.content_hash == from_file.content_hash
    assert [read_code(f) for f in via_file.get_frames([33])] == [33]
    via_file.close()
    assert list(spill.iterdir()) == []
    with pytest.raises(VideoDecodeError):
        open_video(b"not a video" * 10, tmp_dir=spill, decoder=decoder)
    assert list(spill.iterdir()) == []


def test_content_hash_changes_with_content(coded_mp4: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.mp4"
    data = bytearray(coded_mp4.read_bytes())
    copy.write_bytes(bytes(data))
    first = open_video(copy).content_hash
    assert first == open_video(coded_mp4).content_hash
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert video_mod.file_content_hash(copy) != first


def test_sampled_hash_of_big_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video_mod, "FULL_HASH_MAX_BYTES", 3 * 2**20)
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 5 * 2**20, dtype=np.uint8).tobytes())
    path.write_bytes(bytes(data))
    base = video_mod.file_content_hash(path)
    assert base != hashlib.sha256(data).hexdigest()  # sampled mode
    for offset in (10, len(data) - 10, 2**20 + 100):  # head, tail, and the first sampled chunk
        changed = bytearray(data)
        changed[offset] ^= 1
        path.write_bytes(bytes(changed))
        assert video_mod.file_content_hash(path) != base
    path.write_bytes(bytes(data) + b"x")
    assert video_mod.file_content_hash(path) != base


def test_frame_folder_sorted_numerically(tmp_path: Path) -> None:
    bg = textured_background(2, 64, 48)
    folder = tmp_path / "frames"
    folder.mkdir()
    order = [1, 2, 10, 11, 100]
    for k, number in enumerate(order):
        ext = ".png" if k % 2 else ".jpg"
        frame = coded_frame(k, np.zeros((48, 160, 3), np.uint8))
        frame[16:, :64] = bg[: 48 - 16]
        cv2.imwrite(str(folder / f"frame_{number}{ext}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not a frame")
    video = open_video(folder, folder_fps=5.0)
    assert isinstance(video, FrameFolderVideo)
    assert (video.num_frames, video.width, video.height, video.fps) == (5, 160, 48, 5.0)
    assert [p.name for p in video.files] == [
        "frame_1.jpg",
        "frame_2.png",
        "frame_10.jpg",
        "frame_11.png",
        "frame_100.jpg",
    ]
    frames = video.get_frames([4, 0, 2, 2])
    assert [read_code(f) for f in frames] == [4, 0, 2, 2]
    assert video.stats.frames_decoded == 3
    assert video.get_frames([1], size=(80, 24)).shape == (1, 24, 80, 3)
    before = video.content_hash
    cv2.imwrite(str(folder / "frame_2.png"), np.zeros((48, 160, 3), np.uint8))
    assert open_video(folder).content_hash != before


# --- errors ---------------------------------------------------------------------------------------------


def test_bad_inputs_raise_video_decode_error(coded_mp4: Path, tmp_path: Path, decoder: str) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(coded_mp4.read_bytes()[: coded_mp4.stat().st_size // 2])
    no_frames = tmp_path / "no_frames"
    no_frames.mkdir()
    (no_frames / "a.txt").write_text("x")
    cases = {
        tmp_path / "missing.mp4": "not found",
        empty: "empty",
        text: "notes.mp4",
        truncated: "truncated.mp4",
        no_frames: "no frames",
    }
    for path, message in cases.items():
        with pytest.raises(VideoDecodeError, match=message):
            open_video(path, decoder=decoder)
    with pytest.raises(VideoDecodeError, match="empty"):
        open_video(b"", decoder=decoder)
    with pytest.raises(VideoDecodeError, match="bytes"):
        open_video(b"\x00\x01garbage" * 100, decoder=decoder)


def test_unreadable_frame_in_folder(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "1.png").write_bytes(b"broken")
    video = open_video(folder)
    with pytest.raises(VideoDecodeError, match="1.png"):
        video.get_frames([1])


def test_source_passes_through_and_other_types_fail(coded_mp4: Path) -> None:
    video = open_video(coded_mp4)
    assert open_video(video) is video
    with pytest.raises(TypeError, match="int"):
        open_video(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decord"):
        open_video(coded_mp4, decoder="ffmpeg")  # type: ignore[arg-type]


def test_corruption_inside_the_stream_raises_on_decode(coded_mp4: Path, tmp_path: Path, decoder: str) -> None:
    data = bytearray(coded_mp4.read_bytes())
    start, length = int(len(data) * 0.4), len(data) // 5
    data[start : start + length] = bytes(length)  # zero a fifth of the file, mid-stream
    broken = tmp_path / "zeroed.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(VideoDecodeError, match="zeroed.mp4"):
        video = open_video(broken, decoder=decoder)
        video.get_frames(range(video.num_frames))
