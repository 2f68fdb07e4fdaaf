#!/usr/bin/env python3
"""Shared pieces of bench/scale/run: configuration files, idle connections, log and /proc readings.

Standard library only; every subcommand prints its result on stdout.
"""
import argparse
import asyncio
import os
import re
import socket
import sys
import time


def free_ports(count):
    """Ports free on 127.0.0.1 now (bound together so they are distinct)."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def dynamic_config(routers, upstream):
    """`routers` routers Host(`svc-N.example.com`), each with its own service, all pointing
    at `upstream`."""
    lines = ["http:", "  routers:"]
    for n in range(routers):
        lines.append(f"    router-{n}:")
        lines.append(f"      rule: \"Host(`svc-{n}.example.com`)\"")
        lines.append(f"      service: svc-{n}")
    lines.append("  services:")
    for n in range(routers):
        lines.append(f"    svc-{n}:")
        lines.append("      loadBalancer:")
        lines.append(f"        servers: [{{url: \"http://{upstream}\"}}]")
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    """Rename into place, so a watcher never reads half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


async def hold_connections(port, count, host, ready_file, hold_seconds):
    """Open `count` keep-alive connections, send one request on each, then keep them idle."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    conns = []
    failed = 0
    batch = 500
    for start in range(0, count, batch):
        tasks = [asyncio.open_connection("127.0.0.1", port) for _ in range(min(batch, count - start))]
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                failed += 1
            else:
                conns.append(result)
    connected = len(conns)
    with open(ready_file + ".connected", "w") as f:
        f.write(f"{connected}\n")
    # Let the caller read RSS with connections open but silent.
    await asyncio.sleep(2)

    async def one_request(reader, writer):
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if length:
            await reader.readexactly(int(length.group(1)))
        return True

    answered = 0
    for start in range(0, connected, batch):
        chunk = conns[start:start + batch]
        results = await asyncio.gather(*(one_request(r, w) for r, w in chunk), return_exceptions=True)
        answered += sum(1 for r in results if r is True)
    with open(ready_file, "w") as f:
        f.write(f"{connected} {answered} {failed}\n")
    await asyncio.sleep(hold_seconds)
    for _, writer in conns:
        writer.close()


def elapsed_ms(log_path, nth):
    """The `elapsed` of the nth `configuration applied` log line, in milliseconds."""
    units = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}
    found = 0
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = ansi.sub("", line)
            if "configuration applied" not in line:
                continue
            found += 1
            if found == nth:
                m = re.search(r"elapsed=([0-9.]+)(ns|µs|us|ms|s)\b", line)
                if m:
                    return float(m.group(1)) * units[m.group(2)]
    return None


def wait_for_applied(log_path, nth, timeout):
    """Seconds until the nth `configuration applied` line shows up, or exit 1 on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                if f.read().count("configuration applied") >= nth:
                    return time.monotonic() - started
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    return None


def swap(routers, upstream, out, log_path, nth, timeout):
    """Rewrite the dynamic file, then milliseconds until the proxy logs the nth applied
    configuration: file watch, read, parse, merge, compile and swap."""
    text = dynamic_config(routers, upstream)
    started = time.monotonic()
    write_atomically(out, text)
    seconds = wait_for_applied(log_path, nth, timeout)
    return None if seconds is None else time.monotonic() - started


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("count", type=int)
    p = sub.add_parser("config")
    p.add_argument("routers", type=int)
    p.add_argument("upstream")
    p.add_argument("out")
    p = sub.add_parser("hold")
    p.add_argument("port", type=int)
    p.add_argument("count", type=int)
    p.add_argument("host")
    p.add_argument("ready_file")
    p.add_argument("--hold-seconds", type=float, default=60)
    p = sub.add_parser("elapsed")
    p.add_argument("log")
    p.add_argument("nth", type=int)
    p = sub.add_parser("wait-applied")
    p.add_argument("log")
    p.add_argument("nth", type=int)
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("swap")
    p.add_argument("routers", type=int)
    p.add_argument("upstream")
    p.add_argument("out")
    p.add_argument("log")
    p.add_argument("nth", type=int)
    p.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    if args.cmd == "ports":
        print(" ".join(str(p) for p in free_ports(args.count)))
    elif args.cmd == "config":
        write_atomically(args.out, dynamic_config(args.routers, args.upstream))
    elif args.cmd == "hold":
        asyncio.run(hold_connections(args.port, args.count, args.host, args.ready_file, args.hold_seconds))
    elif args.cmd == "elapsed":
        ms = elapsed_ms(args.log, args.nth)
        if ms is None:
            sys.exit(1)
        print(f"{ms:.2f}")
    elif args.cmd == "wait-applied":
        seconds = wait_for_applied(args.log, args.nth, args.timeout)
        if seconds is None:
            sys.exit(1)
        print(f"{seconds * 1000:.1f}")
    elif args.cmd == "swap":
        seconds = swap(args.routers, args.upstream, args.out, args.log, args.nth, args.timeout)
        if seconds is None:
            sys.exit(1)
        print(f"{seconds * 1000:.1f}")


if __name__ == "__main__":
    main()
