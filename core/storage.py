"""Object storage for attachments: a local folder (default) or S3/MinIO through boto3.

Both backends take the bytes as an async iterable of chunks, so an upload never has to be
held in memory. A chunk source that raises part-way (say, a size limit) leaves nothing
behind. boto3 is synchronous: its calls run in a thread.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.settings import Settings

CHUNK = 1024 * 1024


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
        await self._ensure_bucket()
        size = 0
        # Spool (memory up to 8 MiB, then disk) so a failing source uploads nothing;
        # upload_fileobj then uses multipart for large files.
        with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as spool:
            async for chunk in stream:
                size += len(chunk)
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            await asyncio.to_thread(
                self.client.upload_fileobj, spool, self.bucket, key,
                ExtraArgs={"ContentType": content_type},
            )
        return size

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
