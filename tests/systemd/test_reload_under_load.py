"""`systemctl reload sockherd@app.service`, three times, under continuous
load from the host, with the socket held by sockherd@app.socket.

The shipped unit's ExecReload= (sockherdctl reload --wait) makes each
`systemctl reload` block until the rolling reload is over. The workers take
0.3s to start (a wrapper sleeps before it runs hello-worker) and are
replaced one at a time, so a reload lasts at least 1.2s, and `systemctl
reload` must not return earlier; `sockherdctl --json status`, sampled
in a loop through each reload, never shows fewer than 4 ready workers (a
pool that stopped an old worker before its successor is ready would show 3
for 0.3 s). Right after it returns, StatusText
already names the new generation and every serving worker is new; the only
old workers left in the service's cgroup are the ones still draining
(sockherd lists them as retiring). Two slow requests (2.5s) sent to the
old generation just before each reload make sure there are some: they are
answered by their old workers (200, old generation), which then exit.
Expect 0 failed, 0 refused, 0 errors.

The reload takes the path of the unit variant for the box's systemd: under
252 (Type=notify) ExecReload='s sockherdctl asks for it on the control
socket; under 257 (suite systemd257, Type=notify-reload) systemd sends
SIGHUP itself and waits for RELOADING=1 (with MONOTONIC_USEC=) and READY=1,
so `systemctl reload` lasting the whole reload shows that systemd heard
both. The journal must say which: each reload started by "control request"
or by "SIGHUP", and PID 1 logged each reload job as done."""
import threading
import time

from box import (SERVICE, Box, Load, check, check_service_type, ctl_status, free_port, http_get, log, main_pid,
                 messages, parse_hello, reload_jobs, reloads_started_by, run, setup_pool, start_pool,
                 wait_for, worker_pids, write_config)

RELOADS = 3
MIN_SENT = 2000
SLOW_MS = 2500
N_SLOW = 2
# Each worker takes this long to start (then hello-worker sends READY=1), so
# a rolling reload of 4 slots, one at a time (reload-batch = 25%), lasts
# at least 4 times as long: long enough to see that systemctl reload waits.
START_DELAY = 0.3
WRAPPER = f"""#!/bin/sh
sleep {START_DELAY}
exec /usr/local/bin/hello-worker "$@"
"""


