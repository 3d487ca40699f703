"""What the security tests share: a process's peak memory from /proc, and HTTP requests
written by hand, so that a test controls the headers and how much of a body is ever sent."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MiB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def reset_peak(pid: int) -> None:
    """Make the peak the current resident memory (Linux: 5 > clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    body_bytes: int = 0,
    chunked: bool = False,
    timeout: float = 60,
) -> RawResponse:
    """Send a request whose body is one JSON object of `body_bytes` (a long string) from
    another thread, while this one reads the answer; a server that answers without reading
    the body may close the socket before all of it is sent, which is not an error here."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    elif body_bytes:
        head.append(f"Content-Length: {body_bytes}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))

    def pieces() -> Iterator[bytes]:
        head, tail = b'{"pad": "', b'"}'
        filler = max(0, body_bytes - len(head) - len(tail))
        yield head
        while filler > 0:
            yield b"a" * min(filler, MiB)
            filler -= min(filler, MiB)
        yield tail

    def send_body() -> None:
        try:
            for piece in pieces() if body_bytes else ():
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed first

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    data = b""
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
        sender.join(timeout=timeout)
    head_text, _, body = data.partition(b"\r\n\r\n")
    lines = head_text.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1.1 "), f"no HTTP answer: {data[:200]!r}"
    status = int(lines[0].split()[1])
    fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return RawResponse(status, {k.lower(): v for k, v in fields.items()}, body)
