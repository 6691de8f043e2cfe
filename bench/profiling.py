"""Where the time goes: py-spy samples of the benchmark process (costalloc's mover threads) and of
the moto server during one extra costalloc lane. Only threads that are running are sampled, so the
shares are shares of CPU, not of waiting."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SAMPLES_PER_SECOND = 100

# Kinds of work, each named by parts of the file paths of its frames. A sample counts for the kind
# of the innermost frame that names one: a SHA-256 inside botocore's signer is signing, a socket
# write inside urllib3 is the connection, a dict lookup inside botocore's serializer is botocore.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("signing (SigV4: hashes, HMAC, canonical request)", ("botocore/auth.py", "/hmac.py", "/hashlib.py")),
    (
        "connections and HTTP (urllib3, http.client, sockets)",
        ("urllib3/", "/http/client.py", "/socket.py", "/ssl.py", "botocore/awsrequest.py", "botocore/httpsession.py"),
    ),
    ("checksums (botocore/httpchecksum.py)", ("botocore/httpchecksum.py",)),
    (
        "building requests and parsing answers (botocore)",
        ("botocore/", "boto3/", "/xml/", "/email/", "/urllib/parse.py", "dateutil/"),
    ),
    ("database (SQLAlchemy, psycopg)", ("sqlalchemy/", "psycopg")),
    ("threads and queues", ("/threading.py", "concurrent/futures/", "/queue.py")),
    ("costalloc's own code", ("costalloc_pipeline/",)),
)
OTHER_KIND = "other (interpreter, logging, standard library)"


@dataclass(frozen=True)
class Hotspot:
    share: float
    frame: str


@dataclass(frozen=True)
class ProcessProfile:
    name: str
    raw_path: Path
    samples: int
    # Frames by the share of samples in which they are the running frame.
    self_time: list[Hotspot]
    # Frames by the share of samples in which they are on the stack.
    inclusive: list[Hotspot]
    # Kinds of work (KINDS) by their share of samples.
    kinds: list[Hotspot]


@contextmanager
def sampling(processes: Mapping[str, int], out_dir: Path) -> Iterator[dict[str, Path]]:
    """py-spy record on each named pid while the body runs; yields the raw (collapsed) output paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).parent / "py-spy"
    paths = {name: out_dir / f"{name}.txt" for name in processes}
    recorders = [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--format",
                "raw",
                "--output",
                str(paths[name]),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name, pid in processes.items()
    ]
    try:
        yield paths
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            _, errors = recorder.communicate(timeout=120)
            if recorder.returncode not in (0, -signal.SIGINT) and not paths_exist(paths):
                raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-500:]}")


def paths_exist(paths: Mapping[str, Path]) -> bool:
    return all(path.exists() for path in paths.values())


def kind_of(frames: list[str]) -> str:
    """The kind of work of one sample: that of its innermost frame that has one."""
    for frame in reversed(frames):
        for kind, marks in KINDS:
            if any(mark in frame for mark in marks):
                return kind
    return OTHER_KIND


def summarize(name: str, raw_path: Path, top: int = 15) -> ProcessProfile:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    samples = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        samples += int(count)
        own[frames[-1]] += int(count)
        kinds[kind_of(frames)] += int(count)
        for frame in set(frames):
            anywhere[frame] += int(count)
    total = max(samples, 1)
    return ProcessProfile(
        name=name,
        raw_path=raw_path,
        samples=samples,
        self_time=[Hotspot(count / total, frame) for frame, count in own.most_common(top)],
        inclusive=[Hotspot(count / total, frame) for frame, count in anywhere.most_common(top * 3)],
        kinds=[Hotspot(count / total, kind) for kind, count in kinds.most_common()],
    )
