"""The OpenAPI document as the service really answers: every status a route returns, with its body schema.

Routes and routers declare their errors (``responses=errors(404, 409)``; a router included with the key
check declares 401, one that needs the models 503); :class:`ArtemisAPI` adds 413 where a body is read and 422
where anything is validated, and documents every error with :class:`~agent.api.schemas.ErrorOut` (FastAPI's
default 422 schema, a list in ``detail``, is not what the service sends).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from agent.api.schemas import ErrorOut

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request could not be read",
    401: "Missing or wrong API key (when keys are on)",
    403: "The key is valid but not allowed here (admin routes)",
    404: "No such resource (or not yours)",
    409: "The request conflicts with the current state (e.g. the conversation's video was deleted)",
    413: "The body is over the size limit",
    415: "Not a supported media type (e.g. the upload is not a video)",
    422: "Invalid input: the detail names the field, the bad value and the allowed ones",
    499: "The client went away before its turn started (empty body; nobody reads it)",
    503: "The service is starting or the model worker is busy (see Retry-After)",
    507: "The disk quota is full",
}
ERROR_REF = "#/components/schemas/ErrorOut"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: these error statuses, each with the error body."""
    return {s: {"description": ERROR_DESCRIPTIONS[s], "model": ErrorOut} for s in statuses}


def _error_response(status: int) -> dict[str, Any]:
    content = {} if status == 499 else {"application/json": {"schema": {"$ref": ERROR_REF}}}
    return {"description": ERROR_DESCRIPTIONS[status], "content": content}


class ArtemisAPI(FastAPI):
    """FastAPI whose OpenAPI document lists the statuses the service really returns (see module doc)."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None:
            return self.openapi_schema
        schema = super().openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorOut"] = (
            ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for defs_name, defs in list(schema["components"]["schemas"]["ErrorOut"].pop("$defs", {}).items()):
            schema["components"]["schemas"].setdefault(defs_name, defs)
        for ops in schema["paths"].values():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                wanted = set()
                if op.get("parameters") or op.get("requestBody"):
                    wanted.add(422)
                if op.get("requestBody"):
                    wanted |= {400, 413}
                for status in sorted(wanted):
                    responses.setdefault(str(status), _error_response(status))
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400 and int(status) != 499:
                        response["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
        for unused in ("HTTPValidationError", "ValidationError"):
            schema["components"]["schemas"].pop(unused, None)
        return schema
