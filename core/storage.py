"""Object storage for attachments: a local folder (default) or S3/MinIO through boto3.

Both backends take the bytes as an async iterable of chunks and write them as they come
(a temporary file renamed at the end; an S3 multipart upload), so an upload is never held
in memory whole. A chunk source that raises part-way (say, a size limit) leaves nothing
behind. boto3 is synchronous: its calls run in a thread.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog

from core.settings import Settings

log = structlog.get_logger(__name__)

CHUNK = 1024 * 1024
S3_PART = 8 * CHUNK  # S3 wants parts of at least 5 MiB (but the last)


@runtime_checkable
class Storage(Protocol):
    async def put(self, key: str, stream: AsyncIterable[bytes],
                  content_type: str = "application/octet-stream") -> int: ...

    def open(self, key: str) -> AsyncIterator[bytes]: ...

    async def url(self, key: str, expires: int = 300,
                  content_type: str | None = None) -> str | None: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def ready(self) -> None: ...


class StorageKeyError(ValueError):
    """A key that would escape the storage root."""


class LocalStorage:
    """Files under one folder. `url()` is None: the API streams them itself after checking
    who asks."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageKeyError(key)
        return path

    async def put(self, key: str, stream: AsyncIterable[bytes],
                  content_type: str = "application/octet-stream") -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        size = 0
        try:
            with open(tmp, "wb") as fh:
                async for chunk in stream:
                    size += len(chunk)
                    await asyncio.to_thread(fh.write, chunk)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        path = self._path(key)
        fh = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(fh.read, CHUNK):
                yield chunk
        finally:
            fh.close()

    async def url(self, key: str, expires: int = 300,
                  content_type: str | None = None) -> str | None:
        return None

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def ready(self) -> None:
        probe = self.root / f".ready-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()


class S3Storage:
    """One bucket on S3 or an S3-compatible server (MinIO, moto). Staff get short-lived
    presigned URLs."""

    def __init__(self, bucket: str, endpoint_url: str | None = None, region: str = "us-east-1",
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 create_bucket: bool = False) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=Config(signature_version="s3v4", retries={"max_attempts": 3},
                          connect_timeout=3, read_timeout=30),
        )
        self._create_bucket = create_bucket
        self._bucket_checked = False

    async def _ensure_bucket(self) -> None:
        if self._bucket_checked or not self._create_bucket:
            return
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError:
            await asyncio.to_thread(self.client.create_bucket, Bucket=self.bucket)
        self._bucket_checked = True

    async def put(self, key: str, stream: AsyncIterable[bytes],
                  content_type: str = "application/octet-stream") -> int:
        """Upload as the bytes arrive: one PutObject when the whole stream fits in a part,
        else a multipart upload of S3_PART-sized parts (at most one part in memory). A
        failing source aborts the multipart upload, so nothing is left behind."""
        await self._ensure_bucket()
        size = 0
        buf = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []

        async def send_part(body: bytes) -> None:
            number = len(parts) + 1
            answer = await asyncio.to_thread(
                self.client.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id,
                PartNumber=number, Body=body)
            parts.append({"ETag": answer["ETag"], "PartNumber": number})

        try:
            async for chunk in stream:
                size += len(chunk)
                buf += chunk
                while len(buf) >= S3_PART:
                    if upload_id is None:
                        created = await asyncio.to_thread(
                            self.client.create_multipart_upload, Bucket=self.bucket, Key=key,
                            ContentType=content_type)
                        upload_id = created["UploadId"]
                    body = bytes(buf[:S3_PART])
                    del buf[:S3_PART]
                    await send_part(body)
            if upload_id is None:
                await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key,
                                        Body=bytes(buf), ContentType=content_type)
            else:
                if buf:
                    await send_part(bytes(buf))
                await asyncio.to_thread(
                    self.client.complete_multipart_upload, Bucket=self.bucket, Key=key,
                    UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return size

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await asyncio.to_thread(self.client.abort_multipart_upload, Bucket=self.bucket,
                                    Key=key, UploadId=upload_id)
        except Exception:  # the upload expires by the bucket's lifecycle rule anyway
            log.warning("s3 multipart abort failed", key=key, exc_info=True)

    async def open(self, key: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        obj = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=key)
        body = obj["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def url(self, key: str, expires: int = 300,
                  content_type: str | None = None) -> str | None:
        params = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = content_type
        return await asyncio.to_thread(
            self.client.generate_presigned_url, "get_object", Params=params,
            ExpiresIn=expires,
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    async def ready(self) -> None:
        await self._ensure_bucket()
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)


def make_storage(settings: Settings) -> Storage:
    """S3 when S3_BUCKET is set, else the local folder (CANHBAO_STORAGE_DIR)."""
    if settings.s3_bucket:
        return S3Storage(
            settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region,
            settings.s3_access_key_id, settings.s3_secret_access_key,
            create_bucket=settings.demo,
        )
    assert settings.storage_dir is not None
    return LocalStorage(settings.storage_dir)
