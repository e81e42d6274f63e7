"""Videos: upload (streamed into data_dir), list, metadata, frames as JPEG, the file, delete."""

from __future__ import annotations

import logging
import os
import time

import cv2
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from agent.api.deps import Caller, CallerDep, FrameIdx, RuntimeDep, VideoId
from agent.api.errors import QuotaExceededError, UnsupportedVideoError
from agent.api.openapi import errors
from agent.api.runtime import ServiceRuntime
from agent.api.schemas import DeletedOut, VideoListOut, VideoOut
from agent.api.storage import VideoRecord, display_name, new_id
from agent.api.uploads import UPLOAD_OPENAPI, Upload, receive_upload
from artemis_model.errors import VideoDecodeError
from artemis_model.types import validate_frame_idx
from artemis_model.video import open_video

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/videos", tags=["videos"])
_VIDEO_ID = {"video_id": "$response.body#/id"}
VIDEO_LINKS = {
    name: {"operationId": op, "parameters": _VIDEO_ID}
    for name, op in [
        ("GetVideo", "get_video"),
        ("GetFrame", "get_frame"),
        ("GetFile", "get_file"),
        ("DeleteVideo", "delete_video"),
    ]
}


def video_out(rec: VideoRecord) -> VideoOut:
    return VideoOut(
        id=rec.id,
        filename=rec.filename,
        size_bytes=rec.size_bytes,
        num_frames=rec.num_frames,
        fps=rec.fps,
        width=rec.width,
        height=rec.height,
        duration_s=rec.num_frames / rec.fps if rec.fps > 0 else 0.0,
        created_at=rec.created_at,
        frame_url=f"/videos/{rec.id}/frames/{{frame_idx}}",
        file_url=f"/videos/{rec.id}/file",
    )


IMAGE_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF87a", "GIF"),
    (0, b"GIF89a", "GIF"),
    (0, b"BM", "BMP"),
    (8, b"WEBP", "WebP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (4, b"ftypavif", "AVIF"),
    (4, b"ftypheic", "HEIC"),
]
"""Magic bytes of still images (a decoder would read them as a one-frame 'video')."""


def image_kind(head: bytes) -> str | None:
    """The image format whose magic bytes start ``head``, else ``None``."""
    for offset, magic, kind in IMAGE_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    return None


def _probe(path: str) -> tuple[int, float, int, int, str]:
    """(num_frames, fps, width, height, content_hash); decodes the first and last frame to be sure."""
    with open_video(path) as video:
        video.get_frames([0, video.num_frames - 1])
        return video.num_frames, float(video.fps), video.width, video.height, video.content_hash


@router.post(
    "",
    status_code=201,
    response_model=VideoOut,
    openapi_extra=UPLOAD_OPENAPI,
    summary="Upload a video (multipart field 'file')",
    responses={
        201: {"description": "The stored video", "links": VIDEO_LINKS},
        **errors(413, 415, 422, 507),
    },
)
async def upload_video(request: Request, rt: RuntimeDep, caller: CallerDep) -> VideoOut:
    settings = rt.settings
    video_id = new_id()
    part = rt.store.upload_path(video_id)
    with rt.quota.reservation("the upload") as reservation:
        upload = await receive_upload(
            request.headers.get("content-type", ""),
            request.headers.get("content-length"),
            request.stream(),
            part,
            max_bytes=settings.max_upload_bytes,
            reserve=reservation.ensure,
        )
        return await _store_upload(rt, caller, video_id, upload)


