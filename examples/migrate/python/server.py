#!/usr/bin/env python3
"""A plain-Python HTTP server (standard library only) as a sockherd worker.

Before, it did `ThreadingHTTPServer(("127.0.0.1", 8080), Handler)`, which
binds the port itself. Now the socket comes from sockherd at fd 3:

    sockherd -l 127.0.0.1:8080 -w 4 --ready notify -- python3 examples/migrate/python/server.py

- the listening socket is fd 3 (LISTEN_FDS=1, LISTEN_PID=our pid);
- READY=1 goes to NOTIFY_SOCKET once the server is set up;
- SIGTERM stops accepting, lets requests in flight finish, and exits 0.

"/slow" answers after one second, to watch a graceful stop finish it.
"""
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SLOT = os.environ.get("SOCKHERD_SLOT", "-")
GENERATION = os.environ.get("SOCKHERD_GENERATION", "-")


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 (the default): one request per connection, so no idle
    # keep-alive connection can hold up a graceful stop.
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1)
        body = f"hello from pid {os.getpid()} slot {SLOT} generation {GENERATION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight
    block_on_close = True


def inherited_socket():
    """The socket activation protocol: fd 3, meant for us if LISTEN_PID is our pid."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        sys.exit("no listening socket passed (LISTEN_FDS/LISTEN_PID); run me under sockherd")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our child processes
    sock = socket.socket(fileno=3)  # family and type are read from the fd
    # Every worker polls the same socket and only one wins each connection:
    # the losers must get EAGAIN from accept(), not block in it.
    sock.setblocking(False)
    return sock


def notify(state):
    """sd_notify() in four lines: one datagram to NOTIFY_SOCKET."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if addr:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(state.encode(), "\0" + addr[1:] if addr[0] == "@" else addr)


def main():
    server = Server(("", 0), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = inherited_socket()
    server.server_address = server.socket.getsockname()

    # shutdown() waits for serve_forever() to return, so it must run in
    # another thread than the one serving.
    def on_term(signum, frame):
        threading.Thread(target=server.shutdown).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    notify("READY=1")
    server.serve_forever()
    server.server_close()  # joins the threads still answering
    print(f"pid {os.getpid()} slot {SLOT}: stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
