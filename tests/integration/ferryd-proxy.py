#!/usr/bin/env python3
# ferryd-proxy.py MODE LISTEN_HOST:PORT TARGET_HOST:PORT ARG — a man in the middle of the TCP
# connection from one ferryd to its peer (attacks-ferryd.bats: the source's --peer names the
# proxy, in the source's network namespace). It takes one connection, connects to the target,
# relays the peer handshake as it comes (server hello 36 bytes, client proof 72, server proof
# 36), then:
#   observe FILE  relays everything, and appends every byte it sees after the handshake, both
#                 ways, to FILE
#   tamper K      relays everything, with the K-th last byte of the client's first write after
#                 the handshake flipped (the source's first message: one write, then it waits
#                 for the answer, so it comes in one piece)
# Prints "listening" once it listens; exits when both sides have closed.
import socket
import sys
import threading

mode, listen, target, arg = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
HANDSHAKE = (36, 72, 36)


def addr(spec):
    host, port = spec.rsplit(":", 1)
    return host, int(port)


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


def pump(src, dst, flip_from_end=None):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if flip_from_end is not None and flip_from_end <= len(b):
                i = len(b) - flip_from_end
                b = b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]
                flip_from_end = None
            record(b)
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


h = read_exact(srv, HANDSHAKE[0]); cli.sendall(h)
h = read_exact(cli, HANDSHAKE[1]); srv.sendall(h)
h = read_exact(srv, HANDSHAKE[2]); cli.sendall(h)

t = threading.Thread(target=pump, args=(srv, cli))
t.start()
pump(cli, srv, int(arg) if mode == "tamper" else None)
t.join()