async def _store_upload(rt: ServiceRuntime, caller: Caller, video_id: str, upload: Upload) -> VideoOut:
    """Check the received file is a video and move it in place (its reservation still holds its bytes)."""
    part = rt.store.upload_path(video_id)
    with open(part, "rb") as fh:
        kind = image_kind(fh.read(16))
    if kind is not None:
        part.unlink(missing_ok=True)
        raise UnsupportedVideoError(
            f"the upload {display_name(upload.filename)!r} is a still image ({kind}), not a video: upload a "
            "video file (MP4, WebM, MKV, AVI, MOV)"
        )
    try:
        num_frames, fps, width, height, content_hash = await run_in_threadpool(_probe, str(part))
    except VideoDecodeError as exc:
        part.unlink(missing_ok=True)
        raise UnsupportedVideoError(
            f"the upload {display_name(upload.filename)!r} is not a decodable video: "
            + str(exc).replace(str(part), "the upload")
        ) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    final = rt.store.video_path(video_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)
    rec = VideoRecord(
        id=video_id,
        filename=display_name(upload.filename),
        size_bytes=upload.size,
        num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        content_hash=content_hash,
        created_at=time.time(),
        owner=caller.name,
    )
    rt.store.add_video(rec)
    logger.info(
        "video %s uploaded: %d bytes, %d frames %dx%d", video_id, upload.size, num_frames, width, height
    )
    return video_out(rec)


@router.get("", response_model=VideoListOut, summary="List videos")
async def list_videos(rt: RuntimeDep, caller: CallerDep) -> VideoListOut:
    used = await run_in_threadpool(rt.store.used_bytes)
    return VideoListOut(
        videos=[video_out(r) for r in rt.store.list_videos(caller.scope)],
        used_bytes=used,
        quota_bytes=rt.settings.disk_quota_bytes,
    )


@router.get("/{video_id}", response_model=VideoOut, responses=errors(404), summary="Video metadata")
async def get_video(video_id: VideoId, rt: RuntimeDep, caller: CallerDep) -> VideoOut:
    return video_out(rt.store.get_video(video_id, caller.scope))


@router.delete(
    "/{video_id}",
    response_model=DeletedOut,
    responses=errors(404),
    summary="Delete a video with its frames, evidence, features",
)
async def delete_video(video_id: VideoId, rt: RuntimeDep, caller: CallerDep) -> DeletedOut:
    rec = rt.store.delete_video(video_id, caller.scope)
    rt.forget_video(rec.id, rec.content_hash)
    logger.info("video %s deleted", rec.id)
    return DeletedOut(id=rec.id)


def frame_jpeg(rt: ServiceRuntime, video_id: str, frame_idx: int, owner: str | None = None) -> bytes:
    """Frame ``frame_idx`` of ``owner``'s video as JPEG bytes, cached under the video's folder while the quota
    allows."""
    rec = rt.store.get_video(video_id, owner)
    validate_frame_idx(frame_idx, rec.num_frames)
    path = rt.store.frame_path(rec.id, frame_idx)
    if path.is_file():
        return path.read_bytes()
    rgb = rt.open_video(rec.id).get_frames([frame_idx])[0]
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])  # RGB -> BGR
    if not ok:
        raise VideoDecodeError(f"frame {frame_idx} of video {video_id} could not be encoded as JPEG")
    data = buf.tobytes()
    with rt.quota.reservation("a cached frame") as reservation:
        try:
            reservation.ensure(len(data))
        except QuotaExceededError:
            return data  # served, not cached
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


JPEG_RESPONSE = {200: {"content": {"image/jpeg": {}}, "description": "The frame as JPEG"}, **errors(404)}


@router.get(
    "/{video_id}/frames/{frame_idx}",
    response_class=Response,
    responses=JPEG_RESPONSE,
    summary="One frame as JPEG",
)
async def get_frame(video_id: VideoId, frame_idx: FrameIdx, rt: RuntimeDep, caller: CallerDep) -> Response:
    data = await run_in_threadpool(frame_jpeg, rt, video_id, frame_idx, caller.scope)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _media_type(head: bytes) -> str:
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    if head[:4] == b"RIFF":
        return "video/x-msvideo"
    return "application/octet-stream"


@router.get(
    "/{video_id}/file",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}, "description": "The uploaded file"}, **errors(404)},
    summary="The uploaded file",
)
async def get_file(video_id: VideoId, rt: RuntimeDep, caller: CallerDep) -> FileResponse:
    rec = rt.store.get_video(video_id, caller.scope)
    path = rt.store.video_path(rec.id)
    with open(path, "rb") as fh:
        head = fh.read(16)
    return FileResponse(path, media_type=_media_type(head))
