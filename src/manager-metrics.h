/* The samples' side of the manager (manager-metrics.c): one object that
 * samples the workers, watches the spread and writes the metrics file,
 * through manager-view.h. */
#pragma once

typedef struct Manager Manager;
typedef struct ManagerMetrics ManagerMetrics;

ManagerMetrics *manager_metrics_new(Manager *m);
ManagerMetrics *manager_metrics_free(ManagerMetrics *mm);
/* Start, retime or stop the periodic sample as the committed config says. */
void manager_metrics_update(Manager *m);
