"""Reading a stored file from start to end without holding it whole.

``open_stream(storage, name)`` returns a binary file object to read a file from
``STORAGES["default"]`` front to back. On the local file system that is the file itself. On S3,
django-storages' own ``S3File`` downloads the whole object into memory on the first read; here
the object's body is read as it arrives from S3 instead (``ObjectStream``), so a sender holds
one buffer whatever the size of the files it sends.
"""

from __future__ import annotations

import io
import sys
from typing import IO


def open_stream(storage, name: str) -> IO[bytes]:
    """``name`` in ``storage``, opened for one front-to-back read (see the module docstring)."""
    if _is_s3(storage):
        return _open_object(storage, name)
    return storage.open(name, "rb")


def _is_s3(storage) -> bool:
    # Without importing boto3 (slow) into processes whose storage is local: if S3Storage was
    # never imported, this storage is not one.
    module = sys.modules.get("storages.backends.s3")
    return module is not None and isinstance(storage, module.S3Storage)


def _open_object(storage, name: str) -> ObjectStream:
    from storages.backends.s3 import _filter_download_params
    from storages.utils import clean_name

    # The key and the download parameters (customer-provided encryption keys, …) exactly as
    # django-storages' own open uses them.
    key = storage._normalize_name(clean_name(name))
    parameters = _filter_download_params(storage.get_object_parameters(key))
    # The client, not the bucket's resource objects: a resource object per file costs far more
    # memory than the buffer the file is read through.
    client = storage.connection.meta.client
    return ObjectStream(client, storage.bucket_name, key, parameters)


class ObjectStream(io.RawIOBase):
    """An S3 object read as its GET response arrives.

    ``size`` is the length of the very object version being read (the GET's Content-Length):
    what is checked and what is sent come from one response, even if the object is replaced
    meanwhile. ``seek(0)`` starts a new GET (a retry of the same body); no other seek is
    possible.
    """

    def __init__(self, client, bucket: str, key: str, parameters: dict | None = None):
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._parameters = parameters or {}
        self._body = None
        self._position = 0
        self.size = self._open()

    def _open(self) -> int:
        from botocore.exceptions import ClientError

        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key, **self._parameters)
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"no such object: {self._key}") from exc
            raise
        self._body = answer["Body"]
        self._position = 0
        return int(answer["ContentLength"])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset}.get(whence)
        if target == self._position:
            return self._position
        if target == 0:
            self._body.close()
            self._open()
            return 0
        raise io.UnsupportedOperation("an S3 object stream can only be rewound to its start")

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        super().close()
