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

#include "manager-internal.h"
#include "sockherd/health.h"
#include "sockherd/http-server.h"
#include "sockherd/log.h"


void manager_health_input(Manager *m, HealthInput *ret) {
        ReloadSnapshot snap;
        manager_reload_snapshot(m, &snap);
        *ret = (HealthInput) {
                .stopping = m->stopping,
                .draining = m->draining,
                .ready = pool_ready(&m->pool),
                .wanted = manager_workers_wanted(m),
                .min_ready = m->config->health_min_ready,
                .generation = m->generation,
                .reload = snap.state,
        };
}

static void answer_health(Manager *m, HttpResponse *resp) {
        HealthInput in;
        char body[256];

        manager_health_input(m, &in);
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
        Manager *m = userdata;

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
static int http_bind(Manager *m) {
        ListenSet set = {};
        mode_t old = umask(0111);
        int r = listen_set_bind(&set, &m->config->http_listen, HTTP_LISTEN_BACKLOG, false);
        umask(old);
        if (r < 0) {
                listen_set_clear(&set);
                return r;
        }
        ListenSocket *s = &set.sockets[0];
        int fd = TAKE_FD(s->fd);
        m->http_path = TAKE_PTR(s->unlink_path);
        m->http_dev = s->dev;
        m->http_ino = s->ino;
        listen_set_clear(&set);
        return fd;
}

int manager_http_open(Manager *m, int passed_fd, const char *passed_path) {
        static const HttpHandlers handlers = { on_http_request, on_http_event };
        char address[128];
        int fd = passed_fd, r;

        if (fd >= 0)
                (void) fcntl(fd, F_SETFD, FD_CLOEXEC); /* kept open across the exec only */
        if (fd >= 0 && !m->config->http) {
                /* handed over by a re-exec, but the config on disk has none now */
                safe_close(fd);
                log_info("http-listen is not set any more: closing the endpoint");
                return 0;
        }
        if (fd >= 0 && passed_path && passed_path[0]) {
                struct stat st;
                if (stat(passed_path, &st) == 0 && (m->http_path = strdup(passed_path))) {
                        m->http_dev = st.st_dev;
                        m->http_ino = st.st_ino;
                }
        }
        if (fd < 0 && !m->config->http)
                return 0;
        if (fd < 0) {
                fd = http_bind(m);
                if (fd == -EADDRINUSE)
                        return log_error_errno(fd, "http-listen = %s: the address is in use (%m)",
                                               m->config->http_listen_text);
                if (fd == -EEXIST)
                        return log_error_errno(fd, "http-listen = %s: a file that is not a socket is in the way",
                                               m->config->http_listen_text);
                if (fd < 0)
                        return log_error_errno(fd, "http-listen = %s: cannot listen: %m", m->config->http_listen_text);
        }
        r = http_server_new(m->event, fd, &handlers, m, &m->http);
        if (r < 0)
                return log_error_errno(r, "cannot serve http-listen: %m");
        log_info("http endpoint (/health, /metrics): %s",
                 socket_address_format(http_server_fd(m->http), address) >= 0 ? address : m->config->http_listen_text);
        return 0;
}

void manager_http_close(Manager *m) {
        struct stat st;

        m->http = http_server_free(m->http);
        /* remove the file only if it is still the one we bound */
        if (m->http_path && stat(m->http_path, &st) == 0 && st.st_dev == m->http_dev && st.st_ino == m->http_ino)
                (void) unlink(m->http_path);
        free(m->http_path);
        m->http_path = NULL;
}
