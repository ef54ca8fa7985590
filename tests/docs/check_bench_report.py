#!/usr/bin/env python3
"""The benchmark's report step renders a results file alone (bench/run
--report, --compare; bench/README.md): with no measuring, from the file's
machine facts and settings, not this machine's or the harness's constants,
and the same way every time. bench-results.json is a smoke run's results
with the machine and settings changed to ones no real run here has
(64 CPUs, kernel 9.9.9-fixture, 3 workers, wrk -c30, loadgen concurrency
7, rate 900, 60 idle connections). Also renders the kept 20-repeat
keep-alive run (bench/results/2026-11-30-only-node-ka-selected.json) and
checks its paired table and that it shows only what was measured.

    check_bench_report.py SOURCE_ROOT"""
import os
import subprocess
import sys
import tempfile

root = sys.argv[1]
run = os.path.join(root, "bench", "run")
fixture = os.path.join(root, "tests", "docs", "bench-results.json")
env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
gaps = []


def bench(*args):
    r = subprocess.run([sys.executable, run] + list(args), capture_output=True, text=True, env=env, timeout=60)
    if r.returncode != 0:
        sys.exit(f"bench/run {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


md = bench("--report", fixture)
# what the file says, not this machine or the harness's constants
for want in ("`nproc`: 64; `uname -r`: 9.9.9-fixture; CPU: Fixture CPU",
             "node v99.0.0; wrk fixture-wrk;", "sockherd sockherd 9.9.9",
             "- 3 workers in every pool", "wrk `-t2 -c30 -d1s --latency`",
             "Load average (1/5/15 min) at the start: 0.01 0.02 0.03, at the end: 0.04 0.05 0.06",
             "`loadgen --concurrency 7 --duration 1`", "On the same start of each contender, after its "
             "keep-alive run: 60 keep-alive", "--rate-limit 900 --until-signal", "16 processes starting on 64 cores",
             "# sockherd benchmark, 2026-11-30 08:34 (smoke run)"):
    if want not in md:
        gaps.append(f"--report: the Markdown lacks {want!r} (from the results file)")
# the headings the README and readers rely on
for heading in ("## Node app, keep-alive", "## C hello-worker: sockherd vs independent processes",
                "## Long-lived idle connections plus a few busy ones", "## Distribution per worker",
                "## Zero downtime: failed requests during 1 rolling reloads under load",
                "### Reload time: from the request to the last old worker gone",
                "## Zero downtime: failed requests during 1 manager restarts under systemd",
                "## Manager memory and idle wake-ups", "## Scale: 16 C hello-workers under one manager",
                "![throughput](2026-11-30-smoke.png)"):
    if heading not in md.splitlines() and heading + "\n" not in md:
        if not any(line.startswith(heading) for line in md.splitlines()):
            gaps.append(f"--report: no line starting {heading!r}")
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "again.md")
    bench("--report", fixture, "--out", out)
    with open(out) as f:
        written = f.read()
    # the same rendering again (it reads nothing but the file), but linking
    # to the chart it draws next to the file; without gnuplot the Markdown
    # says the chart failed
    expect = md.replace("![throughput](2026-11-30-smoke.png)", "![throughput](again.png)")
    if written != expect and not written.startswith(expect + "\n(chart failed"):
        gaps.append("--report --out: the file differs from the Markdown on stdout (but for the chart's name): "
                    "the rendering depends on more than the results file")
# a run with repeats: least-connections against each contender, paired by
# repeat (the README quotes this run's numbers)
paired = bench("--report", os.path.join(root, "bench", "results", "2026-11-30-only-node-ka-selected.json"))
for want in ("6. sockherd, balance=least-connections against each, paired by repeat",
             "| 1. Node cluster, round-robin | 1.18 (0.88–1.77) | 17 of 20 | 1.25 (0.84–1.75) | 19 of 20 |",
             "| 4. sockherd, balance=shared | 0.97 (0.83–1.52) | 9 of 20 | 0.98 (0.79–1.25) | 9 of 20 |",
             "(full run, only node; measured: keep-alive; contenders: cluster-rr, cluster-none, sockherd-shared, "
             "sockherd-reuseport, sockherd-lc)"):
    if want not in paired:
        gaps.append(f"--report of a 20-repeat run: the Markdown lacks {want!r}")
if "## Distribution per worker" in paired or "## Long-lived idle" in paired:
    gaps.append("--report of a keep-alive-only run: it shows sections the run did not measure")
cmp = bench("--compare", fixture, fixture)
for want in ("# sockherd benchmark: bench-results against bench-results", "## Throughput, keep-alive",
             "| 1. Node cluster, round-robin |", "1.00×", "## Rolling reloads under load",
             "## Manager memory and idle wake-ups", "## Scale"):
    if want not in cmp:
        gaps.append(f"--compare: the Markdown lacks {want!r}")
for g in gaps:
    print(g)
sys.exit(1 if gaps else 0)
