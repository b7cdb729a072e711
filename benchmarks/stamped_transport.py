"""The kernel-timestamped transport (stub_upstream.stamped) against uvloop's own.

Two parts, both printed in one run (docs/timestamps.md quotes them):

1. **Transport cost** - a minimal HTTP responder (answers each GET with 13
   bytes) on one process pinned to CPU 1, behind uvloop's native TCP transport,
   the stamped transport (kernel stamps) and the stamped transport in "user"
   mode; wrk (-t1 -c50, CPU 0) drives it in alternating rounds. Server CPU per
   request (one read + one write) comes from /proc/<pid>/stat, so the difference
   between the rows is what the layer costs per read.
2. **Stamp probes** (one process, plain sockets, loopback TCP): how far kernel
   stamps are from the send while the reader sleeps 5 ms before every read
   (the user-space read time is shown beside); what a read costs with each
   option (recv, recvmsg + SO_TIMESTAMPNS, recvmsg + SO_TIMESTAMPING) and read
   size; and whether software TX stamps (SOF_TIMESTAMPING_TX_SOFTWARE, error
   queue) tell more than stamping around send().

    .venv/bin/python benchmarks/stamped_transport.py            # ~50 s
    .venv/bin/python benchmarks/stamped_transport.py --part probes
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
SERVER_CPU, LOAD_CPU = 1, 0
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\ncontent-type: text/plain\r\n\r\nHello, World!"

SO_TIMESTAMPNS, SO_TIMESTAMPING = 35, 37
SOF_TX_SOFTWARE, SOF_RX_SOFTWARE, SOF_SOFTWARE = 2, 8, 16
SOF_OPT_ID, SOF_OPT_TSONLY = 128, 2048
REALTIME = time.CLOCK_REALTIME


# ------------------------------------------------------------ part 1: cost


def serve(kind: str, port: int) -> None:
    import asyncio

    import uvloop

    from stub_upstream import stamped

    class Hello(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            if data.endswith(b"\r\n\r\n"):
                self.transport.write(RESPONSE)

        def stamped_data_received(self, data: bytes, t_ns: int) -> None:
            if data.endswith(b"\r\n\r\n"):
                self.transport.write(RESPONSE)

    async def main() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        sock.setblocking(False)
        if kind == "uvloop":
            # create_server needs a protocol without the stamped method to be fair
            await asyncio.get_running_loop().create_server(Hello, sock=sock)
        else:
            stamped.serve(sock, Hello, force_user=kind == "stamped-user")
        await asyncio.Event().wait()

    uvloop.run(main())


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not come up")


def wrk(port: int, seconds: int) -> int:
    argv = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", "-c50", f"-d{seconds}s",
            f"http://127.0.0.1:{port}/"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    return int(m.group(1))


def part_cost(rounds: int, seconds: int) -> None:
    kinds = ("uvloop", "stamped-kernel", "stamped-user")
    us: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(rounds):
        for kind in kinds:
            port = free_port()
            argv = ["taskset", "-c", str(SERVER_CPU), PY, __file__, "--serve", kind, str(port)]
            proc = subprocess.Popen(argv, cwd=ROOT)
            try:
                wait_up(port)
                wrk(port, 1)  # warm-up
                c0 = cpu_s(proc.pid)
                n = wrk(port, seconds)
                us[kind].append((cpu_s(proc.pid) - c0) / n * 1e6)
            finally:
                proc.terminate()
                proc.wait(10)
            print(f"round {r + 1} {kind:15s} {us[kind][-1]:6.2f} server CPU us/request", flush=True)
    med = {k: statistics.median(v) for k, v in us.items()}
    print(f"\nmedians of {rounds} rounds x {seconds} s (one read + one write per request):")
    for k in kinds:
        print(f"  {k:15s} {med[k]:6.2f} us/request   {med[k] - med['uvloop']:+5.2f} vs uvloop")


# ---------------------------------------------------------- part 2: probes


def tcp_pair(option: int | None, value: int = 1) -> tuple[socket.socket, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    if option is not None:
        listener.setsockopt(socket.SOL_SOCKET, option, value)
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server, _ = listener.accept()
    listener.close()
    return client, server


def stamp_ns(anc: list[tuple[int, int, bytes]]) -> int:
    for _level, kind, data in anc:
        if kind in (SO_TIMESTAMPNS, SO_TIMESTAMPING):
            sec, nsec = struct.unpack_from("@ll", data)
            return int(sec) * 1_000_000_000 + int(nsec)
    return 0


def q(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"min {xs[0]:.2f}  p50 {xs[len(xs) // 2]:.2f}  p99 {xs[int(len(xs) * 0.99)]:.2f}"
            f"  max {xs[-1]:.2f}")  # fmt: skip


def probe_accuracy(n: int = 200) -> None:
    print("\nstamp minus send, receiver sleeping 5 ms before each read (us):")
    for name, opt, val in (
        ("SO_TIMESTAMPNS", SO_TIMESTAMPNS, 1),
        ("SO_TIMESTAMPING", SO_TIMESTAMPING, SOF_RX_SOFTWARE | SOF_SOFTWARE),
    ):
        client, server = tcp_pair(opt, val)
        inherited = server.getsockopt(socket.SOL_SOCKET, opt)
        stamp, read = [], []
        unstamped = 0
        for _ in range(n):
            t0 = time.clock_gettime_ns(REALTIME)
            client.send(b"x" * 100)
            time.sleep(0.005)
            t_read = time.clock_gettime_ns(REALTIME)
            _, anc, _, _ = server.recvmsg(4096, 256)
            ts = stamp_ns(anc)
            if not ts:
                unstamped += 1  # the kernel had not switched stamping on yet
                continue
            stamp.append((ts - t0) / 1e3)
            read.append((t_read - t0) / 1e3)
        print(f"  {name:16s} kernel stamp: {q(stamp)}   ({unstamped} reads of {n} unstamped)")
        print(f"  {'':16s} user read:    {q(read)}   (accepted socket inherits: {inherited})")
        client.close()
        server.close()


def probe_read_cost(n: int = 20000) -> None:
    print("\nper-read cost, 64-byte messages, non-blocking (us, best of 3):")
    cases = (
        ("recv(64 KiB), no option", None, 0, False, 65536),
        ("recvmsg(64 KiB) + SO_TIMESTAMPNS", SO_TIMESTAMPNS, 1, True, 65536),
        ("recvmsg(64 KiB) + SO_TIMESTAMPING", SO_TIMESTAMPING, SOF_RX_SOFTWARE | SOF_SOFTWARE, True,
         65536),
        ("recvmsg(256 KiB) + SO_TIMESTAMPNS", SO_TIMESTAMPNS, 1, True, 262144),
    )  # fmt: skip
    for name, opt, val, msg, size in cases:
        best = float("inf")
        for _ in range(3):
            client, server = tcp_pair(opt, val)
            server.setblocking(False)
            total = 0
            for _ in range(n):
                client.send(b"y" * 64)
                t0 = time.perf_counter_ns()
                if msg:
                    server.recvmsg(size, 64)
                else:
                    server.recv(size)
                total += time.perf_counter_ns() - t0
            client.close()
            server.close()
            best = min(best, total / n / 1e3)
        print(f"  {name:36s} {best:.2f}")


def probe_tx(n: int = 2000) -> None:
    print("\nTX software stamp vs stamps around send() (us):")
    client, server = tcp_pair(None)
    flags = SOF_TX_SOFTWARE | SOF_SOFTWARE | SOF_OPT_ID | SOF_OPT_TSONLY
    server.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, flags)
    before, after, errq, send_on = [], [], [], []
    for _ in range(n):
        t0 = time.clock_gettime_ns(REALTIME)
        p0 = time.perf_counter_ns()
        server.send(b"q" * 500)
        p1 = time.perf_counter_ns()
        t1 = time.clock_gettime_ns(REALTIME)
        send_on.append((p1 - p0) / 1e3)
        client.recv(4096)
        p2 = time.perf_counter_ns()
        try:
            _, anc, _, _ = server.recvmsg(0, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        errq.append((time.perf_counter_ns() - p2) / 1e3)
        tx = stamp_ns(anc)
        before.append((tx - t0) / 1e3)
        after.append((tx - t1) / 1e3)
    print(f"  TX stamp - stamp before send: {q(before)}")
    print(f"  TX stamp - stamp after send:  {q(after)}")
    print(f"  error-queue read per write:   {q(errq)}")
    print(f"  send() with TX stamps on:     {q(send_on)}")
    client.close()
    server.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--part", choices=("all", "cost", "probes"), default="all")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=2, help="seconds per wrk round")
    p.add_argument("--serve", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        serve(a.serve[0], int(a.serve[1]))
        return 0
    if a.part in ("all", "cost"):
        if shutil.which("wrk") is None or (os.cpu_count() or 1) < 2:
            print("part 1 needs wrk and 2 CPUs (apt-get install -y wrk)", file=sys.stderr)
            return 2
        part_cost(a.rounds, a.duration)
    if a.part in ("all", "probes"):
        probe_accuracy()
        probe_read_cost()
        probe_tx()
    load = os.getloadavg()[0]
    if load > 1.5:
        print(f"\n! load average {load:.1f} on {os.cpu_count()} CPUs: other processes competed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
