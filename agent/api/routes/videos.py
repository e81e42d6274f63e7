"""Videos: upload (streamed into data_dir), list, metadata, frames as JPEG, the file, delete."""

from __future__ import annotations

import logging
import os
import time

import cv2
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from agent.api.deps import RuntimeDep, VideoId
from agent.api.errors import UnsupportedVideoError
from agent.api.runtime import ServiceRuntime
from agent.api.schemas import DeletedOut, VideoListOut, VideoOut
from agent.api.storage import VideoRecord, display_name, new_id
from agent.api.uploads import UPLOAD_OPENAPI, receive_upload
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
        413: {"description": "Too large"},
        415: {"description": "Not a video"},
        507: {"description": "Disk quota full"},
    },
)
async def upload_video(request: Request, rt: RuntimeDep) -> VideoOut:
    settings = rt.settings
    video_id = new_id()
    part = rt.store.upload_path(video_id)
    quota_left = settings.disk_quota_bytes - await run_in_threadpool(rt.store.used_bytes)
    upload = await receive_upload(
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        request.stream(),
        part,
        max_bytes=settings.max_upload_bytes,
        quota_left=max(0, quota_left),
    )
    try:
        num_frames, fps, width, height, content_hash = await run_in_threadpool(_probe, str(part))
    except VideoDecodeError as exc:
        part.unlink(missing_ok=True)
        raise UnsupportedVideoError(
            f"the upload {display_name(upload.filename)!r} is not a decodable video: {exc}"
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
    )
    rt.store.add_video(rec)
    logger.info(
        "video %s uploaded: %d bytes, %d frames %dx%d", video_id, upload.size, num_frames, width, height
    )
    return video_out(rec)


@router.get("", response_model=VideoListOut, summary="List videos")
async def list_videos(rt: RuntimeDep) -> VideoListOut:
    used = await run_in_threadpool(rt.store.used_bytes)
    return VideoListOut(
        videos=[video_out(r) for r in rt.store.list_videos()],
        used_bytes=used,
        quota_bytes=rt.settings.disk_quota_bytes,
    )


@router.get("/{video_id}", response_model=VideoOut, summary="Video metadata")
async def get_video(video_id: VideoId, rt: RuntimeDep) -> VideoOut:
    return video_out(rt.store.get_video(video_id))


@router.delete(
    "/{video_id}", response_model=DeletedOut, summary="Delete a video with its frames, evidence, features"
)
async def delete_video(video_id: VideoId, rt: RuntimeDep) -> DeletedOut:
    rec = rt.store.delete_video(video_id)
    rt.forget_video(rec.id, rec.content_hash)
    logger.info("video %s deleted", rec.id)
    return DeletedOut(id=rec.id)


def frame_jpeg(rt: ServiceRuntime, video_id: str, frame_idx: int) -> bytes:
    """Frame ``frame_idx`` as JPEG bytes, cached under the video's folder while the quota allows."""
    rec = rt.store.get_video(video_id)
    validate_frame_idx(frame_idx, rec.num_frames)
    path = rt.store.frame_path(rec.id, frame_idx)
    if path.is_file():
        return path.read_bytes()
    rgb = rt.open_video(rec.id).get_frames([frame_idx])[0]
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])  # RGB -> BGR
    if not ok:
        raise VideoDecodeError(f"frame {frame_idx} of video {video_id} could not be encoded as JPEG")
    data = buf.tobytes()
    if rt.store.used_bytes() + len(data) <= rt.settings.disk_quota_bytes:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


JPEG_RESPONSE = {200: {"content": {"image/jpeg": {}}, "description": "The frame as JPEG"}}


@router.get(
    "/{video_id}/frames/{frame_idx}",
    response_class=Response,
    responses=JPEG_RESPONSE,
    summary="One frame as JPEG",
)
async def get_frame(video_id: VideoId, frame_idx: int, rt: RuntimeDep) -> Response:
    data = await run_in_threadpool(frame_jpeg, rt, video_id, frame_idx)
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
    responses={200: {"content": {"video/mp4": {}}, "description": "The uploaded file"}},
    summary="The uploaded file",
)
async def get_file(video_id: VideoId, rt: RuntimeDep) -> FileResponse:
    rec = rt.store.get_video(video_id)
    path = rt.store.video_path(rec.id)
    with open(path, "rb") as fh:
        head = fh.read(16)
    return FileResponse(path, media_type=_media_type(head))
