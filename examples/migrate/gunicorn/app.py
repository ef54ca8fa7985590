"""A WSGI app, unchanged by the move to sockherd: what changes is only the
gunicorn command line (no --bind; see docs/migrating.md):

    sockherd -l 127.0.0.1:8080 -w 4 --ready notify -- \
        gunicorn --workers 1 --preload --chdir examples/migrate/gunicorn app:app

"/slow" answers after one second, to watch a graceful stop finish it.
"""
import os
import time


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(1)
    body = "hello from pid {} slot {} generation {}\n".format(
        os.getpid(), os.environ.get("SOCKHERD_SLOT", "-"),
        os.environ.get("SOCKHERD_GENERATION", "-")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
