"""The one feature cache: global video features and per-frame fused region maps, shared by the pipeline,
training and the evaluations.

What is cached, keyed by the video's ``content_hash`` and a fingerprint of everything that shapes the values:

- **global video features** ``[T_max + P, Cv]`` (pre-projector, see
  :meth:`~artemis_model.modeling_artemis.ArtemisForConditionalGeneration.encode_video_frames`): in memory and,
  when ``disk_dir`` is set, as safetensors on disk (never pickle);
- **fused region maps** of single frames (the box-independent part of the region encoder, 4 tensors
  ``[1, C, h_l, w_l]`` per frame): in memory, optionally on disk (``region_maps_on_disk``; they are large:
  ~45 MB per frame in fp16 at Artemis-7B size). Region *tokens* are cheap per box and are not cached.

The memory store is one :class:`~artemis_model.lru.LRUCache` bounded by ``max_bytes``. The fingerprint covers the vision config, the region
config (for maps), the processor's resize mode and normalisation, the frame sampling, the dtype, and a sampled
hash of the weights involved (the vision tower; plus the region encoder's box-independent layers for maps),
recomputed whenever a parameter is modified in place (optimizer steps, ``load_state_dict``).

One call (:meth:`FeatureCache.get_features`) decodes the **union** of the missing global-sample and RoI frames in
one pass and, in the ``consistent`` resize mode (identical pixels for both purposes), runs each distinct frame
through the vision tower **once**, feeding the global pooling and the region encoder from the same hidden
states. Cached maps carry no gradient: they are for inference; training the region encoder must call the
model directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from artemis_model.lru import LRUCache
from artemis_model.types import validate_frame_idx
from artemis_model.video import VideoInput, VideoSource, open_video, sample_global_indices
from artemis_model.video.array import ArrayVideo  # noqa: F401  (re-exported: older imports)

logger = logging.getLogger(__name__)

GLOBAL_SAMPLING = "segment-midpoint-v1"
FORMAT_VERSION = 1
_HEX = re.compile(r"^[0-9a-f]{8,128}$")
RegionMaps = list[torch.Tensor]
"""The 4 fused maps of one frame, each ``[1, C, h_l, w_l]``."""


@dataclass
class CacheStats:
    """Counters since creation (or :meth:`FeatureCache.reset_stats`).

    ``vision_frames`` / ``region_frames``: frames through the vision tower / the region encoder (sums of batch
    sizes). ``decode_passes`` / ``frames_decoded``: calls to the video decoder made by the cache and the
    distinct frames they returned.
    """

    vision_frames: int = 0
    region_frames: int = 0
    decode_passes: int = 0
    frames_decoded: int = 0
    global_hits: int = 0
    global_misses: int = 0
    region_hits: int = 0
    region_misses: int = 0
    disk_reads: int = 0
    disk_writes: int = 0
    evictions: int = 0


@dataclass
class VideoFeatures:
    """What :meth:`FeatureCache.get_features` returns: global features and the maps of the asked frames."""

    video_features: torch.Tensor | None
    region_maps: dict[int, RegionMaps] = field(default_factory=dict)


# ---- fingerprints -----------------------------------------------------------------------------------------
_SAMPLES_PER_TENSOR = 4096
WeightHashes = weakref.WeakKeyDictionary
"""``module -> (tensor versions, hash)``: the memo of :func:`weights_fingerprint` (each cache holds its own)."""


def weights_fingerprint(modules: Sequence[nn.Module], memo: WeightHashes | None = None) -> str:
    """A hash of the modules' parameters and buffers (names, shapes, dtypes and up to 4096 evenly strided
    values of each). With ``memo``, a module's hash is reused until a tensor's in-place version counter
    changes."""
    digest = hashlib.sha256()
    for module in modules:
        tensors = list(module.state_dict(keep_vars=True).items())
        versions = tuple(t._version for _, t in tensors)
        cached = memo.get(module) if memo is not None else None
        if cached is None or cached[0] != versions:
            part = hashlib.sha256()
            with torch.no_grad():
                for name, tensor in tensors:
                    flat = tensor.detach().reshape(-1)
                    step = max(1, flat.numel() // _SAMPLES_PER_TENSOR)
                    sample = flat[::step][:_SAMPLES_PER_TENSOR].to("cpu", torch.float64).numpy()
                    part.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}\0".encode())
                    part.update(sample.tobytes())
            cached = (versions, part.hexdigest())
            if memo is not None:
                memo[module] = cached
        digest.update(cached[1].encode())
    return digest.hexdigest()


def _vision_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    ref = next(model.vision_tower.parameters())
    return ref.dtype, ref.device


def feature_fingerprints(
    model: nn.Module, processor: Any, memo: WeightHashes | None = None
) -> tuple[str, str, dict[str, Any]]:
    """``(global_fingerprint, region_fingerprint, description)`` of the model + processor settings (``memo``:
    see :func:`weights_fingerprint`)."""
    cfg = model.config
    dtype, _ = _vision_dtype_device(model)
    image_proc = processor.image_processor
    base = {
        "format": FORMAT_VERSION,
        "vision_config": cfg.vision_config.to_dict(),
        "resize_mode": processor.resize_mode,
        "image_size": processor.image_size,
        "image_mean": list(map(float, image_proc.image_mean)),
        "image_std": list(map(float, image_proc.image_std)),
        "dtype": str(dtype),
        "vision_weights": weights_fingerprint([model.vision_tower], memo),
    }
    for key in ("transformers_version", "_name_or_path"):
        base["vision_config"].pop(key, None)
    desc_global = {
        **base,
        "what": "global",
        "vision_feature_layer": cfg.vision_feature_layer,
        "num_temporal_tokens": cfg.num_temporal_tokens,
        "sampling": GLOBAL_SAMPLING,
    }
    enc = model.region_encoder
    desc_region = {
        **base,
        "what": "region_maps",
        "region_feature_layers": list(cfg.region_feature_layers),
        "region_upsample_factors": list(cfg.region_upsample_factors),
        "fuse_rounds": cfg.fuse_rounds,
        "fuse_shuffle_channels": cfg.fuse_shuffle_channels,
        "fuse_groupnorm_groups": cfg.fuse_groupnorm_groups,
        "region_weights": weights_fingerprint([enc.input_convs, enc.fuse_blocks], memo),
    }

    def short(d: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:24]

    return short(desc_global), short(desc_region), {"global": desc_global, "region": desc_region}


def pool_video_features(feats: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Per-frame patch features ``[T, P, Cv]`` -> ``[max_frames + P, Cv]`` (temporal means zero-padded, then
    spatial means), exactly as :meth:`ArtemisForConditionalGeneration.encode_video_frames`."""
    num_frames = feats.shape[0]
    if not 1 <= num_frames <= max_frames:
        raise ValueError(f"video has {num_frames} frames; allowed 1..{max_frames} (num_temporal_tokens)")
    temporal = feats.mean(dim=1)  # [T, P, Cv] -> [T, Cv]
    temporal = torch.cat([temporal, temporal.new_zeros(max_frames - num_frames, temporal.shape[-1])])
    spatial = feats.mean(dim=0)  # [T, P, Cv] -> [P, Cv]
    return torch.cat([temporal, spatial])  # [T_max + P, Cv]


