"""Where a store lives: a local directory, or an object-store URI opened through pyarrow.

A data dir is a local path, a `file://` URI (which is a local path), or an object-store URI such
as `s3://bucket/prefix?endpoint_override=host:9000&scheme=http&region=us-east-1`,
`gs://bucket/prefix` or `abfs://...` (SCHEMES), opened by `pyarrow.fs.FileSystem.from_uri`
(options in the query, credentials from the environment). `data_root` checks one and
normalises it (a Path, or the URI string, which is what travels to Ray replicas); `locate` gives
the store under it (`<data_dir>/store`) as a `LocalStore` or an `ObjectStore`. Both offer the
same few file operations, so `store.py` reads and appends through one code path.

Why the two publish files differently: a local directory has rename, fsync and locks, so a new
file is written in a staging directory on the same disk and renamed to its final name. An object
store has none of these, but a PUT is atomic (a reader gets the old object or the new one), so a
file is staged in a local temporary directory (where its bytes are hashed), then uploaded under a
name no manifest refers to yet; the manifest, one small PUT, goes last. An object store has no
cheap "did the manifest change" stamp (one-second mtimes, no inode), so `stamp` is empty there
and caches read the ~1 KB manifest on each call instead of trusting a stale one. Nor has it a
lock: one appender at a time per object store is the operator's job.

`s3://` URIs default to `allow_delayed_open=true` (unless the query sets it): an object under
~10 MB (the manifest, a day's segment) then goes up in one PutObject instead of a three-request
multipart upload.

Secrets: a URI may carry keys in its userinfo (`s3://KEY:SECRET@bucket/...`) or query. Nothing
here prints either: `shown` is the URI without them, and every pyarrow error passes through
`scrub` before it becomes a StoreError message (raised `from None`, so no traceback repeats it).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs

STORE_DIRNAME = "store"
DataDir = str | os.PathLike[str]
DataRoot = Path | str  # a local directory, or an object-store URI pyarrow has accepted
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_COLLAPSED = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:$")  # "s3:" once Path("s3://b") ate a slash
# what pyarrow opens without extra runtimes (hdfs:// needs a JVM and is left out)
SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "file")
# query keys whose values are never secret (kept readable in scrubbed error text)
_PLAIN_KEYS = {"scheme", "region", "endpoint_override", "allow_delayed_open",
               "allow_bucket_creation", "allow_bucket_deletion", "force_virtual_addressing"}


class StoreError(RuntimeError):
    """The store is missing, unreadable or inconsistent; the message says which and where."""


def data_root(data_dir: DataDir) -> DataRoot:
    """`data_dir` checked: a local Path (`~` expanded; `file://` URIs become paths), or an
    object-store URI, returned as given once pyarrow has opened it. A bad URI is a StoreError."""
    text = os.fspath(data_dir)
    if not _SCHEME.match(text):
        path = Path(text).expanduser()
        if path.parts and _COLLAPSED.match(path.parts[0]):
            raise StoreError(f"data dir {redact(text)} looks like a URI whose '//' was collapsed "
                             "into '/' by a path type: pass the URI as a string")
        return path
    fs, where = _from_uri(text)
    return Path(where) if isinstance(fs, pafs.LocalFileSystem) else text


def shown(data_dir: DataDir) -> str:
    """`data_dir` fit for a message or a log line (an object-store URI without its secrets)."""
    text = os.fspath(data_dir)
    return redact(text) if _SCHEME.match(text) else text


def redact(uri: str) -> str:
    """`uri` without userinfo and query, where keys and tokens travel."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri.split("://", 1)[0] + "://<unparseable>"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def scrub(text: str, uri: str) -> str:
    """`text` (an error message) with `uri`'s userinfo and secret-bearing query values masked."""
    text = text.replace(uri, redact(uri))
    try:
        parts = urlsplit(uri)
    except ValueError:
        return text.replace(uri.split("://", 1)[-1], "***")
    secrets = []
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        plain = unquote(userinfo)
        secrets += [userinfo, *userinfo.split(":"), plain, *plain.split(":")]
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _PLAIN_KEYS:
            secrets.append(value)
    if parts.query:
        secrets += [p.partition("=")[2] for p in parts.query.split("&")
                    if p.partition("=")[0] not in _PLAIN_KEYS]
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@functools.lru_cache(maxsize=32)
def _from_uri(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem and path for `uri` (cached: an S3 client is costly to make)."""
    scheme = _SCHEME.match(uri).group(1).lower()  # type: ignore[union-attr]
    if scheme not in SCHEMES:
        raise StoreError(f"unsupported store URI scheme {scheme!r} in {redact(uri)}: give a "
                         f"local path or a {', '.join(s + '://' for s in SCHEMES)} URI")
    opened = uri
    if scheme == "s3":
        parts = urlsplit(uri)
        if "allow_delayed_open" not in dict(parse_qsl(parts.query)):
            query = "&".join(q for q in (parts.query, "allow_delayed_open=true") if q)
            opened = urlunsplit(parts._replace(query=query))
    try:
        fs, path = pafs.FileSystem.from_uri(opened)
    except (ValueError, TypeError, NotImplementedError, OSError) as exc:
        raise StoreError(f"cannot open store URI {redact(uri)} (scheme {scheme!r}): "
                         f"{scrub(scrub(str(exc), opened), uri)}") from None
    path = path.rstrip("/")
    if not isinstance(fs, pafs.LocalFileSystem) and not path:
        raise StoreError(f"store URI {redact(uri)} (scheme {scheme!r}) names no bucket or path")
    return fs, path


def locate(data_dir: DataDir, dirname: str = STORE_DIRNAME) -> LocalStore | ObjectStore:
    """The store under `data_dir` (`<data_dir>/store`; `dirname` names a sibling, such as the
    intraday bars' `<data_dir>/intraday`)."""
    root = data_root(data_dir)
    if isinstance(root, Path):
        return LocalStore(root / dirname)
    fs, path = _from_uri(root)
    return ObjectStore(fs, f"{path}/{dirname}", root)


def store_path(data_dir: DataDir) -> Path:
    """The local store directory; an object-store URI has none (use `store_location`)."""
    loc = locate(data_dir)
    if not isinstance(loc, LocalStore):
        raise StoreError(f"{loc.shown} is in an object store, not a local directory")
    return loc.root


def store_location(data_dir: DataDir) -> str:
    """Where the store is, for messages (an object-store URI without query or userinfo)."""
    return locate(data_dir).shown


def store_exists(data_dir: DataDir) -> bool:
    loc = locate(data_dir)
    with loc.guard("looking for a store in"):
        return loc.exists("manifest.json")


def manifest_stamp(data_dir: DataDir) -> tuple:
    """A cheap token that changes when the manifest is replaced; () when there is none (an
    object store: then read the manifest itself)."""
    return locate(data_dir).stamp("manifest.json")


def write_beside(data_dir: DataDir, name: str, text: str) -> None:
    """A small file in the store directory describing the store (rejections, quality)."""
    loc = locate(data_dir)
    with loc.guard(f"writing {name} to"):
        loc.put_text(name, text)


@dataclass(frozen=True)
class LocalStore:
    """A store directory on a local (or shared POSIX) filesystem."""

    root: Path

    @property
    def shown(self) -> str:
        return str(self.root)

    def where(self, name: str) -> str:
        return str(self.root / name)

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read_bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def open_input(self, name: str) -> Any:
        """The file, opened (memory-mapped): a writer may delete the name afterwards and this
        reader still reads the bytes it opened (FileNotFoundError if already gone)."""
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(path)
        return pa.memory_map(str(path))

    def stamp(self, name: str) -> tuple:
        """(inode, mtime, size): changes whenever the file is replaced; () if unreadable."""
        try:
            st = (self.root / name).stat()
        except OSError:
            return ()
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def names(self) -> list[str]:
        return [p.name for p in self.root.iterdir()] if self.root.is_dir() else []

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        """A fresh directory beside the store (same disk, so a rename publishes from it)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".store-", dir=self.root.parent))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, staged: Path, name: str) -> None:
        fsync(staged)
        self.root.mkdir(parents=True, exist_ok=True)
        os.replace(staged, self.root / name)

    def put_text(self, name: str, text: str) -> None:
        """Replace `name` in one rename (a reader sees the old file or the new one)."""
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(text)
        self.publish(tmp, name)

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".append.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one appender at a time (released on close)
            yield

    @contextlib.contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """Local errors pass through unchanged (they carry no secrets)."""
        yield


@dataclass(frozen=True)
class ObjectStore:
    """A store under an object-store prefix (module docstring: no rename, no lock, no stamp)."""

    fs: pafs.FileSystem
    root: str  # bucket/prefix/store, as `fs` names it
    uri: str = ""  # the data dir as given: may hold secrets, never shown

    @property
    def shown(self) -> str:
        return f"{redact(self.uri)}/{STORE_DIRNAME}"

    def where(self, name: str) -> str:
        return f"{self.shown}/{name}"

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        return self.fs.get_file_info(self._path(name)).type == pafs.FileType.File

    def read_bytes(self, name: str) -> bytes:
        with self.fs.open_input_stream(self._path(name)) as fh:
            return fh.read()

    def open_input(self, name: str) -> Any:
        return self.fs.open_input_file(self._path(name))

    def stamp(self, name: str) -> tuple:
        return ()

    def names(self) -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return [i.base_name for i in infos if i.type == pafs.FileType.File]

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._path(name))

    @contextlib.contextmanager
    def staging_dir(self) -> Iterator[Path]:
        tmp = Path(tempfile.mkdtemp(prefix="technic-store-"))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, staged: Path, name: str) -> None:
        with open(staged, "rb") as src, self.fs.open_output_stream(self._path(name)) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)

    def put_text(self, name: str, text: str) -> None:
        with self.fs.open_output_stream(self._path(name)) as dst:
            dst.write(text.encode())

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        yield  # no locks on an object store (module docstring)

    @contextlib.contextmanager
    def guard(self, doing: str) -> Iterator[None]:
        """pyarrow's I/O errors as StoreErrors with the secrets scrubbed; a missing object
        stays FileNotFoundError, which callers turn into "no store" / retry."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreError(f"{doing} {self.shown} failed: {scrub(str(exc), self.uri)}"
                             ) from None


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
