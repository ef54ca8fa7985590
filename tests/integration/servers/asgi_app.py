"""A minimal ASGI application for uvicorn (tests/integration/test_real_servers.py).
Stock behaviour only: no draining logic of its own."""
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"hello from pid {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
