"""Live updates benchmark: signed-in websockets against a real daphne with the Redis layer.

    .venv/bin/python bench/bench_ws.py [--clients 100] [--rate 10] [--seconds 100] [--idle 30]

Starts daphne (config.asgi) on a free port with REDIS_URL (default redis://127.0.0.1:6379/0),
signs in ``--clients`` sockets with real Django sessions, subscribes them to one group,
lets them sit idle for ``--idle`` seconds (idle sockets must stay subscribed), then
publishes ``--rate`` broadcasts a second for ``--seconds`` through the same
``trading.realtime.broadcast.send_now`` the engine uses. Every socket must receive every message, in
sequence; latency is publish-to-receive on the same machine. Exits non-zero when a message
is lost or the p99 is over the target.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
GROUP = "bars.BENCH"
TARGET_P99_MS = 150.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="broadcasts per second")
    parser.add_argument("--seconds", type=float, default=100.0, help="how long to publish")
    parser.add_argument("--idle", type=float, default=30.0, help="idle seconds before publishing")
    parser.add_argument(
        "--dump", default="", help="write (tick, socket, latency ms) samples to this JSON file"
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--layer",
        choices=["configured", "pubsub"],
        default="configured",
        help="the project's channel layer (settings), or channels-redis's pub/sub layer for comparison",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="a migrated database for sessions (default: a fresh SQLite file, migrated here)",
    )
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup_environment(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "DJANGO_IGNORE_DOTENV": "1",
        "LOG_TO_FILE": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(
        {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_IGNORE_DOTENV", "LOG_TO_FILE")}
    )
    os.environ.update({"LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings"})
    if not args.database_url:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True, timeout=300
        )
    return env


def session_cookies(n: int) -> list[str]:
    """``n`` real signed-in sessions of one bench user, as Cookie header values."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(username="bench-ws")
    cookies = []
    for _ in range(n):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        cookies.append(f"sessionid={store.session_key}")
    return cookies


# Starts daphne with the project's settings, optionally swapping the channel layer first
# (the settings read CHANNEL_LAYERS lazily, on the first get_channel_layer()).
LAUNCHER = """
import json, os, sys
import django
from django.conf import settings
layers = os.environ.get("BENCH_CHANNEL_LAYERS")
if layers:
    settings.CHANNEL_LAYERS = json.loads(layers)
from daphne.cli import CommandLineInterface
sys.argv = ["daphne", *sys.argv[1:]]
CommandLineInterface.entrypoint()
"""


def pubsub_layers(redis_url: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": redis_url, "socket_timeout": 30}]},
        }
    }


