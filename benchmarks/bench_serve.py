"""The decision service under load: ``aoe-pack serve`` on 100 tags x 100 releases, wrk and hey.

Run:  .venv/bin/python benchmarks/bench_serve.py [--tags 100] [--releases 100]
      [--duration 20] [--rounds 3] [--connections 10] [--soak 60] [--slice 10]
      [--slow-clients 50] [--json FILE] [--profile FILE] [--smoke]

The issue's figures, with its 10-minute soak (docs/serve.md, "Measured"):

      .venv/bin/python benchmarks/bench_serve.py --soak 600 --json serve.json

Needs Debian's ``wrk`` and ``hey`` (.ci/test installs them), ``taskset`` and nginx.

1. A folder repository of ``--tags`` x ``--releases`` synthetic releases (rollouts,
   channels, app ranges, critical and yanked releases mixed; deterministic, signed
   like real ones) is published with :mod:`aoe_pack.publish.workflow`, as
   benchmarks/bench_repository.py seeds its own.
2. The real ``aoe-pack serve`` starts as a subprocess on a free loopback port
   (``--port 0``; the port from its ``listening`` log line), pinned to CPU 0 with
   ``taskset``; the load generators, and this script's own clients, run on CPU 1:
   two cores, the server one core's worth. It is one process: ``aoe-pack serve``
   has no ``--workers`` option (several instances go behind a load balancer).
3. ``wrk`` POSTs ``/v1/decide`` from a Lua script holding ``--bodies``
   pre-generated requests (every tag, varied device ids, installed versions, app
   versions, runtimes and channels); its ``done()`` prints requests, errors and
   latency percentiles as JSON. Every body is first sent once and must answer
   200 (the decisions it gets are counted: downloads, keeps, reverts). ``hey``
   sends one body, as a second opinion. References on the same run: wrk on
   ``GET /healthz`` of the same server (the HTTP stack without a decision) and
   on a static file from nginx (one worker, also on CPU 0), so the figures read
   as ratios on a noisy shared machine.
4. ``/upgradeModel`` (the AoE bridge) is measured when ``aoe-pack serve --help``
   offers ``--aoe-model`` (AoE devices at the newest release: "no update",
   which needs no bundle); otherwise the report says it was skipped.
5. Soak: wrk for ``--soak`` seconds in ``--slice`` second slices, the server's
   RSS (``VmRSS``) read after each; "flat" when it grew less than 5 % over the
   second half.
6. Bad requests under load: while wrk sends good requests, this script sends
   malformed JSON, bodies over the 64 KiB cap (announced by ``Content-Length``,
   and streamed chunked), unknown tags, and slow clients (headers, part of the
   body, then nothing), and clients that never finish their headers
   (slowloris). Each must get its 4xx with a JSON error (the stalled ones their
   ``408`` once the body's or the headers' 10 s have passed); the good traffic
   must see no error and a p99 within twice that of the same load alone.

Goals (issue 13): >= 2,000 decisions/s on 2 cores with p99 <= 20 ms; memory flat
over a 10-minute soak. wrk is closed-loop: its latencies are those of requests
sent as fast as answers come back, at ``--connections`` in flight.

Each figure of step 3 is the median of ``--rounds`` rounds, the four loads
alternating, so that a shared machine's other work weighs on all alike; the
1-minute load average before and after is in the report. ``--profile FILE``
runs the server under cProfile (from the first load to its end, through a
wrapper: the server's code is untouched) and prints the share of its busy time
in the HTTP stack, the request parsing, the decision and the answer; its
figures are slower than unprofiled ones.

``--smoke`` runs everything in about half a minute on a tiny repository
(tests/bench/test_bench_serve.py); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' nginx

from _server_nginx import serve_with_nginx

from aoe_pack._crypto import asymmetric as keys
from aoe_pack.publish.workflow import edit_manifest, init_repository
from aoe_pack.repository.model import ModelReleases, Models, Release
from aoe_pack.storage.local import LocalStore
from aoe_pack.versions import Version

REPO = Path(__file__).resolve().parents[1]
GOAL_RPS = 2000
GOAL_P99_MS = 20.0
FLAT_GROWTH = 0.05
BODY_TIMEOUT = 10.0  # aoe_pack.serve.app.ServeLimits.body_timeout: a slow client's 408
HEADER_TIMEOUT = 10.0  # ServeLimits.header_timeout: a slowloris client's 408
MAX_BODY = 64 * 1024  # ServeLimits.max_body_bytes
MARK = "BENCH-JSON "
HOST = "127.0.0.1"


# --- the repository and the requests -----------------------------------------------------


def tag_name(t: int) -> str:
    return f"model{t:03d}"


def synthetic(tag: str, i: int) -> Release:
    """Release ``1.i.0`` of ``tag``, deterministic, mixed as bench_repository's are."""
    version = f"1.{i}.0"
    sha = hashlib.sha256(f"{tag} {version}".encode()).hexdigest()
    return Release(
        version=version,
        version_code=Version.parse(version).version_code(),
        url=f"bundles/{sha}.aoe",
        size=1_000_000 + i,
        sha256=sha,
        runtimes=("mnn", "tflite"),
        artifacts=({"runtime": "mnn", "variant": "fp32"}, {"runtime": "tflite", "variant": "fp16"}),
        channel="beta" if i % 7 == 0 else "stable",
        rollout_bp=(i * 937) % 10_001,
        salt=hashlib.sha256(f"salt {tag} {i}".encode()).hexdigest()[:32],
        min_app_version="1.0.0" if i % 3 else None,
        max_app_version="9.0.0" if i % 11 == 0 else None,
        critical=i % 50 == 0,
        yanked="crashes on start" if i % 23 == 22 else None,
    )


