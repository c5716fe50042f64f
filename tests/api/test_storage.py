"""Storage backends: the local folder and S3 through boto3 against moto's server mode."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from moto.server import ThreadedMotoServer

from core.storage import LocalStorage, S3Storage, StorageKeyError
from tests.api.conftest import MEDIA, WARD_A, WARD_B


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def _failing(*parts: bytes) -> AsyncIterator[bytes]:
    """`parts`, then RuntimeError("stop"): a source that breaks off mid-upload."""
    for p in parts:
        yield p
    raise RuntimeError("stop")


async def _read(storage, key: str) -> bytes:
    return b"".join([c async for c in storage.open(key)])


async def test_local_storage_roundtrip_and_abort(tmp_path) -> None:
    st = LocalStorage(tmp_path / "files")
    assert await st.put("a/b.bin", _chunks(b"12", b"34")) == 4
    assert await _read(st, "a/b.bin") == b"1234"
    assert await st.exists("a/b.bin") and await st.url("a/b.bin") is None
    with pytest.raises(RuntimeError):
        await st.put("a/c.bin", _failing(b"partial"))
    assert not await st.exists("a/c.bin")
    assert [p.name for p in (tmp_path / "files" / "a").iterdir()] == ["b.bin"]
    with pytest.raises(StorageKeyError):
        await st.put("../escape", _chunks(b"x"))
    await st.delete("a/b.bin")
    assert not await st.exists("a/b.bin")
    await st.ready()


async def test_s3_storage_roundtrip_presign_and_abort(moto_url: str) -> None:
    st = S3Storage("canhbao-test", moto_url, access_key_id="k", secret_access_key="s",
                   create_bucket=True)
    await st.ready()
    big = b"x" * (9 * 1024 * 1024)  # spills to disk, multipart upload
    assert await st.put("k/big.bin", _chunks(big[:5_000_000], big[5_000_000:])) == len(big)
    assert hashlib.sha256(await _read(st, "k/big.bin")).digest() == hashlib.sha256(big).digest()
    url = await st.url("k/big.bin", 60, "image/jpeg")
    assert url and "X-Amz-Signature" in url and "X-Amz-Expires=60" in url
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
    assert r.status_code == 200 and len(r.content) == len(big)
    with pytest.raises(RuntimeError):
        await st.put("k/c.bin", _failing(b"partial"))
    assert not await st.exists("k/c.bin")
    await st.delete("k/big.bin")
    assert not await st.exists("k/big.bin")


async def test_app_on_s3_presigns_for_staff_only(make_stack, moto_url: str) -> None:
    stack = await make_stack(S3_BUCKET="canhbao-app", S3_ENDPOINT_URL=moto_url,
                             S3_ACCESS_KEY_ID="k", S3_SECRET_ACCESS_KEY="s",
                             S3_PRESIGN_SECONDS=120)
    data = MEDIA["webp"][0]
    photo = await stack.upload("webp")
    assert photo["sha256"] == hashlib.sha256(data).hexdigest()
    iid = await stack.routed(WARD_A, attachments=[photo["attachment_id"]])
    d = (await stack.detail(iid, "officer_a")).json()
    r = await stack.client.get(d["attachments"][0]["url"], headers=stack.auth("officer_a"))
    assert r.status_code == 307
    location = r.headers["location"]
    assert location.startswith(moto_url) and "X-Amz-Expires=120" in location
    async with httpx.AsyncClient() as client:
        fetched = await client.get(location)
    assert fetched.content == data and fetched.headers["content-type"] == "image/webp"
    r = await stack.client.get(d["attachments"][0]["url"], headers=stack.auth("officer_b"))
    assert r.status_code == 404
    assert WARD_B  # officer B's unit is another ward's
    assert (await stack.client.get("/readyz")).status_code == 200


async def test_s3_multipart_abort_leaves_nothing(moto_url: str) -> None:
    """A source failing after whole parts were sent aborts the multipart upload."""
    st = S3Storage("canhbao-abort", moto_url, access_key_id="k", secret_access_key="s",
                   create_bucket=True)
    await st.ready()
    sent = 0

    async def failing() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(20):  # two full 8 MiB parts, then the failure
            sent += 1024 * 1024
            yield b"y" * (1024 * 1024)
        raise RuntimeError("stop")
    with pytest.raises(RuntimeError):
        await st.put("k/partial.bin", failing())
    assert sent == 20 * 1024 * 1024
    assert not await st.exists("k/partial.bin")
    pending = st.client.list_multipart_uploads(Bucket="canhbao-abort")
    assert pending.get("Uploads", []) == []


async def test_app_on_s3_refuses_a_streamed_oversize_upload(make_stack, moto_url: str) -> None:
    limit = 256 * 1024
    stack = await make_stack(with_worker=False, S3_BUCKET="canhbao-big",
                             S3_ENDPOINT_URL=moto_url, S3_ACCESS_KEY_ID="k",
                             S3_SECRET_ACCESS_KEY="s", CANHBAO_MAX_IMAGE_BYTES=limit,
                             CANHBAO_MAX_VIDEO_BYTES=64 * 1024 * 1024)
    boundary = "s3boundary"
    pulled = 0

    async def body(kind: str, pieces: int) -> AsyncIterator[bytes]:
        nonlocal pulled
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"x\"\r\n\r\n").encode() + MEDIA[kind][0]
        pulled += len(head)
        yield head
        for _ in range(pieces):
            pulled += 64 * 1024
            yield b"\0" * (64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = await stack.client.post("/api/v1/attachments", content=body("jpeg", 500),
                                headers=headers)
    assert r.status_code == 413 and limit < pulled <= limit + 4 * 64 * 1024
    # A video of 10 MiB goes through as a multipart upload (two parts).
    r = await stack.client.post("/api/v1/attachments", content=body("mp4", 160),
                                headers=headers)
    assert r.status_code == 201, r.text
    client = stack.infra.storage.client
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="canhbao-big").get("Contents", [])]
    assert len(keys) == 1 and keys[0].endswith(".mp4")
    assert client.head_object(Bucket="canhbao-big", Key=keys[0])["ContentLength"] == \
        r.json()["size"] > 10 * 1024 * 1024
    assert client.list_multipart_uploads(Bucket="canhbao-big").get("Uploads", []) == []
