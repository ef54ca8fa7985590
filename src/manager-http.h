/* The HTTP endpoint's side of the manager (manager-http.c): one object that
 * answers /health and /metrics through manager-view.h. */
#pragma once

typedef struct Manager Manager;
typedef struct ManagerHttp ManagerHttp;

/* Bind http-listen, or serve passed_fd (handed over by a re-exec, with the
 * unix socket path the old image created, or ""). 0 with *ret NULL when it
 * is off; a negative errno, logged. */
int manager_http_new(Manager *m, int passed_fd, const char *passed_path, ManagerHttp **ret);
ManagerHttp *manager_http_free(ManagerHttp *h);
static inline void manager_http_freep(ManagerHttp **h) {
        manager_http_free(*h);
}
/* For the re-exec state: the socket, and the file we bound (or NULL). */
int manager_http_fd(const ManagerHttp *h);
const char *manager_http_path(const ManagerHttp *h);