def seed(folder: Path, tags: int, releases: int) -> tuple[Path, float]:
    """Publish the repository; its ``root.json`` and the seconds it took."""
    t0 = time.perf_counter()
    key = keys.generate(keys.KeyKind.ED25519)
    store = LocalStore(folder)
    init_repository(store, root_keys=[key.public], threshold=1, sign_keys=[key])
    names = [tag_name(t) for t in range(tags)]
    models = Models(
        {n: ModelReleases(releases=tuple(synthetic(n, i) for i in range(releases))) for n in names}
    )
    edit_manifest(store, lambda m: models, sign_keys=[key])
    return folder / "root.json", time.perf_counter() - t0


def decision_bodies(count: int, tags: int, releases: int) -> list[bytes]:
    """``count`` decision requests spread over every tag and many devices."""
    runtimes = (["tflite"], ["mnn"], ["onnx"], ["tflite", "mnn"])
    channels = (["stable"], ["stable", "beta"])
    out = []
    for n in range(count):
        doc: dict[str, Any] = {
            "tag": tag_name(n % tags),
            "installedVersion": f"1.{(n * 7) % releases}.0",
            "localVersion": "1.0.0",
            "appVersion": "0.9.0" if n % 5 == 0 else "2.3.0",
            "deviceId": hashlib.sha256(b"device %d" % n).hexdigest()[:32],
            "runtimes": runtimes[n % len(runtimes)],
            "channels": channels[(n // 3) % len(channels)],
        }
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


def aoe_bodies(count: int, releases: int) -> list[bytes]:
    """AoE requests at the newest release: "no update", which needs no bundle."""
    return [
        json.dumps(
            {
                "appId": 1,
                "modelId": 1,
                "modelVersionCode": f"1.{releases - 1}.0",
                "deviceSN": f"sn-{n:08d}",
                "deviceType": "Pixel 7",
                "timeStamp": 1_760_000_000_000 + n,
                "sign": "unchecked",
            },
            separators=(",", ":"),
        ).encode()
        for n in range(count)
    ]


# --- the server --------------------------------------------------------------------------


def pinned(cpus: list[int] | None) -> list[str]:
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Server:
    """``aoe-pack serve`` in a subprocess."""

    proc: subprocess.Popen[bytes]
    port: int
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def rss(self) -> int:
        return rss_kib(self.proc.pid)


# --profile: the server's own command under cProfile, from SIGUSR1 (sent once the
# repository is verified and every body answered once) to SIGTERM (its stats
# written, then the process ends). The server's code is not touched.
_PROFILED = """\
import cProfile, os, signal, sys
from aoe_pack.cli import main
profile = cProfile.Profile()
def begin(signum, frame):
    profile.enable()
def end(signum, frame):
    profile.disable()
    profile.dump_stats(os.environ["AOE_BENCH_PROFILE"])
    os._exit(0)
signal.signal(signal.SIGUSR1, begin)
signal.signal(signal.SIGTERM, end)
sys.argv[0] = "aoe-pack"
main()
"""


def aoe_pack_command(profile: Path | None = None) -> list[str]:
    if profile is not None:
        return [sys.executable, "-c", _PROFILED]
    return [sys.executable, "-m", "aoe_pack"]


def has_aoe_bridge() -> bool:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    shown = subprocess.run(
        [*aoe_pack_command(), "serve", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return "--aoe-model" in shown.stdout


@contextlib.contextmanager
def serving(
    repo: Path,
    root: Path,
    work: Path,
    cpus: list[int] | None,
    extra: Sequence[str] = (),
    profile: Path | None = None,
) -> Iterator[Server]:
    """The service on a free loopback port until the ``with`` ends."""
    args = ["serve", "--repo", str(repo), "--trusted-root", str(root), "--host", HOST]
    args += ["--port", "0", "--poll-interval", "5", "--json-logs", *extra]
    command = [*pinned(cpus), *aoe_pack_command(profile), *args]
    log = work / f"serve-{time.monotonic_ns()}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if profile is not None:
        env["AOE_BENCH_PROFILE"] = str(profile)
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        port = _listening(proc, log)
        server = Server(proc, port, ["aoe-pack", *args])
        _wait_healthy(server.url)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _listening(proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 120  # a big repository is verified before it listens
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "listening":
                    return int(event["port"])
        if proc.poll() is not None:
            raise RuntimeError(f"aoe-pack serve exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"aoe-pack serve did not listen within 120 s:\n{log.read_text()}")


def _wait_healthy(url: str) -> None:
    status, body = http_request(url, "GET", "/healthz")
    if status != 200:
        raise RuntimeError(f"/healthz answered {status}: {body!r}")


def http_request(
    url: str, method: str, path: str, body: bytes | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def precheck(
    url: str, path: str, bodies: list[bytes], outcome: Callable[[Any], str]
) -> Counter[str]:
    """Send every body once over one connection; each must answer 200. Their outcomes."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    seen: Counter[str] = Counter()
    try:
        for body in bodies:
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status} to {body!r}: {data!r}")
            seen[outcome(json.loads(data))] += 1
    finally:
        conn.close()
    return seen


# --- the load generators -----------------------------------------------------------------

_LUA = """\
-- written by benchmarks/bench_serve.py
local bodies = {%(bodies)s}
local method, path = "%(method)s", "%(path)s"
local headers = {["Content-Type"] = "application/json"}
local prepared = {}
local counter = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  if #bodies == 0 then
    prepared[1] = wrk.format(method, path)
  else
    for i, b in ipairs(bodies) do prepared[i] = wrk.format(method, path, headers, b) end
  end
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return prepared[(counter %% #prepared) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%.0f,"p90":%%.0f,"p99":%%.0f,"max":%%.0f,"mean":%%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def lua_script(path: Path, method: str, url_path: str, bodies: list[bytes]) -> Path:
    # The bodies are ASCII JSON: json.dumps of their text is a valid Lua string literal.
    literals = ",\n".join(json.dumps(b.decode("ascii")) for b in bodies)
    path.write_text(
        _LUA
        % {
            "bodies": "\n" + literals + "\n" if literals else "",
            "method": method,
            "path": url_path,
            "mark": MARK,
        }
    )
    return path


def wrk(
    url: str, script: Path, *, seconds: float, connections: int, cpus: list[int] | None
) -> dict[str, Any]:
    """One wrk run: requests/s, latency percentiles (ms) and every error counter."""
    command = [*pinned(cpus), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    command += ["--timeout", "5s", "--latency", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix(MARK))
    lat = raw["latency_us"]
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "seconds": round(raw["duration_us"] / 1e6, 2),
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "errors": errors,
        "error_total": sum(errors.values()),
        "non_2xx": errors["status"],  # wrk counts answers with a status over 399
        "connections": connections,
    }


def hey(
    url: str, body: Path, *, seconds: float, connections: int, cpus: list[int] | None
) -> dict[str, Any]:
    """One hey run with one body: requests/s, p50/p99 (ms), status codes and errors."""
    command = [*pinned(cpus), "hey", "-z", f"{max(1, round(seconds))}s", "-c", str(connections)]
    command += ["-m", "POST", "-T", "application/json", "-D", str(body), url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"hey failed ({done.returncode}):\n{out}\n{done.stderr}")

    def seconds_at(pct: int) -> float:
        m = re.search(rf"^\s*{pct}%+ in ([\d.]+) secs", out, re.MULTILINE)
        return float(m.group(1)) * 1000 if m else float("nan")

    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    errors_part = out.split("Error distribution:", 1)[1] if "Error distribution:" in out else ""
    errors = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]", errors_part, re.MULTILINE))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps is not None
    return {
        "requests": sum(statuses.values()),
        "rps": float(rps.group(1)),
        "p50_ms": seconds_at(50),
        "p99_ms": seconds_at(99),
        "statuses": statuses,
        "non_2xx": (bad := sum(n for c, n in statuses.items() if not 200 <= c < 300)),
        "transport_errors": errors,
        "error_total": errors + bad,
        "connections": connections,
    }


def tool_version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


# --- soak --------------------------------------------------------------------------------


def soak(
    server: Server,
    script: Path,
    *,
    seconds: float,
    slice_s: float,
    connections: int,
    cpus: list[int] | None,
) -> dict[str, Any]:
    """wrk in slices, the server's RSS after each; flat if the second half grew < 5 %."""
    t0 = time.monotonic()
    samples = [{"t": 0.0, "rss_kib": server.rss()}]
    slices = []
    while time.monotonic() - t0 < seconds - 0.5:
        run = wrk(server.url, script, seconds=slice_s, connections=connections, cpus=cpus)
        slices.append({k: run[k] for k in ("requests", "rps", "p50_ms", "p99_ms", "error_total")})
        samples.append({"t": round(time.monotonic() - t0, 1), "rss_kib": server.rss()})
    start, end = samples[0]["rss_kib"], samples[-1]["rss_kib"]
    half = min(samples, key=lambda s: abs(s["t"] - samples[-1]["t"] / 2))["rss_kib"]
    growth = (end - half) / half
    ts = [s["t"] / 60 for s in samples]
    rs = [s["rss_kib"] for s in samples]
    mt, mr = sum(ts) / len(ts), sum(rs) / len(rs)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (r - mr) for t, r in zip(ts, rs, strict=True)) / var if var else 0.0
    return {
        "seconds": round(samples[-1]["t"], 1),
        "slice_seconds": slice_s,
        "requests": sum(s["requests"] for s in slices),
        "errors": sum(s["error_total"] for s in slices),
        "rss_start_kib": start,
        "rss_end_kib": end,
        "rss_half_kib": half,
        "growth_second_half": round(growth, 4),
        "slope_kib_per_min": round(slope, 1),
        "flat": growth < FLAT_GROWTH,
        "slice_rps_min": min(x["rps"] for x in slices),
        "slice_rps_median": statistics.median(x["rps"] for x in slices),
        "slice_p99_ms_median": statistics.median(x["p99_ms"] for x in slices),
        "slice_p99_ms_max": max(x["p99_ms"] for x in slices),
        "samples": samples,
        "slices": slices,
    }


# --- bad requests ------------------------------------------------------------------------


@dataclass
class Tally:
    """What one kind of bad request got."""

    expect: tuple[int, str]
    sent: int = 0
    as_expected: int = 0
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, headers: dict[str, str], body: bytes) -> None:
        got = f"{status} {body[:200]!r}"
        try:
            doc = json.loads(body)
            ok = (
                (status, doc["error"]["code"]) == self.expect
                and doc["ok"] is False
                and headers.get("content-type", "").startswith("application/json")
            )
        except (ValueError, KeyError, TypeError):
            ok = False
        with self.lock:
            self.sent += 1
            if ok:
                self.as_expected += 1
            elif len(self.wrong) < 5:
                self.wrong.append(got)

    def failed(self, what: str) -> None:
        with self.lock:
            self.sent += 1
            if len(self.wrong) < 5:
                self.wrong.append(what)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expect": f"{self.expect[0]} {self.expect[1]}",
            "sent": self.sent,
            "as_expected": self.as_expected,
            "wrong": self.wrong,
        }


def _raw(
    port: int, head: bytes, body_parts: Iterable[bytes] = (), timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` then each part (stopping once an answer arrives); the parsed answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for part in body_parts:
                sock.sendall(part)
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
                if _complete(data):
                    break
    head_text, _, body = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return bool(sep) and m is not None and len(body) >= int(m.group(1))


def _post_head(length: int | None, path: str = "/v1/decide") -> bytes:
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{size}\r\n\r\n"
    ).encode()


def bad_requests(
    server: Server,
    script: Path,
    *,
    seconds: float,
    connections: int,
    slow_clients: int,
    cpus: list[int] | None,
) -> dict[str, Any]:
    """Good load from wrk and bad requests from threads here, at the same time."""
    port = server.port
    unknown = json.dumps(
        {
            "tag": "no-such-tag",
            "installedVersion": "1.0.0",
            "appVersion": "2.3.0",
            "deviceId": "bad-client",
        }
    ).encode()
    malformed = b'{"tag": "model000", "installedVersion": '
    tallies = {
        "malformed JSON": Tally((400, "bad-request")),
        "unknown tag": Tally((404, "release-not-found")),
        "huge body (Content-Length)": Tally((413, "request-too-large")),
        "huge body (chunked)": Tally((413, "request-too-large")),
        "slow client (headers, then stalls)": Tally((408, "request-timeout")),
        "headers never finished": Tally((408, "request-timeout")),
    }

    def chunked() -> Iterator[bytes]:
        piece = b"x" * 16384
        for _ in range(4 * MAX_BODY // len(piece)):
            yield b"%x\r\n%s\r\n" % (len(piece), piece)
        yield b"0\r\n\r\n"

    sends: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]] = {
        "malformed JSON": lambda: _raw(port, _post_head(len(malformed)) + malformed),
        "unknown tag": lambda: _raw(port, _post_head(len(unknown)) + unknown),
        "huge body (Content-Length)": lambda: _raw(
            port, _post_head(16 * 1024 * 1024), [b"{" + b" " * (MAX_BODY + 1)]
        ),
        "huge body (chunked)": lambda: _raw(port, _post_head(None), chunked()),
    }
    stop = threading.Event()

    def loop(kind: str) -> None:
        while not stop.is_set():
            try:
                tallies[kind].record(*sends[kind]())
            except OSError as e:
                tallies[kind].failed(f"{type(e).__name__}: {e}")
            stop.wait(0.02)

    def slow() -> None:
        tally = tallies["slow client (headers, then stalls)"]
        try:
            tally.record(*_raw(port, _post_head(300) + b'{"tag": "mod', timeout=BODY_TIMEOUT + 20))
        except OSError as e:
            tally.failed(f"{type(e).__name__}: {e}")

    def slowloris() -> None:
        """Half the headers, then nothing."""
        tally = tallies["headers never finished"]
        half = f"POST /v1/decide HTTP/1.1\r\nHost: {HOST}\r\nContent-Ty".encode()
        try:
            tally.record(*_raw(port, half, timeout=HEADER_TIMEOUT + 20))
        except OSError as e:
            tally.failed(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=loop, args=(k,), daemon=True) for k in sends]
    threads += [threading.Thread(target=slow, daemon=True) for _ in range(slow_clients)]
    threads += [threading.Thread(target=slowloris, daemon=True) for _ in range(slow_clients)]
    for t in threads:
        t.start()
    try:
        good = wrk(server.url, script, seconds=seconds, connections=connections, cpus=cpus)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=max(BODY_TIMEOUT, HEADER_TIMEOUT) + 30)
    return {"good": good, "bad": {k: t.to_dict() for k, t in tallies.items()}}


# --- the run -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Settings:
    tags: int
    releases: int
    bodies: int
    duration: float
    connections: int
    soak: float
    slice: float
    slow_clients: int
    rounds: int
    profile: Path | None = None


def cpu_split() -> tuple[list[int] | None, list[int] | None]:
    """The server's CPU and the clients' CPU: 0 and 1, when there are two and taskset."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return [cpus[0]], [cpus[1]]


def nginx_pin(work: Path, cpus: list[int] | None) -> None:
    """Put nginx's master and worker on the server's CPU."""
    if not cpus:
        return
    master = int((work / "nginx.pid").read_text())
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in [master, *map(int, children)]:
        os.sched_setaffinity(pid, cpus)


def run(s: Settings, work: Path) -> dict[str, Any]:
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is required: apt-get install wrk hey (.ci/test does)")
    server_cpus, client_cpus = cpu_split()
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # this script's own clients stay off the server's CPU
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "server_cpus": server_cpus,
            "client_cpus": client_cpus,
            "python": platform.python_version(),
            "wrk": tool_version(["wrk", "-v"]),
            "hey": "hey (Debian)",
            "load_average_before": os.getloadavg(),
        },
        "settings": dict(s.__dict__),
    }
    repo = work / "repo"
    root, took = seed(repo, s.tags, s.releases)
    report["repository"] = {
        "tags": s.tags,
        "releases_per_tag": s.releases,
        "seed_seconds": round(took, 2),
        "index_bytes": (repo / "index.json").stat().st_size,
    }
    print(f"seeded {s.tags} tags x {s.releases} releases in {took:.1f} s")
    bodies = decision_bodies(s.bodies, s.tags, s.releases)
    decide_lua = lua_script(work / "decide.lua", "POST", "/v1/decide", bodies)
    body_file = work / "body.json"
    body_file.write_bytes(bodies[0])
    load = Load(s.connections, client_cpus)

    with serving(repo, root, work, server_cpus, profile=s.profile) as server:
        report["server"] = {
            "command": server.command,
            "processes": "one: aoe-pack serve has no --workers option",
            "rss_after_start_kib": server.rss(),
        }
        t = time.perf_counter()
        outcomes = precheck(server.url, "/v1/decide", bodies, lambda d: d["action"])
        report["decide_precheck"] = {
            "bodies": len(bodies),
            "seconds": round(time.perf_counter() - t, 2),
            "actions": dict(outcomes),
        }
        print(f"every body answered 200 once: {dict(outcomes)}")
        if s.profile is not None:
            server.proc.send_signal(signal.SIGUSR1)
        report.update(rounds(s, server, repo, work, decide_lua, body_file, load, server_cpus))
        report["soak"] = soak(
            server,
            decide_lua,
            seconds=s.soak,
            slice_s=s.slice,
            connections=s.connections,
            cpus=client_cpus,
        )
        report["bad_requests"] = bad_requests(
            server,
            decide_lua,
            seconds=max(s.duration, BODY_TIMEOUT + 3),
            connections=s.connections,
            slow_clients=s.slow_clients,
            cpus=client_cpus,
        )
        report["bad_requests"]["baseline_p99_ms"] = report["decide"]["wrk"]["p99_ms"]
        report["server"]["rss_at_end_kib"] = server.rss()
    report["machine"]["load_average_after"] = os.getloadavg()
    report["upgradeModel"] = upgrade_model(s, repo, root, work, server_cpus, client_cpus)
    report["goals"] = goals(report)
    return report


@dataclass(frozen=True)
class Load:
    connections: int
    cpus: list[int] | None


def rounds(
    s: Settings,
    server: Server,
    repo: Path,
    work: Path,
    decide_lua: Path,
    body_file: Path,
    load: Load,
    server_cpus: list[int] | None,
) -> dict[str, Any]:
    """``--rounds`` rounds, each: the decision with wrk and hey, then the references.

    Alternating them, and taking each figure's median over the rounds, lets a
    shared machine's other work weigh on all of them alike.
    """
    health_lua = lua_script(work / "healthz.lua", "GET", "/healthz", [])
    static_lua = lua_script(work / "static.lua", "GET", "/root.json", [])
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("wrk", "hey", "healthz", "nginx")}
    c, cpus, secs = load.connections, load.cpus, s.duration
    with serve_with_nginx(repo, work / "nginx") as nginx:
        nginx_pin(work / "nginx", server_cpus)
        for _ in range(s.rounds):
            for name, url, script in (
                ("wrk", server.url + "/v1/decide", decide_lua),
                ("hey", server.url + "/v1/decide", body_file),
                ("healthz", server.url + "/healthz", health_lua),
                ("nginx", nginx.url + "/root.json", static_lua),
            ):
                tool = hey if name == "hey" else wrk
                runs[name].append(tool(url, script, seconds=secs, connections=c, cpus=cpus))
    return {
        "decide": {"wrk": median_run(runs["wrk"]), "hey": median_run(runs["hey"])},
        "reference": {
            "healthz": median_run(runs["healthz"]),
            "nginx_static": median_run(runs["nginx"]),
        },
        "rounds": runs,
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (and the worst p99); counts summed."""
    out: dict[str, Any] = {"rounds": len(runs), "connections": runs[0]["connections"]}
    for key in ("rps", "p50_ms", "p99_ms"):
        out[key] = statistics.median(r[key] for r in runs)
    out["p99_ms_worst"] = max(r["p99_ms"] for r in runs)
    for key in ("requests", "non_2xx", "error_total"):
        out[key] = sum(r[key] for r in runs)
    return out


def upgrade_model(
    s: Settings,
    repo: Path,
    root: Path,
    work: Path,
    server_cpus: list[int] | None,
    client_cpus: list[int] | None,
) -> dict[str, Any]:
    """/upgradeModel under the same load, if this checkout's ``aoe-pack serve`` has it."""
    if not has_aoe_bridge():
        return {"skipped": "aoe-pack serve has no --aoe-model option here: no /upgradeModel"}
    bodies = aoe_bodies(min(s.bodies, 1024), s.releases)
    script = lua_script(work / "aoe.lua", "POST", "/upgradeModel", bodies)
    try:
        with serving(repo, root, work, server_cpus, ["--aoe-model", f"1:1={tag_name(0)}"]) as srv:
            codes = precheck(srv.url, "/upgradeModel", bodies, lambda d: f"code {d['code']}")
            result = wrk(
                srv.url + "/upgradeModel",
                script,
                seconds=s.duration,
                connections=s.connections,
                cpus=client_cpus,
            )
    except RuntimeError as e:
        return {"skipped": f"the bridge did not run: {str(e)[-500:]}"}
    return {"wrk": result, "answers": dict(codes), "note": "every request at the newest release"}


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    d = r["decide"]["wrk"]
    bad = r["bad_requests"]
    good = bad["good"]
    calm = good["error_total"] == 0 and good["p99_ms"] <= 2 * max(bad["baseline_p99_ms"], 1.0)
    answered = all(k["sent"] > 0 and k["as_expected"] == k["sent"] for k in bad["bad"].values())
    return [
        {
            "goal": f">= {GOAL_RPS} decisions/s with p99 <= {GOAL_P99_MS:g} ms (wrk)",
            "met": d["rps"] >= GOAL_RPS and d["p99_ms"] <= GOAL_P99_MS and d["error_total"] == 0,
            "figure": f"{d['rps']:.0f}/s, p99 {d['p99_ms']:.1f} ms, {d['error_total']} errors",
        },
        {
            "goal": f"memory flat over the soak (< {FLAT_GROWTH:.0%} growth in its second half)",
            "met": r["soak"]["flat"],
            "figure": (
                f"{r['soak']['rss_start_kib'] / 1024:.1f} -> {r['soak']['rss_end_kib'] / 1024:.1f}"
                f" MiB over {r['soak']['seconds']:.0f} s, second half "
                f"{r['soak']['growth_second_half']:+.1%}"
            ),
        },
        {
            "goal": "bad requests: good traffic without errors, p99 within 2x its own alone",
            "met": calm,
            "figure": (
                f"{good['error_total']} errors, p99 {good['p99_ms']:.1f} ms "
                f"(alone {bad['baseline_p99_ms']:.1f} ms)"
            ),
        },
        {
            "goal": "bad requests: each its 4xx with a JSON error",
            "met": answered,
            "figure": ", ".join(
                f"{k} {v['as_expected']}/{v['sent']}" for k, v in bad["bad"].items()
            ),
        },
    ]


_PARTS = {
    # cumulative times, by (file name, function); they overlap as noted
    "HTTP in: uvicorn + h11 parse a request, start its task": ("h11_impl.py", "handle_events"),
    "HTTP out: uvicorn + h11 write an answer": ("h11_impl.py", "send"),
    "the app reads the body (ASGI receive)": ("app.py", "_body"),
    "/v1/decide handler, all of it": ("app.py", "_decide"),
    "  of which parse_request (JSON in, checks)": ("request.py", "parse_request"),
    "  of which answer() (decision and its document)": ("decision.py", "answer"),
    "    of which decide() (the rules)": ("decide.py", "decide"),
    "  of which json_response (JSON out)": ("app.py", "json_response"),
}


def profile_summary(path: Path) -> dict[str, Any]:
    """The share of the server's busy time (all but waiting in epoll) in each part."""
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    cumulative: Counter[str] = Counter()
    for (file, _, function), entry in stats.items():
        if function == "_run_once" and file.endswith("base_events.py"):
            cumulative["loop"] += entry[3]
        if function == "select" and file.endswith("selectors.py"):
            cumulative["idle"] += entry[3]
        for name, (suffix, fn) in _PARTS.items():
            if function == fn and file.endswith(suffix):
                cumulative[name] += entry[3]
    busy = cumulative["loop"] - cumulative["idle"]
    return {
        "busy_seconds": round(busy, 2),
        "share_of_busy_time": {n: round(cumulative[n] / busy, 4) for n in _PARTS},
    }


def show(r: dict[str, Any]) -> None:
    m = r["machine"]
    print(
        f"{r['repository']['tags']} tags x {r['repository']['releases_per_tag']} releases; "
        f"server on CPU {m['server_cpus']}, clients on CPU {m['client_cpus']} "
        f"of {m['cpus']}; {r['server']['processes']}; {m['wrk']}"
    )
    before, after = m["load_average_before"][0], m["load_average_after"][0]
    print(f"load average (1 min) before {before:.2f}, after {after:.2f}: others' work shares")

    def line(name: str, x: dict[str, Any]) -> None:
        errors = x["error_total"]
        print(
            f"  {name:34} {x['rps']:>9,.0f}/s  p50 {x['p50_ms']:6.2f} ms  p99 {x['p99_ms']:6.2f}"
            f" ms  errors {errors}  non-2xx {x['non_2xx']}  (c={x['connections']})"
        )

    line("POST /v1/decide (wrk)", r["decide"]["wrk"])
    line("POST /v1/decide (hey, one body)", r["decide"]["hey"])
    line("GET /healthz (wrk, same server)", r["reference"]["healthz"])
    line("nginx static file (wrk)", r["reference"]["nginx_static"])
    u = r["upgradeModel"]
    if "wrk" in u:
        line("POST /upgradeModel (wrk)", u["wrk"])
    else:
        print(f"  POST /upgradeModel: skipped ({u['skipped']})")
    d, h, n = r["decide"]["wrk"], r["reference"]["healthz"], r["reference"]["nginx_static"]
    print(
        f"  ratios: decide/healthz {d['rps'] / h['rps']:.2f}, "
        f"decide/nginx {d['rps'] / n['rps']:.3f}"
    )
    sk = r["soak"]
    print(
        f"soak {sk['seconds']:.0f} s, {sk['requests']:,} requests, {sk['errors']} errors: RSS "
        f"{sk['rss_start_kib']:,} -> {sk['rss_end_kib']:,} KiB, second half "
        f"{sk['growth_second_half']:+.2%}, slope {sk['slope_kib_per_min']:+.1f} KiB/min"
    )
    print(
        f"  its {len(sk['slices'])} slices: {sk['slice_rps_min']:,.0f} to median "
        f"{sk['slice_rps_median']:,.0f} decisions/s, p99 median {sk['slice_p99_ms_median']:.1f}"
        f" ms, worst {sk['slice_p99_ms_max']:.1f} ms"
    )
    b = r["bad_requests"]
    print("bad requests under load:")
    line("  good traffic meanwhile (wrk)", b["good"])
    for kind, t in b["bad"].items():
        print(f"    {kind:38} {t['as_expected']}/{t['sent']} got {t['expect']}  {t['wrong'][:1]}")
    for g in r["goals"]:
        print(f"[{'met' if g['met'] else 'MISSED'}] {g['goal']}: {g['figure']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--bodies", type=int, default=4096, help="distinct decision requests")
    ap.add_argument("--duration", type=float, default=20, help="seconds per measurement")
    ap.add_argument("--connections", type=int, default=10, help="in flight (wrk -c, hey -c)")
    ap.add_argument("--soak", type=float, default=60, help="seconds (the issue's: 600)")
    ap.add_argument("--slice", type=float, default=10, help="seconds between RSS samples")
    ap.add_argument("--rounds", type=int, default=3, help="each figure is the median of these")
    ap.add_argument("--slow-clients", type=int, default=50)
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument(
        "--profile", type=Path, help="run the server under cProfile; its stats go here (slower)"
    )
    ap.add_argument("--smoke", action="store_true", help="tiny and short: the test's run")
    args = ap.parse_args()
    s = Settings(
        tags=args.tags,
        releases=args.releases,
        bodies=args.bodies,
        duration=args.duration,
        connections=args.connections,
        soak=args.soak,
        slice=args.slice,
        slow_clients=args.slow_clients,
        rounds=args.rounds,
        profile=args.profile,
    )
    if args.smoke:
        s = dataclasses.replace(
            s,
            tags=3,
            releases=10,
            bodies=64,
            duration=1,
            connections=4,
            soak=3,
            slice=1,
            slow_clients=5,
            rounds=1,
        )
    with tempfile.TemporaryDirectory(prefix="aoe-bench-serve-") as tmp:
        report = run(s, Path(tmp))
    show(report)
    if args.profile is not None:
        report["profile"] = profile_summary(args.profile)
        print("where the server's busy time went (cProfile, cumulative):")
        for name, share in report["profile"]["share_of_busy_time"].items():
            print(f"  {name:52} {share:6.1%}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
