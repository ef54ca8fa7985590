/* The manager's HTTP endpoint (http-listen): GET /metrics, the same
 * Prometheus text as `sockherdctl metrics`, and GET /health, the pool's
 * readiness for load balancers (health.c decides it). The transport and
 * its limits are http-server.c; this file answers from the manager's
 * state, and binds the socket (or takes the one a re-exec handed over). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "manager-http.h"
#include "manager-view.h"
#include "sockherd/health.h"
#include "sockherd/http-server.h"
#include "sockherd/log.h"


struct ManagerHttp {
        Manager *manager;
        HttpServer *server;
        char *path;             /* a unix socket file we bound, removed at exit */
        dev_t dev;
        ino_t ino;
};

static void health_input(Manager *m, HealthInput *ret) {
        ManagerView v;
        manager_view(m, &v);
        *ret = (HealthInput) {
                .stopping = v.stopping,
                .draining = v.draining,
                .ready = pool_ready(v.pool),
                .wanted = v.workers_wanted,
                .min_ready = v.config->health_min_ready,
                .generation = v.generation,
                .reload = v.reload.state,
        };
}

static void answer_health(Manager *m, HttpResponse *resp) {
        HealthInput in;
        char body[256];

        health_input(m, &in);
        resp->status = health_format(&in, body, sizeof(body));
        resp->content_type = "application/json";
        resp->body = strdup(body);
        resp->body_size = resp->body ? strlen(body) : 0;
        if (!resp->body)
                resp->status = 0;
}

static void answer_metrics(Manager *m, HttpResponse *resp) {
        char *text = NULL;
        int r = manager_metrics_refresh(m);
        if (r >= 0)
                r = manager_metrics_text(m, &text);
        if (r < 0) {
                if (asprintf(&text, "cannot sample the workers: %s\n", strerror(-r)) < 0)
                        text = NULL;
                resp->status = text ? 500 : 0;
                resp->content_type = "text/plain; charset=utf-8";
        } else {
                resp->status = 200;
                resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        }
        resp->body = text;
        resp->body_size = text ? strlen(text) : 0;
}

static void on_http_request(const HttpRequest *req, HttpResponse *resp, void *userdata) {
        ManagerHttp *h = userdata;
        Manager *m = h->manager;

        if (strcmp(req->path, "/health") == 0)
                answer_health(m, resp);
        else if (strcmp(req->path, "/metrics") == 0)
                answer_metrics(m, resp);
        else {
                resp->status = 404;
                resp->content_type = "text/plain; charset=utf-8";
                resp->body = strdup("not found: try /health or /metrics\n");
                resp->body_size = resp->body ? strlen(resp->body) : 0;
        }
}

static void on_http_event(const char *message, void *userdata _unused_) {
        log_warning("%s", message);
}

/* Bind http-listen. A unix socket file gets mode 0666 (through the umask
 * at bind): a load balancer or scraper runs as another user, and who may
 * reach it is decided by the directory it is in. */
static int http_bind(ManagerHttp *h, const Config *c) {
        ListenSet set = {};
        mode_t old = umask(0111);
        int r = listen_set_bind(&set, &c->http_listen, HTTP_LISTEN_BACKLOG, false);
        umask(old);
        if (r < 0) {
                listen_set_clear(&set);
                return r;
        }
        ListenSocket *s = &set.sockets[0];
        int fd = TAKE_FD(s->fd);
        h->path = TAKE_PTR(s->unlink_path);
        h->dev = s->dev;
        h->ino = s->ino;
        listen_set_clear(&set);
        return fd;
}

int manager_http_new(Manager *m, int passed_fd, const char *passed_path, ManagerHttp **ret) {
        static const HttpHandlers handlers = { on_http_request, on_http_event };
        char address[128];
        int fd = passed_fd, r;
        ManagerView v;

        *ret = NULL;
        manager_view(m, &v);
        const Config *c = v.config;
        if (fd >= 0)
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC); /* kept open across the exec only */
        if (fd >= 0 && !c->http) {
                /* handed over by a re-exec, but the config on disk has none now */
                safe_close(fd);
                log_info("http-listen is not set any more: closing the endpoint");
                return 0;
        }
        if (fd < 0 && !c->http)
                return 0;
        _cleanup_(manager_http_freep) ManagerHttp *h = calloc(1, sizeof(ManagerHttp));
        if (!h) {
                safe_close(fd);
                return log_error_errno(-ENOMEM, "cannot serve http-listen: %m");
        }
        h->manager = m;
        if (fd >= 0 && passed_path && passed_path[0]) {
                struct stat st;
                if (stat(passed_path, &st) == 0 && (h->path = strdup(passed_path))) {
                        h->dev = st.st_dev;
                        h->ino = st.st_ino;
                }
        }
        if (fd < 0) {
                fd = http_bind(h, c);
                if (fd == -EADDRINUSE)
                        return log_error_errno(fd, "http-listen = %s: the address is in use (%m)", c->http_listen_text);
                if (fd == -EEXIST)
                        return log_error_errno(fd, "http-listen = %s: a file that is not a socket is in the way",
                                               c->http_listen_text);
                if (fd < 0)
                        return log_error_errno(fd, "http-listen = %s: cannot listen: %m", c->http_listen_text);
        }
        r = http_server_new(v.event, fd, &handlers, h, &h->server);
        if (r < 0)
                return log_error_errno(r, "cannot serve http-listen: %m");
        log_info("http endpoint (/health, /metrics): %s",
                 socket_address_format(http_server_fd(h->server), address) >= 0 ? address : c->http_listen_text);
        *ret = TAKE_PTR(h);
        return 0;
}

ManagerHttp *manager_http_free(ManagerHttp *h) {
        struct stat st;

        if (!h)
                return NULL;
        h->server = http_server_free(h->server);
        /* remove the file only if it is still the one we bound */
        if (h->path && stat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino)
                (void) unlink(h->path);
        free(h->path);
        free(h);
        return NULL;
}

int manager_http_fd(const ManagerHttp *h) {
        return h && h->server ? http_server_fd(h->server) : -1;
}

const char *manager_http_path(const ManagerHttp *h) {
        return h ? h->path : NULL;
}
