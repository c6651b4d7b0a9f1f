"""The bytes of an export: one plain file, or members of a zip archive read as streams (never
extracted to disk).

An archive is checked whole when it is opened — member names (zip-slip: absolute paths, ``..``,
drive letters), nested archives, member count, declared sizes and compression ratios — and
every member is held to the limits again while it is read, counting the bytes that actually
come out rather than trusting the headers. Reads of the main inputs are counted for progress.
"""
from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.chats.model import ChatFormatError

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What an export may hold. Sizes are uncompressed bytes."""

    max_total: int = 1024 * MiB  # all members together
    max_member: int = 512 * MiB  # any one member
    max_ratio: int = 100  # uncompressed / compressed, for members past ``ratio_floor``
    max_members: int = 10_000
    ratio_floor: int = 1 * MiB  # small members may compress well; their ratio is not judged
    max_buffered: int = 256 * MiB  # a JSON file that has to be read whole (Messenger, Slack)


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
NESTED_ARCHIVE = re.compile(
    r"\.(zip|7z|rar|tar|tgz|tbz2?|txz|gz|bz2|xz|zst|lz4|lzma|cab|jar|apk|ipa)$", re.I)
_DRIVE = re.compile(r"^[A-Za-z]:")
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|\._)")


class Progress:
    """Bytes of the main inputs consumed so far."""

    __slots__ = ("position",)

    def __init__(self) -> None:
        self.position = 0


class _Meter(io.RawIOBase):
    """Reads ``inner``, adding what it reads to ``progress`` (if any) and calling ``check``
    with the running count (which raises when a limit is passed)."""

    def __init__(self, inner: BinaryIO, progress: Progress | None,
                 check: Callable[[int], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        super().__init__()
        self._inner, self._progress, self._check, self._on_error = inner, progress, check, on_error
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._inner.read(len(buffer))
        except ChatFormatError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
                RuntimeError) as e:
            if self._on_error is not None:
                self._on_error(e)  # raises the ChatFormatError it stands for
            raise
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self._progress is not None:
            self._progress.position += n
        if self._check is not None:
            self._check(self.count)
        return n

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


class Input:
    """One input file: ``name`` is its path in the archive (or the upload's file name),
    ``size`` its (declared) uncompressed size."""

    name: str
    size: int

    def open(self, progress: Progress | None = None) -> BinaryIO:
        """A buffered binary stream over the whole input; reads are added to ``progress``."""
        raise NotImplementedError

    def head(self, n: int = 65536) -> bytes:
        with self.open() as f:
            return f.read(n)

    def read_all(self, limit: int, progress: Progress | None = None) -> bytes:
        if self.size > limit:
            raise ChatFormatError(
                "too_large", f"{self.name} is {self.size // MiB} MiB; a file that has to be "
                f"read whole may be at most {limit // MiB} MiB",
                {"member": self.name, "limit": limit})
        with self.open(progress) as f:
            return f.read()

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def dirname(self) -> str:
        return self.name.rsplit("/", 1)[0] if "/" in self.name else ""


class FileInput(Input):
    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name
        self.size = path.stat().st_size

    def open(self, progress: Progress | None = None) -> BinaryIO:
        raw = open(self.path, "rb", buffering=0)  # closed with the stream
        if progress is None:
            return io.BufferedReader(raw, 1 << 16)
        return io.BufferedReader(_Meter(raw, progress), 1 << 16)


class MemberInput(Input):
    def __init__(self, archive: Archive, info: zipfile.ZipInfo):
        self.archive, self.info = archive, info
        self.name, self.size = info.filename, info.file_size

    def open(self, progress: Progress | None = None) -> BinaryIO:
        info, limits = self.info, self.archive.limits
        try:
            inner = self.archive.zip.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise ChatFormatError("truncated", f"the archive is damaged: cannot read "
                                  f"{info.filename} ({e})", {"member": info.filename}) from e
        except NotImplementedError as e:
            raise ChatFormatError("unknown_format", f"{info.filename} is compressed with a "
                                  f"method that cannot be read ({e})",
                                  {"member": info.filename}) from e
        except RuntimeError as e:  # encrypted
            raise ChatFormatError("unknown_format", f"{info.filename} is password-protected",
                                  {"member": info.filename}) from e
        ratio_cap = max(limits.ratio_floor, limits.max_ratio * max(info.compress_size, 1))

        def check(count: int) -> None:
            if count > info.file_size:
                raise ChatFormatError(
                    "unsafe_archive", f"{info.filename} holds more data than its header "
                    f"declares ({info.file_size} bytes): the archive is not safe to read",
                    {"member": info.filename})
            if count > limits.max_member:
                raise ChatFormatError(
                    "too_large", f"{info.filename} is larger than "
                    f"{limits.max_member // MiB} MiB", {"member": info.filename})
            if count > ratio_cap:
                raise ChatFormatError(
                    "unsafe_archive", f"{info.filename} expands more than "
                    f"{limits.max_ratio} times (a zip bomb?)", {"member": info.filename})

        def on_error(e: Exception) -> None:
            if isinstance(e, zipfile.BadZipFile) and "CRC" in str(e):
                raise ChatFormatError(
                    "unsafe_archive", f"{info.filename} does not match its header (CRC check "
                    "failed): the archive is damaged or tampered with",
                    {"member": info.filename}) from e
            raise ChatFormatError("truncated", f"the archive is damaged: cannot read "
                                  f"{info.filename} ({e})", {"member": info.filename}) from e

        meter = _Meter(inner, progress, check, on_error)  # type: ignore[arg-type]
        return io.BufferedReader(meter, 1 << 16)


def unsafe_name(name: str) -> bool:
    n = name.replace("\\", "/")
    if "\x00" in n or n.startswith("/") or _DRIVE.match(n):
        return True
    return ".." in n.split("/")


class Archive:
    """An open zip archive whose directory has passed the safety checks."""

    def __init__(self, path: Path, filename: str, limits: ArchiveLimits):
        self.limits, self.filename = limits, filename
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.LargeZipFile as e:
            raise ChatFormatError("too_large", f"{filename}: the archive is too large") from e
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ChatFormatError(
                "truncated", f"{filename} starts like a zip archive but cannot be opened "
                f"({e}); it is probably truncated or damaged") from e
        try:
            self.members = self._check()
        except BaseException:
            self.zip.close()
            raise

    def _check(self) -> list[MemberInput]:
        limits, infos = self.limits, self.zip.infolist()
        if len(infos) > limits.max_members:
            raise ChatFormatError(
                "too_large", f"the archive holds {len(infos)} files; at most "
                f"{limits.max_members} are accepted", {"members": len(infos)})
        total, members = 0, []
        for info in infos:
            for name in {info.filename, info.orig_filename}:
                if unsafe_name(name):
                    raise ChatFormatError(
                        "unsafe_archive", f"the archive holds a file named {name!r}, which "
                        "points outside the archive (absolute path, drive or '..')",
                        {"member": name})
            if info.is_dir():
                continue
            if NESTED_ARCHIVE.search(info.filename):
                raise ChatFormatError(
                    "unsafe_archive", f"the archive holds another archive ({info.filename}); "
                    "nested archives are not accepted", {"member": info.filename})
            if info.file_size > limits.max_member:
                raise ChatFormatError(
                    "too_large", f"{info.filename} is {info.file_size // MiB} MiB once "
                    f"uncompressed; at most {limits.max_member // MiB} MiB per file",
                    {"member": info.filename})
            if (info.file_size > limits.ratio_floor
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                raise ChatFormatError(
                    "unsafe_archive", f"{info.filename} would expand "
                    f"{info.file_size // max(info.compress_size, 1)} times (a zip bomb?); at "
                    f"most {limits.max_ratio} times is accepted", {"member": info.filename})
            total += info.file_size
            members.append(MemberInput(self, info))
        if total > limits.max_total:
            raise ChatFormatError(
                "too_large", f"the archive holds {total // MiB} MiB once uncompressed; at "
                f"most {limits.max_total // MiB} MiB", {"total": total})
        return members

    def close(self) -> None:
        self.zip.close()

    def useful(self) -> list[MemberInput]:
        """Members that are not OS clutter (``__MACOSX/``, ``.DS_Store``)."""
        return [m for m in self.members if not JUNK.search(m.name)]