def main():
    with Box("reload") as box:
        box.install_sockherd()
        port = free_port()
        setup_pool(box, port)
        box.write("/usr/local/bin/slow-start-worker", WRAPPER, 0o755)
        # metrics-interval: `status` answers from the periodic sample, so
        # the sampler below gets dense samples
        write_config(box, command="/usr/local/bin/slow-start-worker", extra="metrics-interval = 1min\n")
        start_pool(box, port)
        service_type = check_service_type(box)
        main = main_pid(box)
        check(len(worker_pids(box)) == 4, f"workers {worker_pids(box)}")

        slow = []           # (generation sent to, result) of every slow request

        def slow_request(generation):
            entry = [generation, None]
            slow.append(entry)
            try:
                entry[1] = http_get(port, f"/slow?ms={SLOW_MS}", timeout=20)
            except Exception as e:  # noqa: BLE001 - checked below
                entry[1] = f"{type(e).__name__}: {e}"

        threads = []
        with Load(port, concurrency=8, rate=1500) as load:
            time.sleep(1.0)
            for i in range(RELOADS):
                old_gen, gen = i + 1, i + 2
                old = set(worker_pids(box))
                check(len(old) == 4, f"before reload {i + 1}: workers {sorted(old)}")
                for _ in range(N_SLOW):
                    th = threading.Thread(target=slow_request, args=(old_gen,))
                    th.start()
                    threads.append(th)
                time.sleep(0.3)     # accepted by old workers

                # new before old: `status` sampled through the reload never shows
                # fewer than 4 ready workers
                samples, sampling = [], threading.Event()

                def sample():
                    while not sampling.is_set():
                        st = ctl_status(box)
                        samples.append((st["workers.ready"], st["reload.state"],
                                        [(w["slot"], w["state"], w["role"]) for w in st["workers"]]))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                t = time.monotonic()
                # (a reload lasts about 1.5 s; one systemd never sees the end
                # of, e.g. RELOADING=1 without MONOTONIC_USEC= under
                # notify-reload, would hang until TimeoutStartSec=)
                r = box.systemctl("reload", SERVICE, check=False, timeout=30)
                took = time.monotonic() - t
                sampling.set()
                sampler.join(10)
                during = [x for x in samples if x[1] == "reloading"]
                log(f"reload {i + 1}: {len(samples)} status samples, {len(during)} during the reload, "
                    f"ready at least {min(x[0] for x in samples) if samples else '?'}")
                check(len(during) >= 3, f"reload {i + 1}: only {len(during)} status samples during the reload")
                for ready, state, ws in samples:
                    check(ready >= 4, f"reload {i + 1}: {ready} ready workers, fewer than 4 (reload {state}, "
                                      f"workers {ws})")
                text = box.show(SERVICE, "StatusText")
                st = ctl_status(box)
                in_cgroup = set(box.unit_pids(SERVICE))
                log(f"reload {i + 1}: systemctl reload exit {r.returncode} after {took:.2f}s; "
                    f"StatusText {text!r}")
                check(r.returncode == 0, f"systemctl reload failed: {r.stdout}{r.stderr}")
                check(took >= 4 * START_DELAY,
                      f"systemctl reload returned after {took:.2f}s, before 4 workers could start "
                      f"one after the other ({START_DELAY}s each)")
                check(text == f"4/4 workers ready, generation {gen}",
                      f"right after systemctl reload returned, StatusText is {text!r}")

                serving = {w["pid"]: w for w in st["workers"] if w["role"] == "serving"}
                retiring = {w["pid"] for w in st["workers"] if w["role"] == "retiring"}
                others = [w for w in st["workers"] if w["role"] not in ("serving", "retiring")]
                check(st["generation"] == gen and st["reload.state"] == "idle",
                      f"sockherdctl status: generation {st['generation']}, reload {st['reload.state']}")
                check(len(serving) == 4 and not others, f"workers after the reload: {st['workers']}")
                check(all(w["generation"] == gen and w["state"] == "ready" for w in serving.values()),
                      f"serving workers not all ready in generation {gen}: {list(serving.values())}")
                check(not set(serving) & old, f"old workers {sorted(set(serving) & old)} still serving")
                draining = in_cgroup - {main} - set(serving)
                log(f"reload {i + 1}: old {sorted(old)} -> serving {sorted(serving)}; "
                    f"still draining in the cgroup: {sorted(draining)} (sockherd: retiring {sorted(retiring)})")
                check(draining <= old and draining <= retiring,
                      f"pids {sorted(draining - (old & retiring))} in the cgroup are neither serving "
                      "nor old workers draining")
                check(main in in_cgroup, "the manager is not in the cgroup")

                t = time.monotonic()
                wait_for(lambda: not old & set(box.unit_pids(SERVICE)), 10, 0.05,
                         f"the old workers {sorted(old)} to exit")
                log(f"reload {i + 1}: every old worker gone {time.monotonic() - t:.2f}s later")
                time.sleep(0.7)
            counts = load.stop()
        for th in threads:
            th.join(20)

        check(main_pid(box) == main, "MainPID changed")
        check(box.show(SERVICE, "ActiveState") == "active", "service not active")
        check(box.show(SERVICE, "NRestarts") == "0", "systemd restarted the service")
        final = RELOADS + 1
        for _ in range(10):
            status, body = http_get(port)
            check(status == 200 and parse_hello(body)["generation"] == str(final),
                  f"after the reloads: {status} {body!r}")
        msgs = messages(box)
        for g in range(2, final + 1):
            check(f"reload complete: generation {g} serves on 4 workers" in msgs,
                  f"no 'reload complete: generation {g}' in the journal")
        check(not [m for m in msgs if "reload failed" in m], "a reload failed")
        started_by, jobs = reloads_started_by(box), reload_jobs(box)
        log(f"Type={service_type}: reloads started by {started_by}; systemd's reload jobs: {jobs}")
        want = "SIGHUP" if service_type == "notify-reload" else "control request"
        check(started_by == [want] * RELOADS, f"reloads started by {started_by}, want {RELOADS} x {want!r}")
        check(jobs == ["done"] * RELOADS, f"systemd's reload jobs ended {jobs}, want {RELOADS} x 'done'")

        slow_ok = 0
        for gen, res in slow:
            ok = isinstance(res, tuple) and res[0] == 200 and parse_hello(res[1])["generation"] == str(gen)
            slow_ok += ok
            if not ok:
                log(f"slow request to generation {gen}: {res}")
        print(f"slow requests across the reloads: sent={len(slow)} ok={slow_ok}", flush=True)
        log(f"{len(counts['pids'])} distinct worker pids answered over {final} generations")
        check(slow_ok == len(slow), "a request in flight on an old worker was not answered by it")
        check(counts["sent"] >= MIN_SENT, f"only {counts['sent']} requests sent (want >= {MIN_SENT})")
        check(counts["refused"] == 0, f"{counts['refused']} connections refused")
        check(counts["failed"] == 0, f"{counts['failed']} requests failed")
        check(counts["errors"] == 0, f"{counts['errors']} requests hit connection errors or timeouts")
        check(counts["ok"] == counts["sent"], "not every request was answered with 200")
        check(len(counts["pids"]) > 8, "answers did not come from several generations")


run(main)
