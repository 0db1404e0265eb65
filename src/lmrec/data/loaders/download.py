"""Download official MovieLens archives, verified by SHA-256, into the user cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lmrec.errors import DataError

__all__ = [
    "DEFAULT_MOVIELENS_URL",
    "MOVIELENS_RELEASES",
    "MOVIELENS_URL_ENV",
    "MovieLensRelease",
    "default_cache_dir",
    "download_movielens",
    "sha256_file",
]

#: Where GroupLens publishes the archives.
DEFAULT_MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens"
#: Environment variable that replaces `DEFAULT_MOVIELENS_URL` (a mirror, or a test server).
MOVIELENS_URL_ENV = "LMREC_MOVIELENS_URL"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class MovieLensRelease:
    """An official MovieLens archive and the checksums that prove a download intact.

    `folder` is the folder inside the archive. When `file_sha256` is given the
    extracted files are verified (the archive may be re-zipped without harm);
    otherwise the archive itself must match `archive_sha256`.
    """

    name: str
    archive: str
    folder: str
    archive_sha256: str | None = None
    file_sha256: Mapping[str, str] = field(default_factory=dict)


#: Releases lmrec can download. Archive checksums as published with TensorFlow
#: Datasets; ml-100k file checksums from the GroupLens files themselves.
MOVIELENS_RELEASES: dict[str, MovieLensRelease] = {
    "ml-100k": MovieLensRelease(
        "ml-100k",
        "ml-100k.zip",
        "ml-100k",
        archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        file_sha256={
            "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
            "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
        },
    ),
    "ml-1m": MovieLensRelease(
        "ml-1m", "ml-1m.zip", "ml-1m",
        archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    ),
    "ml-20m": MovieLensRelease(
        "ml-20m", "ml-20m.zip", "ml-20m",
        archive_sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
    ),
    "ml-25m": MovieLensRelease(
        "ml-25m", "ml-25m.zip", "ml-25m",
        archive_sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
    ),
    "ml-latest-small": MovieLensRelease(
        "ml-latest-small", "ml-latest-small.zip", "ml-latest-small",
        archive_sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
    ),
}  # fmt: skip


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/lmrec/datasets`, or `~/.cache/lmrec/datasets`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lmrec" / "datasets"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, target: Path, timeout: float, progress: bool) -> str:
    """Stream `url` into `target`; return the SHA-256 of what was written."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=f"downloading {url.rsplit('/', 1)[-1]}",
                disable=not progress, leave=False,
            ) as bar:  # fmt: skip
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {url}: {reason}. Download it yourself and unzip it into "
            f"a data directory (--data-dir or LMREC_DATA_DIR), or set {MOVIELENS_URL_ENV} to a mirror"
        ) from None
    return digest.hexdigest()


def _extract(archive: Path, folder: str, into: Path) -> Path:
    """Extract the members under `folder/` safely (no paths outside `into`)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            root = into.resolve()
            members = [m for m in zf.infolist() if m.filename.startswith(f"{folder}/")]
            if not members:
                raise DataError(f"the archive has no folder {folder!r}", archive)
            for member in members:
                target = (into / member.filename).resolve()
                if not target.is_relative_to(root):
                    raise DataError(
                        f"the archive member {member.filename!r} points outside the folder", archive
                    )
                zf.extract(member, into)
    except zipfile.BadZipFile:
        raise DataError("the download is not a valid zip archive", archive) from None
    return into / folder


def download_movielens(
    release: str | MovieLensRelease,
    dest: str | Path | None = None,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and unpack a MovieLens release; return its folder.

    The folder is `dest/NAME` (`dest` defaults to the user cache directory). The
    archive comes from `base_url`, else `$LMREC_MOVIELENS_URL`, else GroupLens.
    Nothing is left behind when the download or the checksum fails.
    """
    if isinstance(release, str):
        if release not in MOVIELENS_RELEASES:
            raise DataError(
                f"no verified download for {release!r}; downloadable: {', '.join(MOVIELENS_RELEASES)}"
            )
        release = MOVIELENS_RELEASES[release]
    dest = Path(dest) if dest is not None else default_cache_dir()
    final = dest / release.name
    base = (base_url or os.environ.get(MOVIELENS_URL_ENV) or DEFAULT_MOVIELENS_URL).rstrip("/")
    url = f"{base}/{release.archive}"
    dest.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{release.name}-", dir=dest))
    try:
        archive = work / release.archive
        archive_sha = _fetch(url, archive, timeout, progress)
        if (
            not release.file_sha256
            and release.archive_sha256
            and archive_sha != release.archive_sha256
        ):
            raise DataError(
                f"checksum mismatch for {url}: got sha256 {archive_sha}, expected "
                f"{release.archive_sha256}; the download is corrupt or not the official file"
            )
        folder = _extract(archive, release.folder, work / "x")
        for name, expected in release.file_sha256.items():
            path = folder / name
            if not path.is_file():
                raise DataError(f"the archive from {url} lacks {release.folder}/{name}")
            got = sha256_file(path)
            if got != expected:
                raise DataError(
                    f"checksum mismatch for {name} from {url}: got sha256 {got}, expected {expected}; "
                    "the download is corrupt or not the official file"
                )
        if final.exists():
            raise DataError(
                f"{final} already exists but was not used as {release.name}; remove it and try again"
            )
        os.replace(folder, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
