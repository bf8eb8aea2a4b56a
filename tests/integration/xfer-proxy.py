#!/usr/bin/env python3
# xfer-proxy.py MODE LISTEN_PORT TARGET_PORT [ARG] — a man in the middle of a --page-server
# transfer on 127.0.0.1, run as an unprivileged user by attacks-xfer.bats. It listens for the
# sender (ferry checkpoint instance --page-server 127.0.0.1:LISTEN_PORT), connects to the
# receiver (ferry instance start --page-server TARGET_PORT) and:
#   inject FILE   relays the handshake (receiver hello 36 bytes, sender proof 72, receiver
#                 proof 36), then writes FILE's bytes to the receiver in place of the sender's
#   tamper N      relays everything, with the N-th byte after the handshake from the sender
#                 flipped
#   observe FILE  relays everything and appends every byte it sees, both ways, to FILE
# Prints "listening" once it listens; exits when both sides have closed.
import os
import socket
import sys
import threading

mode, lport, tport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
arg = sys.argv[4] if len(sys.argv) > 4 else None
HANDSHAKE = (36, 72, 36)

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(1)
print("listening", flush=True)
snd, _ = ls.accept()
rcv = socket.create_connection(("127.0.0.1", tport))
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


def pump(src, dst, flip_at=None):
    seen = 0
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            if flip_at is not None and seen <= flip_at < seen + len(b):
                i = flip_at - seen
                b = b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]
            seen += len(b)
            record(b)
            dst.sendall(b)
    except OSError:
        pass
    for s in (dst,):
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# the handshake, as it comes
h = read_exact(rcv, HANDSHAKE[0]); record(h); snd.sendall(h)
h = read_exact(snd, HANDSHAKE[1]); record(h); rcv.sendall(h)
h = read_exact(rcv, HANDSHAKE[2]); record(h); snd.sendall(h)

if mode == "inject":
    with open(arg, "rb") as f:
        rcv.sendall(f.read())
    rcv.shutdown(socket.SHUT_WR)
    try:
        while rcv.recv(65536):
            pass
    except OSError:
        pass
    snd.close()
    sys.exit(0)

flip = int(arg) if mode == "tamper" else None
t = threading.Thread(target=pump, args=(rcv, snd))
t.start()
pump(snd, rcv, flip)
t.join()
