#!/usr/bin/env python3
# mitm-proxy.py MODE LISTEN TARGET [ARG] — a man in the middle of one TCP connection that opens
# with ferry's handshake (server hello 36 bytes, client proof 72, server proof 36): between two
# ferryd (attacks-ferryd.bats, the source's --peer names the proxy) or between the two ends of a
# --page-server transfer (attacks-xfer.bats, run as an unprivileged user). LISTEN and TARGET are
# HOST:PORT or a PORT on 127.0.0.1. It takes one connection (the client), connects to TARGET (the
# server), relays the handshake as it comes, then:
#   observe FILE  relays everything, and appends every byte it sees, both ways, to FILE
#   tamper N      relays everything, with the N-th byte from the client after the handshake
#                 flipped
#   tamper-last K relays everything, with the K-th last byte of the client's first write after
#                 the handshake flipped (a ferryd's first message: one write, then it waits)
#   inject FILE   writes FILE's bytes to the server in place of the client's
# Prints "listening" once it listens; exits when both sides have closed.
import socket
import sys
import threading

mode, listen, target = sys.argv[1], sys.argv[2], sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else None
HANDSHAKE = (36, 72, 36)


def addr(spec):
    host, _, port = spec.rpartition(":")
    return host or "127.0.0.1", int(port)


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(addr(listen))
ls.listen(1)
print("listening", flush=True)
cli, _ = ls.accept()
srv = socket.create_connection(addr(target))
log = open(arg, "ab") if mode == "observe" else None
lock = threading.Lock()


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def record(b):
    if log:
        with lock:
            log.write(b)
            log.flush()


def flip(b, i):
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]


def pump(src, dst, flip_at=None, flip_last=None):
    seen = 0
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if flip_at is not None and seen <= flip_at < seen + len(b):
                b = flip(b, flip_at - seen)
            if flip_last is not None and seen == 0 and flip_last <= len(b):
                b = flip(b, len(b) - flip_last)
            seen += len(b)
            record(b)
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


# the handshake, as it comes
for i, n in enumerate(HANDSHAKE):
    src, dst = (srv, cli) if i % 2 == 0 else (cli, srv)
    h = read_exact(src, n)
    record(h)
    dst.sendall(h)

if mode == "inject":
    with open(arg, "rb") as f:
        srv.sendall(f.read())
    srv.shutdown(socket.SHUT_WR)
    try:
        while srv.recv(65536):
            pass
    except OSError:
        pass
    cli.close()
    sys.exit(0)

t = threading.Thread(target=pump, args=(srv, cli))
t.start()
pump(cli, srv, int(arg) if mode == "tamper" else None, int(arg) if mode == "tamper-last" else None)
t.join()
