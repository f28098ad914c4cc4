"""A private Virtuoso Open Source instance for tests and benchmarks: own ini, own files, loopback only.

Never the system service: the database lives in a directory given by the caller, both ports are
bound to 127.0.0.1, and `stop()` ends the process. A user with the SPARQL_UPDATE role is created for
`medcode publish` (Virtuoso's /sparql-auth asks for HTTP Digest authentication).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

VIRTUOSO = "virtuoso-t"
ISQL = "isql-vt"
VAD_DIR = "/usr/share/virtuoso-opensource-7/vad"
VSP_DIR = "/var/lib/virtuoso-opensource-7/vsp"

INI = """\
[Database]
DatabaseFile = {dir}/virtuoso.db
ErrorLogFile = {dir}/virtuoso.log
LockFile = {dir}/virtuoso.lck
TransactionFile = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {dir}/virtuoso-temp.db
TransactionFile = {dir}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
MaxClientConnections = 20
CheckpointInterval = 10
CaseMode = 2
DirsAllowed = ., {dir}, {vad}
VADInstallDir = {vad}/
MaxQueryMem = 2G
ThreadsPerQuery = 2
AsyncQueueMaxThreads = 10
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
; `medcode publish` swaps graphs with MOVE in one transaction: allow its log image (default 50 MB)
TransactionAfterImageLimit = 2000000000

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {vsp}
MaxClientConnections = 20
ServerThreads = 20
MaxKeepAlives = 20
KeepAliveTimeout = 10
Charset = UTF-8
EnabledGzipContent = 0

[SPARQL]
ResultSetMaxRows = {max_rows}
; no refusal by the planner's estimate: right after a load it was off by 10^7 (a code-history query
; "estimated 809866 s" answers in 0.05 s); the app's time limit governs every query
MaxQueryCostEstimationTime = 0
; the app sends its own per-query limit; this caps what it does not govern (publish's swap)
MaxQueryExecutionTime = 3600
DefaultGraph =
"""


def available() -> bool:
    """Whether the Debian package `virtuoso-opensource` is installed here."""
    return shutil.which(VIRTUOSO) is not None and shutil.which(ISQL) is not None


class Virtuoso:
    """One virtuoso-t process over a database directory; `url` is its /sparql endpoint."""

    def __init__(self, directory: Path, http_port: int, sql_port: int, *, memory_mb: int = 2048,
                 max_rows: int = 2_000_000, user: str = "medcode", password: str = "medcode-test") -> None:
        self.directory = Path(directory)
        self.http_port, self.sql_port = http_port, sql_port
        self.user, self.password = user, password
        buffers = memory_mb * 1024 * 1024 // 8192 * 2 // 3  # Virtuoso's own sizing rule: 2/3 of RAM
        self.ini = INI.format(dir=self.directory, sql_port=sql_port, http_port=http_port, vad=VAD_DIR,
                              vsp=VSP_DIR, buffers=buffers, dirty=buffers * 3 // 4, max_rows=max_rows)
        self.process: subprocess.Popen | None = None

    @classmethod
    def running(cls, directory: Path) -> Virtuoso:
        """An instance `start()` left running in `directory` (its ini gives the ports); `stop()` leaves it be."""
        ini = (Path(directory) / "virtuoso.ini").read_text(encoding="utf-8")
        http_port, sql_port = (int(p) for p in re.findall(r"^ServerPort = 127\.0\.0\.1:(\d+)$", ini, re.M)[::-1])
        return cls(directory, http_port, sql_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/sparql"

    def start(self, timeout: float = 120) -> Virtuoso:
        """Start in the foreground (+foreground), wait until /sparql answers, create the publish user."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "virtuoso.ini").write_text(self.ini, encoding="utf-8")
        log = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 - kept open for the process' life
        self.process = subprocess.Popen([VIRTUOSO, "+foreground", "+configfile", "virtuoso.ini"],
                                        cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"virtuoso-t exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if requests.get(self.url, params={"query": "ASK {}"}, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            self.stop()
            raise RuntimeError(f"Virtuoso did not answer within {timeout:g} s: {self.log_tail()}")
        self.sql(f"DB.DBA.USER_CREATE('{self.user}', '{self.password}');",
                 f'GRANT SPARQL_UPDATE TO "{self.user}";')
        return self

    def sql(self, *statements: str) -> str:
        """Run SQL statements through isql-vt as dba (the fresh database's default password)."""
        script = "\n".join(statements) + "\nexit;\n"
        done = subprocess.run([ISQL, str(self.sql_port), "dba", "dba"], input=script, capture_output=True,
                              text=True, timeout=300, check=False)
        if done.returncode != 0 or "*** Error" in done.stdout:
            raise RuntimeError(f"isql failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        path = self.directory / "virtuoso.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def memory_kib(self) -> int:
        """Resident memory of the server process (VmRSS), for the benchmark."""
        if self.process is None:
            return 0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        """Ask for a clean shutdown, then kill the process group if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Virtuoso:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