def stack_region_maps(maps: dict[int, RegionMaps], frame_indices: Sequence[int]) -> list[torch.Tensor]:
    """Per-frame maps -> the 4 batched maps ``[F, C, h_l, w_l]`` in the order of ``frame_indices``."""
    missing = [f for f in frame_indices if f not in maps]
    if missing:
        raise KeyError(f"no region maps for frames {missing}")
    levels = len(maps[frame_indices[0]])
    return [
        torch.cat([maps[f][lvl] for f in frame_indices]) for lvl in range(levels)
    ]  # F x [1,C,h,w] -> [F,C,h,w]


def _nbytes(value: torch.Tensor | RegionMaps) -> int:
    tensors = [value] if isinstance(value, torch.Tensor) else value
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """In-memory LRU (bounded by ``max_bytes``) + optional safetensors store under ``disk_dir``.

    Disk layout: ``disk_dir/<content_hash>/<fingerprint>/global.safetensors`` and, with
    ``region_maps_on_disk``, ``.../region_<frame>.safetensors``. :meth:`evict_video` removes both.
    ``batch_size`` bounds the frames per vision-tower call. Thread-safe for concurrent readers.
    """

    def __init__(
        self,
        max_bytes: int = 2 * 2**30,
        disk_dir: str | os.PathLike | None = None,
        *,
        region_maps_on_disk: bool = False,
        batch_size: int = 16,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.max_bytes = int(max_bytes)
        self.disk_dir = Path(disk_dir) if disk_dir is not None else None
        self.region_maps_on_disk = region_maps_on_disk
        self.batch_size = batch_size
        self.stats = CacheStats()
        self._store: LRUCache[tuple[str, str, str, int], torch.Tensor | RegionMaps] = LRUCache(
            self.max_bytes, weigh=_nbytes, on_evict=self._count_eviction
        )
        self._weight_hashes: WeightHashes = weakref.WeakKeyDictionary()

    # ---- public API ---------------------------------------------------------------------------------------
    @property
    def memory_bytes(self) -> int:
        return self._store.weight

    def __len__(self) -> int:
        return len(self._store)

    def reset_stats(self) -> None:
        self.stats = CacheStats()

    def get_video_features(self, model: nn.Module, processor: Any, video: VideoInput) -> torch.Tensor:
        """Global video features ``[T_max + P, Cv]`` (pre-projector) of ``video``."""
        out = self.get_features(model, processor, video, ())
        assert out.video_features is not None
        return out.video_features

    def get_region_maps(
        self, model: nn.Module, processor: Any, video: VideoInput, frame_indices: Iterable[int]
    ) -> dict[int, RegionMaps]:
        """Fused region maps of ``frame_indices``: only the missing frames are computed, in one batched pass."""
        return self.get_features(model, processor, video, frame_indices, with_global=False).region_maps

    @torch.no_grad()
    def get_features(
        self,
        model: nn.Module,
        processor: Any,
        video: VideoInput,
        frame_indices: Iterable[int],
        *,
        with_global: bool = True,
    ) -> VideoFeatures:
        """Global features (when ``with_global``) and the region maps of ``frame_indices``, decoding the union
        of the missing frames once and running each distinct frame through the vision tower once."""
        source = open_video(video)
        frames_wanted = sorted({int(f) for f in frame_indices})
        for f in frames_wanted:
            validate_frame_idx(f, source.num_frames)
        vhash = _check_hash(source.content_hash)
        fp_global, fp_region, desc = feature_fingerprints(model, processor, self._weight_hashes)
        _, device = _vision_dtype_device(model)

        video_features = None
        if with_global:
            video_features = self._lookup(("global", vhash, fp_global, -1), desc["global"], device)
            if video_features is None:
                self.stats.global_misses += 1
            else:
                self.stats.global_hits += 1
        maps: dict[int, RegionMaps] = {}
        missing: list[int] = []
        for f in frames_wanted:
            found = self._lookup(("region", vhash, fp_region, f), desc["region"], device)
            if found is None:
                missing.append(f)
            else:
                maps[f] = found
        self.stats.region_hits += len(frames_wanted) - len(missing)
        self.stats.region_misses += len(missing)

        global_idx: list[int] = []
        if with_global and video_features is None:
            global_idx = sample_global_indices(source.num_frames, max_frames=model.config.num_temporal_tokens)
        if global_idx or missing:
            computed_global, computed_maps = self._compute(model, processor, source, global_idx, missing)
            if computed_global is not None:
                video_features = computed_global
                self._put(("global", vhash, fp_global, -1), computed_global, desc["global"])
            for f, m in computed_maps.items():
                maps[f] = m
                self._put(("region", vhash, fp_region, f), m, desc["region"])
        return VideoFeatures(video_features=video_features, region_maps=maps)

    def cached_region_frames(self, model: nn.Module, processor: Any, video: VideoInput) -> set[int]:
        """Frames of ``video`` whose region maps are in memory for this model (for snapping)."""
        source = open_video(video)
        _, fp_region, _ = feature_fingerprints(model, processor, self._weight_hashes)
        return {
            k[3]
            for k in self._store.keys()
            if k[0] == "region" and k[1] == source.content_hash and k[2] == fp_region
        }

    def clear(self, *, disk: bool = False) -> None:
        """Empty the memory store (and the disk store when ``disk``)."""
        self._store.clear()
        if disk and self.disk_dir is not None and self.disk_dir.exists():
            for child in self.disk_dir.iterdir():
                if child.is_dir() and _HEX.match(child.name):
                    shutil.rmtree(child)

    def evict_video(self, content_hash: str) -> int:
        """Drop every entry of one video (memory and disk); returns the number of memory entries removed."""
        vhash = _check_hash(content_hash)
        removed = self._store.pop_where(lambda key, _value: key[1] == vhash)
        if self.disk_dir is not None and (self.disk_dir / vhash).exists():
            shutil.rmtree(self.disk_dir / vhash)
        return len(removed)

    # ---- internals ----------------------------------------------------------------------------------------
    def _path(self, key: tuple[str, str, str, int]) -> Path | None:
        kind, vhash, fp, frame = key
        if self.disk_dir is None or (kind == "region" and not self.region_maps_on_disk):
            return None
        name = "global.safetensors" if kind == "global" else f"region_{frame:07d}.safetensors"
        return self.disk_dir / vhash / fp / name

    def _lookup(
        self, key: tuple[str, str, str, int], desc: dict[str, Any], device: torch.device
    ) -> torch.Tensor | RegionMaps | None:
        found = self._store.get(key)
        if found is not None:
            return found
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        tensors, meta = _read_safetensors(path, device)
        if meta.get("fingerprint") != json.dumps(desc, sort_keys=True, default=str):
            logger.warning("feature file %s has another fingerprint; ignoring it", path)
            return None
        self.stats.disk_reads += 1
        value: torch.Tensor | RegionMaps
        if key[0] == "global":
            value = tensors["video_features"]
        else:
            value = [tensors[f"level_{i}"] for i in range(len(tensors))]
        self._store.put(key, value)
        return value

    def _put(
        self, key: tuple[str, str, str, int], value: torch.Tensor | RegionMaps, desc: dict[str, Any]
    ) -> None:
        self._store.put(key, value)
        path = self._path(key)
        if path is None:
            return
        if isinstance(value, torch.Tensor):
            tensors = {"video_features": value}
        else:
            tensors = {f"level_{i}": t for i, t in enumerate(value)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        meta = {"fingerprint": json.dumps(desc, sort_keys=True, default=str), "content_hash": key[1]}
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
        os.replace(tmp, path)
        self.stats.disk_writes += 1

    def _count_eviction(self, _key: object, _value: object) -> None:
        self.stats.evictions += 1

    def _compute(
        self,
        model: nn.Module,
        processor: Any,
        source: VideoSource,
        global_idx: list[int],
        region_idx: list[int],
    ) -> tuple[torch.Tensor | None, dict[int, RegionMaps]]:
        """Decode the union once; vision tower on each distinct frame once (twice only in the ``original``
        resize mode, where global and RoI pixels differ); pool the global sample; fuse the RoI frames."""
        union = sorted(set(global_idx) | set(region_idx))
        frames = source.get_frames(union)  # [U, H, W, 3]
        self.stats.decode_passes += 1
        self.stats.frames_decoded += len(union)
        row = {f: k for k, f in enumerate(union)}
        patch_feats: dict[int, torch.Tensor] = {}
        maps: dict[int, RegionMaps] = {}
        if processor.resize_mode == "consistent":
            pixels = processor.preprocess_frames(frames, purpose="global")  # [U, 3, S, S]
            self._run_tower(model, pixels, union, set(global_idx), set(region_idx), patch_feats, maps)
        else:
            if global_idx:
                g_frames = sorted(set(global_idx))
                pixels = processor.preprocess_frames(frames[[row[f] for f in g_frames]], purpose="global")
                self._run_tower(model, pixels, g_frames, set(g_frames), set(), patch_feats, maps)
            if region_idx:
                pixels = processor.preprocess_frames(frames[[row[f] for f in region_idx]], purpose="region")
                self._run_tower(model, pixels, region_idx, set(), set(region_idx), patch_feats, maps)
        video_features = None
        if global_idx:
            feats = torch.stack([patch_feats[f] for f in global_idx])  # T x [P, Cv] -> [T, P, Cv]
            video_features = pool_video_features(feats, model.config.num_temporal_tokens)
        return video_features, maps

    def _run_tower(
        self,
        model: nn.Module,
        pixels: torch.Tensor,
        frame_ids: list[int],
        global_set: set[int],
        region_set: set[int],
        patch_feats: dict[int, torch.Tensor],
        maps: dict[int, RegionMaps],
    ) -> None:
        dtype, device = _vision_dtype_device(model)
        cfg = model.config
        for start in range(0, len(frame_ids), self.batch_size):
            ids = frame_ids[start : start + self.batch_size]
            chunk = pixels[start : start + self.batch_size].to(device=device, dtype=dtype)
            hidden = model.vision_tower(pixel_values=chunk, output_hidden_states=True).hidden_states
            self.stats.vision_frames += len(ids)
            g_rows = [k for k, f in enumerate(ids) if f in global_set]
            if g_rows:
                feats = hidden[cfg.vision_feature_layer][g_rows, 1:]  # [g, 1 + P, Cv] -> [g, P, Cv]
                for k, f_row in enumerate(g_rows):
                    patch_feats[ids[f_row]] = feats[k].clone()  # do not keep the chunk's hidden states alive
            r_rows = [k for k, f in enumerate(ids) if f in region_set]
            if not r_rows:
                continue
            if len(r_rows) < len(ids):
                needed = {layer % len(hidden) for layer in cfg.region_feature_layers}
                index = torch.tensor(r_rows, device=chunk.device)
                hidden = tuple(h.index_select(0, index) if i in needed else h for i, h in enumerate(hidden))
            fused = model.region_encoder.encode_frames(hidden)  # 4 x [r, C, h, w]
            self.stats.region_frames += len(r_rows)
            for k, f_row in enumerate(r_rows):
                maps[ids[f_row]] = [level[k : k + 1].clone() for level in fused]  # own storage per frame


def _check_hash(content_hash: str) -> str:
    if not isinstance(content_hash, str) or not _HEX.match(content_hash):
        raise ValueError(f"content hash {content_hash!r} must be a lowercase hex digest")
    return content_hash


def _read_safetensors(path: Path, device: torch.device) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    tensors = load_file(str(path), device=str(device))
    return tensors, meta
