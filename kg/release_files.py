"""Where the earlier ICD-10-CM releases come from: the package's wheels, fetched by pip into a cache, or a
directory of wheels or of release files (an offline build, the tests' small fixture releases).

A release directory holds, for each earlier release, the wheel that ships it
(``simple_icd_10_cm-1.4.0-py3-none-any.whl``) or a folder named after the release (``2025-04/``) with
its code list (``*.txt``) and its Tabular List (``*.xml``). Nothing here is committed or needed at
run time: the build reads these once, into the graph.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .releases import EARLIER, Release

FETCH_TIMEOUT = 120  # seconds pip may take for one wheel
ORDER_LINE = re.compile(r"^\d{5} (\S+)")  # the January 2021 order file: "00001 A00     0 Cholera ..."

ReleaseFiles = tuple[Release, Path, Path]


def default_cache() -> Path:
    """$XDG_CACHE_HOME/medcode/releases (~/.cache/medcode/releases): fetched wheels, never committed."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medcode" / "releases"


def wheel_name(release: Release) -> str:
    return f"simple_icd_10_cm-{release.package}-py3-none-any.whl"


def fetch(cache: Path, echo: Callable[[str], None]) -> None:
    """Download the wheels of the earlier releases the cache lacks, with pip (so its configured index is used);
    a release that cannot be fetched is left out, and the build later says it skipped it."""
    cache.mkdir(parents=True, exist_ok=True)
    for release in EARLIER:
        if (cache / wheel_name(release)).is_file() or (cache / release.notation).is_dir():
            continue
        # short network timeouts: offline, pip would otherwise retry for minutes before the build goes on
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   "--disable-pip-version-check", "--timeout", "15", "--retries", "1",
                   f"simple-icd-10-cm=={release.package}", "-d", str(cache)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            echo(f"      could not fetch simple-icd-10-cm {release.package} ({release.notation}): {exc}")
            continue
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            echo(f"      could not fetch simple-icd-10-cm {release.package} ({release.notation}): {reason}")


def _code_list(text: str) -> str:
    """The release's codes one a line, as the package's loader reads them (the 2021 order file rewritten)."""
    return "\n".join(m.group(1) if (m := ORDER_LINE.match(line)) else line.split(" ")[0]
                     for line in text.split("\n"))


def _from_folder(release: Release, folder: Path, work: Path) -> ReleaseFiles | None:
    lists, tabulars = sorted(folder.glob("*.txt")), sorted(folder.glob("*.xml"))
    if len(lists) != 1 or len(tabulars) != 1:
        return None
    code_list = work / f"{release.notation}-codes.txt"
    code_list.write_text(_code_list(lists[0].read_text(encoding="utf-8")), encoding="utf-8")
    return release, code_list, tabulars[0]


def _from_wheel(release: Release, wheel: Path, work: Path) -> ReleaseFiles | None:
    folder = work / release.notation
    folder.mkdir()
    try:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("simple_icd_10_cm/data/") and name.endswith((".txt", ".xml")):
                    (folder / Path(name).name).write_bytes(archive.read(name))
    except (OSError, zipfile.BadZipFile):
        return None
    return _from_folder(release, folder, work)


@contextlib.contextmanager
def release_files(directory: Path) -> Iterator[tuple[list[ReleaseFiles], list[str]]]:
    """The earlier releases found in `directory` (their files, unpacked for as long as this lasts) and the
    notations of the known releases it lacks."""
    found, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="medcode-releases-") as temp:
        work = Path(temp)
        for release in EARLIER:
            folder, wheel = directory / release.notation, directory / wheel_name(release)
            files = (_from_folder(release, folder, work) if folder.is_dir()
                     else _from_wheel(release, wheel, work) if wheel.is_file() else None)
            if files is None:
                skipped.append(release.notation)
            else:
                found.append(files)
        yield found, skipped
