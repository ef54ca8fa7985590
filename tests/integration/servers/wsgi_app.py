"""A minimal WSGI application for gunicorn (tests/integration/test_real_servers.py).
Stock behaviour only: no draining logic of its own."""
import os


def app(environ, start_response):
    body = f"hello from pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
