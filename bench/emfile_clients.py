"""A storm of TCP clients from one process, for a server short of file descriptors.

Usage: python3 -u emfile_clients.py HOST PORT [--clients 200] [--expect echo|TEXT]
       [--hold 0.3] [--deadline 20] [--deny-every K --deny-from 127.0.0.2]

Prints {"ready": true} once started, then opens every connection at once (non-blocking). Each
client sends its own line, reads the answer (its line echoed back with --expect echo, else TEXT;
an empty TEXT expects nothing), holds the connection --hold seconds (so that the server holds a
descriptor for it meanwhile), half-closes, and reads to the server's FIN. It ends `served` when
it got exactly what it expected, `wrong` when not, the errno name (ECONNRESET, ECONNREFUSED...)
when the connection failed, or `timeout:STATE` when --deadline passed first. Every K-th client
binds --deny-from first (a peer the server is told to refuse). Once all are done, one more
client (from the default address) checks that the server still serves. The last line is JSON:
{"counts": {OUTCOME: N}, "after": OUTCOME, "seconds": S}.
"""

import argparse
import errno
import json
import selectors
import socket
import time

parser = argparse.ArgumentParser()
parser.add_argument("host")
parser.add_argument("port", type=int)
parser.add_argument("--clients", type=int, default=200)
parser.add_argument("--expect", default="echo")
parser.add_argument("--hold", type=float, default=0.3)
parser.add_argument("--deadline", type=float, default=20.0)
parser.add_argument("--deny-every", type=int, default=0)
parser.add_argument("--deny-from", default="127.0.0.2")
args = parser.parse_args()

selector = selectors.DefaultSelector()
family = socket.AF_INET6 if ":" in args.host else socket.AF_INET


def error_name(number):
    return errno.errorcode.get(number, str(number))


class Client:
    def __init__(self, index, source=None):
        self.payload = ("client %d " % index).encode() * 8 + b"\n"
        self.expect = self.payload if args.expect == "echo" else args.expect.encode()
        self.got = b""
        self.state = "connecting"
        self.outcome = None
        self.hold_until = 0.0
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        if source is not None:
            self.sock.bind((source, 0))
        self.sock.connect_ex((args.host, args.port))
        selector.register(self.sock, selectors.EVENT_WRITE, self)

    def finish(self, outcome):
        self.outcome = outcome
        self.state = "done"
        try:
            selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()

    def hold(self):
        self.state = "holding"
        self.hold_until = time.monotonic() + args.hold
        selector.unregister(self.sock)

    def on_ready(self):
        try:
            if self.state == "connecting":
                failed = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if failed:
                    return self.finish(error_name(failed))
                self.sock.sendall(self.payload)
                if not self.expect:
                    return self.hold()
                self.state = "answer"
                selector.modify(self.sock, selectors.EVENT_READ, self)
                return None
            data = self.sock.recv(65536)
            if data:
                self.got += data
                if self.state == "answer" and len(self.got) >= len(self.expect):
                    self.hold()
                return None
            if self.state == "answer":
                # The server ended the stream before the whole answer: still hold, then check.
                return self.hold()
            return self.finish("served" if self.got == self.expect else "wrong")
        except OSError as error:
            return self.finish(error_name(error.errno))

    def tick(self, now):
        if self.state != "holding" or now < self.hold_until:
            return
        self.state = "closing"
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            return self.finish(error_name(error.errno))
        selector.register(self.sock, selectors.EVENT_READ, self)
        return None


def drive(clients, limit):
    while any(c.state != "done" for c in clients) and time.monotonic() < limit:
        for key, _ in selector.select(0.02):
            key.data.on_ready()
        now = time.monotonic()
        for client in clients:
            client.tick(now)
    for client in clients:
        if client.state != "done":
            client.finish("timeout:" + client.state)


print(json.dumps({"ready": True}), flush=True)
start = time.monotonic()
storm = [
    Client(i, args.deny_from if args.deny_every and i % args.deny_every == 0 else None)
    for i in range(args.clients)
]
drive(storm, start + args.deadline)
seconds = time.monotonic() - start
after = Client(args.clients)
drive([after], time.monotonic() + 10)
counts = {}
for client in storm:
    counts[client.outcome] = counts.get(client.outcome, 0) + 1
print(json.dumps({"counts": counts, "after": after.outcome, "seconds": round(seconds, 3)}),
      flush=True)
