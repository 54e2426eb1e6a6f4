"""Reading request bodies with a size bound, before anything is parsed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from api.core.errors import ApiError


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "(body)",
        f"请求体超过上限 {limit} 字节",
        f"request body exceeds {limit} bytes",
        "body_too_large",
    )


async def read_body(declared: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """``declared``: the Content-Length header (None when absent); ``stream``: the body's chunks."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:  # chunked or lying Content-Length: stop reading at the bound
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