def start_daphne(env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("daphne did not start: " + process.stderr.read().decode()[-2000:]) from None
            time.sleep(0.2)


class Stats:
    def __init__(self, clients: int):
        self.latencies: list[float] = []
        self.samples: list[tuple[int, int, float]] = []
        self.received = [0] * clients
        self.gaps = 0
        self.subscribed = 0
        self.errors: list[str] = []
        self.all_subscribed = asyncio.Event()
        self.clients = clients
        self.closing = False
        self.listeners: list[asyncio.Task] = []


class MiniWebSocket:
    """A minimal asyncio websocket client (text frames, ping/pong, close) on plain streams.

    autobahn cannot be used here: Django's set-up loads daphne, which pins txaio to Twisted.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, headers: dict[str, str]) -> MiniWebSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        self._send_frame(0x1, text.encode())
        await self.writer.drain()

    def _send_frame(self, opcode: int, data: bytes) -> None:
        mask = os.urandom(4)
        length = len(data)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(header + mask + masked)

    async def receive_text(self) -> str | None:
        """The next text message; None when the server closed the socket."""
        message = b""
        while True:
            first, second = await self.reader.readexactly(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            data = await self.reader.readexactly(length)
            if opcode == 0x8:
                return None
            if opcode == 0x9:
                self._send_frame(0xA, data)
                continue
            if opcode in (0x1, 0x0, 0x2):
                message += data
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        finally:
            self.writer.close()


async def client(port: int, cookie: str, index: int, stats: Stats) -> MiniWebSocket:
    socket_ = await MiniWebSocket.connect(
        "127.0.0.1", port, "/ws/", {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    )
    await socket_.send_text(json.dumps({"type": "subscribe", "groups": [GROUP]}))

    async def listen() -> None:
        last_seq = None
        while True:
            try:
                text = await socket_.receive_text()
            except (asyncio.IncompleteReadError, ConnectionError):
                text = None
            if text is None:
                if not stats.closing:
                    stats.errors.append(f"socket {index} closed by the server")
                return
            now = time.time()
            message = json.loads(text)
            kind = message.get("type")
            if kind == "subscribed":
                stats.subscribed += 1
                if stats.subscribed == stats.clients:
                    stats.all_subscribed.set()
            elif kind == "bench.tick":
                latency = (now - message["payload"]["t"]) * 1000
                stats.latencies.append(latency)
                stats.samples.append((message["payload"]["i"], index, round(latency, 2)))
                stats.received[index] += 1
                seq = message["seq"]
                if last_seq is not None and seq != last_seq + 1:
                    stats.gaps += 1
                last_seq = seq
            elif kind == "error":
                stats.errors.append(message.get("error", ""))

    stats.listeners.append(asyncio.create_task(listen()))
    return socket_


async def connect_all(port: int, cookies: list[str], stats: Stats) -> list[MiniWebSocket]:
    sockets = [await client(port, cookie, i, stats) for i, cookie in enumerate(cookies)]
    await asyncio.wait_for(stats.all_subscribed.wait(), timeout=30)
    return sockets


# The publisher runs in its own process, like the engine: the same send_now path, and no
# competition for the GIL with the 100 sockets being read here.
PUBLISHER = """
import json, os, sys, time
import django
from django.conf import settings
layers = os.environ.get("BENCH_CHANNEL_LAYERS")
django.setup()
if layers:
    settings.CHANNEL_LAYERS = json.loads(layers)
from trading.realtime.broadcast import send_now
group, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
count = int(rate * seconds)
start = time.perf_counter()
for i in range(count):
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    send_now(group, "bench.tick", {"i": i, "t": time.time()})
print(count)
"""


def start_publisher(env: dict[str, str], rate: float, seconds: float) -> subprocess.Popen:
    """Broadcast at ``rate`` per second on a steady clock through the engine's path."""
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, GROUP, str(rate), str(seconds)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def run(args: argparse.Namespace, env: dict[str, str], port: int, cookies: list[str]) -> dict:
    stats = Stats(args.clients)
    began = time.perf_counter()
    sockets = await connect_all(port, cookies, stats)
    connect_seconds = time.perf_counter() - began
    if args.idle:
        print(f"  {args.clients} sockets subscribed in {connect_seconds:.1f} s; idle for {args.idle:g} s")
        await asyncio.sleep(args.idle)
    publisher = start_publisher(env, args.rate, args.seconds)
    while publisher.poll() is None:
        await asyncio.sleep(0.2)
    if publisher.returncode != 0:
        raise SystemExit("publisher failed: " + publisher.stderr.read()[-2000:])
    expected_each = int(args.rate * args.seconds)
    deadline = time.monotonic() + 10  # let the tail arrive
    while min(stats.received) < expected_each and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stats.closing = True
    for socket_ in sockets:
        socket_.close()
    if args.dump:
        Path(args.dump).write_text(json.dumps(stats.samples))
    delivered = sum(stats.received)
    expected = expected_each * args.clients
    return {
        "clients": args.clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "idle": args.idle,
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "gaps": stats.gaps,
        "errors": stats.errors[:5],
        "p50_ms": statistics.median(stats.latencies) if stats.latencies else None,
        "p99_ms": percentile(stats.latencies, 99) if stats.latencies else None,
        "max_ms": max(stats.latencies) if stats.latencies else None,
        "connect_seconds": round(connect_seconds, 2),
    }


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        env = setup_environment(args, Path(tmp))
        import django

        django.setup()
        from django.conf import settings

        backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
        if "redis" not in backend.lower():
            raise SystemExit("the benchmark needs the Redis channel layer (set REDIS_URL)")
        if args.layer == "pubsub":
            layers = pubsub_layers(args.redis_url)
            env["BENCH_CHANNEL_LAYERS"] = json.dumps(layers)
            settings.CHANNEL_LAYERS = layers
        cookies = session_cookies(args.clients)
        port = free_port()
        server = start_daphne(env, port)
        try:
            result = asyncio.run(run(args, env, port, cookies))
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(
        f"live updates: {result['clients']} sockets x {result['rate']:g}/s x {result['seconds']:g} s "
        f"(after {result['idle']:g} s idle), daphne + channels-redis ({args.layer} layer)"
    )
    print(
        f"  delivered {result['delivered']}/{result['expected']} (lost {result['lost']}, "
        f"sequence gaps {result['gaps']})"
    )
    if result["p50_ms"] is not None:
        print(
            f"  latency p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
            f"max {result['max_ms']:.1f} ms (target p99 < {TARGET_P99_MS:g} ms)"
        )
    if result["errors"]:
        print("  errors:", result["errors"])
    ok = result["lost"] == 0 and result["gaps"] == 0 and (result["p99_ms"] or 0) < TARGET_P99_MS
    print("  OK" if ok else "  FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
