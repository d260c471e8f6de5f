#!/usr/bin/env python3
"""Hostile load for scripts/bench.sh --load: against one registry, holds
CONNS connections at once (half slowloris, a quarter idle keep-alive, a
quarter pulling a blob in a loop) and meanwhile measures what a fresh
client sees: GET /v2/ on a new connection every 100 ms, and one pull of a
large blob with curl. Connections the server closes are reopened, as an
attacker would. Loopback only; stops by itself after DURATION seconds.

usage: hostile_load.py BASE_URL BLOB_PATH BIG_BLOB_PATH BIG_BYTES [CONNS] [DURATION]
Prints one line of key=value figures.
"""
import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import time
from urllib.parse import urlparse


async def open_conn(host, port):
    return await asyncio.wait_for(asyncio.open_connection(host, port), 10)


async def reopening(session, stop, stats, key):
    """Runs session() again each time it ends (the server closed the
    connection) or fails, counting the reopenings in stats[key]."""
    while not stop.is_set():
        try:
            await session()
        except Exception:
            await asyncio.sleep(0.5)
        stats[key] += 1


async def slowloris(host, port, stop, stats):
    async def session():
        r, w = await open_conn(host, port)
        w.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        await w.drain()
        while not stop.is_set() and not r.at_eof():
            await asyncio.sleep(5)
            w.write(b"X-Slow: 1\r\n")
            await w.drain()
        w.close()
    await reopening(session, stop, stats, "slow_reopened")


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await r.readexactly(length)
    return int(head[9:12])


async def idle(host, port, stop, stats):
    async def session():
        r, w = await open_conn(host, port)
        w.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(r)
        while not stop.is_set() and not r.at_eof():
            await asyncio.sleep(1)
            # A keep-alive client that notices the close reconnects.
            try:
                await asyncio.wait_for(r.read(1), 0.01)
            except asyncio.TimeoutError:
                pass
        w.close()
    await reopening(session, stop, stats, "idle_reopened")


async def puller(host, port, path, stop, stats):
    req = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    while not stop.is_set():
        try:
            r, w = await open_conn(host, port)
            while not stop.is_set():
                w.write(req)
                status = await read_response(r)
                stats["pulls"] += 1
                if status != 200:
                    stats["pull_errors"] += 1
            w.close()
        except Exception:
            stats["pull_errors"] += 1
            await asyncio.sleep(0.2)


def prober(host, port, seconds, queue):
    """Runs in its own process, so the load's event loop does not delay it:
    a new connection and GET /v2/ every 100 ms; latencies in ms (inf for a
    failure) go to the queue at the end."""
    import socket
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            s.close()
            lat.append((time.monotonic() - t0) * 1000 if data[9:12] == b"200" else float("inf"))
        except Exception:
            lat.append(float("inf"))
        time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
    queue.put(lat)


def big_pull(url, nbytes, out):
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", url],
                       capture_output=True, text=True, timeout=120)
    secs = time.monotonic() - t0
    out["big_mbps"] = nbytes / secs / 1e6 if p.stdout.strip() == str(nbytes) else 0


async def main():
    base, blob, big, big_bytes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    conns = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    duration = float(sys.argv[6]) if len(sys.argv) > 6 else 30
    u = urlparse(base)
    host, port = u.hostname, u.port
    stop = asyncio.Event()
    stats = {"slow_reopened": 0, "idle_reopened": 0, "pulls": 0, "pull_errors": 0}
    tasks = []
    for _ in range(conns // 2):
        tasks.append(asyncio.create_task(slowloris(host, port, stop, stats)))
    for _ in range(conns // 4):
        tasks.append(asyncio.create_task(idle(host, port, stop, stats)))
    for _ in range(conns - conns // 2 - conns // 4):
        tasks.append(asyncio.create_task(puller(host, port, blob, stop, stats)))
    await asyncio.sleep(3)  # all connected
    queue = multiprocessing.Queue()
    probe = multiprocessing.Process(target=prober, args=(host, port, duration, queue))
    probe.start()
    out = {}
    start = time.monotonic()
    await asyncio.sleep(duration / 3)
    await asyncio.get_running_loop().run_in_executor(None, big_pull, base + big, big_bytes, out)
    await asyncio.sleep(max(0, duration - (time.monotonic() - start)))
    lat = await asyncio.get_running_loop().run_in_executor(None, queue.get)
    probe.join()
    stop.set()
    await asyncio.sleep(0.5)
    for t in tasks:
        t.cancel()
    ok = [x for x in lat if x != float("inf")]
    q = statistics.quantiles(ok, n=100) if len(ok) >= 2 else [float("nan")] * 99
    print(f"probes={len(lat)} failed={len(lat) - len(ok)} p50_ms={q[49]:.1f} p99_ms={q[98]:.1f} "
          f"max_ms={max(ok) if ok else float('nan'):.1f} big_pull_mbps={out.get('big_mbps', 0):.0f} "
          f"pulls={stats['pulls']} pull_errors={stats['pull_errors']} "
          f"slowloris_reopened={stats['slow_reopened']} idle_reopened={stats['idle_reopened']}")


if __name__ == "__main__":
    asyncio.run(main())
