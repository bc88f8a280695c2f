#!/usr/bin/env python3
"""Per-request cost of the agent, for comparing two builds: CPU, instructions, allocations.

bench.py measures throughput and latency, which move by +-15% on this shared 2-core VM. This
script measures what does not depend on the host's mood: a fixed number of requests at a fixed
concurrency through the agent (the same topology, backend and request bodies as bench.py:
tenant key, two-tier route, TPM/RPM limits, metering, access log), then

  --mode cpu        agent utime+stime (/proc/PID/stat) per request, in microseconds (paced:
                    the mock's too, per event)
  --mode callgrind  instructions per request: the agent runs under valgrind --tool=callgrind,
                    counters are zeroed after the warm-up (callgrind_control -z) and dumped
                    after the measured requests (callgrind_control -d); the dump is kept for
                    callgrind_annotate
  --mode allocs     heap allocations per request (libspillway_alloc_counter.so preloaded)
  --mode syscalls   system calls per request, by name (strace -c -f attached to the agent for
                    the measured requests only)
  --mode gaps       the time between system calls, by the pair of calls and the descriptors
                    they name (the kernel's syscall tracepoints, perf record): the user-space
                    work on each leg of a request, e.g. from the client's request read to the
                    backend write, which at one connection is the proxy's part of the latency
  --mode perf       perf record -g (cpu-clock samples: this VM has no hardware counters)
                    attached for the measured requests only; the data file is kept for
                    perf report (--out, default in the temp dir, printed)

The denominator is the number of requests the agent logged (its access log), so requests cut
off when wrk stops are counted if the agent finished them. Load comes from wrk (-t1), whose
Lua script stops after --requests responses (wrk's main thread sleeps out -d regardless, so
it is interrupted then). The backend is nginx returning bench.py's canned
Azure replies (--backend mock: spillway-mock-aoai).

  tests/bench/profile.py --build build --mode callgrind --requests 3000 --out /tmp/new
  tests/bench/profile.py --build /work/old/build --old-topology --mode callgrind ...
      (--old-topology: a build from before instances' insecure_http, e.g. 3d6e6fa)

Figures and what they found: docs/performance.md.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the same topology, bodies and process helpers as the benchmark)


def wrk_script(tmp, name, body, headers, requests, marker):
    """POSTs `body`; once `requests` responses have arrived, stops sending and creates
    `marker` (wrk's main thread sleeps for -d regardless, so run_wrk interrupts it then)."""
    path = os.path.join(tmp, "profile-%s.lua" % name)
    header_lines = "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in headers.items())
    with open(path, "w") as f:
        f.write("""-- Written by tests/bench/profile.py.
wrk.method = "POST"
wrk.body = [==[%s]==]
wrk.headers["Content-Type"] = "application/json"
%s
local done_count = 0
local bad = 0
function response(status, headers, body)
  done_count = done_count + 1
  if status ~= 200 then bad = bad + 1 end
  if done_count == %d then
    io.open("%s", "w"):close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  io.write(string.format('PROFILEJSON {"requests":%%.0f,"status_errors":%%.0f}\\n',
                         summary.requests, summary.errors.status))
end
""" % (body, header_lines, requests, marker))
    return path


def run_wrk(tmp, url, headers, body, connections, requests, name):
    marker = os.path.join(tmp, "profile-%s.done" % name)
    script = wrk_script(tmp, name, body, headers, requests, marker)
    # -d is only a bound: SIGINT ends wrk (and it prints its summary) once the marker exists.
    popen = subprocess.Popen(["wrk", "-t1", "-c%d" % connections, "-d900s", "--timeout", "30s",
                              "-s", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, start_new_session=True,
                             preexec_fn=bench.child_setup("load"))
    while popen.poll() is None and not os.path.exists(marker):
        time.sleep(0.05)
    if popen.poll() is None:
        popen.send_signal(signal.SIGINT)
    out, err = popen.communicate(timeout=60)
    out, err, rc = out.decode(errors="replace"), err.decode(errors="replace"), popen.returncode
    line = next((l for l in out.splitlines() if l.startswith("PROFILEJSON ")), None)
    if line is None:
        raise bench.BenchError("wrk printed no summary (rc %d): %s %s" % (rc, out[-500:],
                                                                          err[-500:]))
    result = json.loads(line[len("PROFILEJSON "):])
    if result["status_errors"]:
        raise bench.BenchError("%d non-2xx answers" % result["status_errors"])
    return result["requests"]


def run_streams(client_bin, url, headers, body, streams, tokens, log):
    """bench_client's streams mode: `streams` paced streams at once, each of `tokens` events,
    checked in order; returns the content events delivered (every one, or it raises)."""
    argv = [client_bin, "--mode", "streams", "--connections", str(streams), "--ramp", "500",
            "--url", url, "--body", body, "--expect-chunks", str(tokens)]
    for name, value in headers.items():
        argv += ["--header", "%s:%s" % (name, value)]
    with open(log, "w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=bench.child_setup("load"), timeout=900).returncode
    with open(log) as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    if rc != 0 or not lines:
        raise bench.BenchError("the streams client failed (rc %d), see %s" % (rc, log))
    summary = json.loads(lines[-1])
    if summary["ok"] != streams or summary["failed"]:
        raise bench.BenchError("%d of %d streams whole: %s" % (summary["ok"], streams,
                                                               summary["failures"]))
    return summary["content_chunks"]


def cpu_split(pid):
    """(utime, stime) of the whole process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def logged(path, settle=0.5):
    time.sleep(settle)  # the agent writes its access log every 100 ms
    return bench.count_lines(path)


def callgrind_totals(path):
    """{event: count} from a callgrind dump's summary line."""
    events, totals = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:") or line.startswith("totals:"):
                totals = [int(v) for v in line.split()[1:]]
    return dict(zip(events, totals))


def callgrind_total(path):
    """The 'totals:' (or 'summary:') instruction count of a callgrind dump."""
    total = callgrind_totals(path).get("Ir")
    if total is None:
        raise bench.BenchError("no totals in " + path)
    return total


def syscall_counts(path, requests):
    """strace -c's table as calls per request, by name (the background ticks included)."""
    by_name, errors = {}, {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(fields) >= 5 and fields[3].isdigit() and fields[-1] != "total":
                by_name[fields[-1]] = int(fields[3])
                if len(fields) == 6:
                    errors[fields[-1]] = int(fields[4])
    return {"syscalls_per_request": round(sum(by_name.values()) / requests, 2),
            "by_name": per_request(by_name, requests, 2),
            "failed_by_name": per_request(errors, requests, 2)}


def per_request(counts, requests, digits):
    """{name: count per request}, most frequent first, leaving out those under the last digit."""
    return {k: round(v / requests, digits) for k, v in sorted(
        counts.items(), key=lambda kv: -kv[1]) if v / requests >= 10 ** -digits}


# System calls counted by the kernel's tracepoints (perf stat), which, unlike strace, do not
# slow the process down: a slowed proxy finds more sockets empty and fails more reads.
TRACED_CALLS = ("recvfrom", "recvmsg", "read", "sendmsg", "sendto", "write", "writev",
                "epoll_wait", "epoll_ctl", "getsockopt", "setsockopt", "accept", "accept4",
                "ioctl", "close", "shutdown", "futex")
FAILED_READS = ("recvfrom", "recvmsg", "read")  # also counted when they fail
TRACEPOINT_ARGS = (["-e", "raw_syscalls:sys_exit"] +
                   [arg for call in FAILED_READS for arg in (
                       "-e", "syscalls:sys_exit_" + call, "--filter", "ret < 0")] +
                   [arg for call in TRACED_CALLS for arg in ("-e", "syscalls:sys_exit_" + call)])


def tracepoint_counts(path, requests):
    """perf stat's counts as calls per request: all, by name, and failed reads."""
    total, by_name, failed = 0, {}, {}
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) < 3 or not fields[0].isdigit():
                continue
            count, event = int(fields[0]), fields[2]
            if event == "raw_syscalls:sys_exit":
                total = count
            elif event.startswith("syscalls:sys_exit_"):
                name = event[len("syscalls:sys_exit_"):]
                # The filtered (failed) count of a read comes first, then the whole one.
                if name in FAILED_READS and name not in failed:
                    failed[name] = count
                else:
                    by_name[name] = count
    return {"syscalls_per_request": round(total / requests, 3),
            "by_name": per_request(by_name, requests, 3),
            "failed_by_name": per_request(failed, requests, 3)}


def syscall_gaps(data, requests):
    """From a perf record of the traced calls' enter and exit tracepoints: per pair of calls
    (the call that returned, the next one entered, each with its descriptor), how often it
    occurs a request and the mean time between them in microseconds, the user-space work
    between two calls (or a preemption); and the mean time inside each call, by descriptor and
    by name (paced streams spread their calls over thousands of descriptors)."""
    script = subprocess.run(["perf", "script", "-i", data, "--ns", "-F", "time,event,trace"],
                            check=True, capture_output=True, text=True).stdout
    pairs, inside, inside_by_name = {}, {}, {}
    last_exit, entered = None, None
    for line in script.splitlines():
        match = re.match(r"\s*([\d.]+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)", line)
        if not match:
            continue
        when, kind, name, rest = float(match[1]), match[2], match[3], match[4]
        if kind == "enter":
            fd = re.search(r"fd: (0x[0-9a-f]+)", rest)
            call = name + ("(%d)" % int(fd[1], 16) if fd else "")
            if last_exit is not None:
                key = last_exit[0] + " -> " + call
                pair = pairs.setdefault(key, [0, 0.0])
                pair[0] += 1
                pair[1] += when - last_exit[1]
            entered = (call, when)
        elif entered is not None:
            for spent in (inside.setdefault(entered[0], [0, 0.0]),
                          inside_by_name.setdefault(name, [0, 0.0])):
                spent[0] += 1
                spent[1] += when - entered[1]
            last_exit, entered = (entered[0], when), None

    def table(counts):
        return {key: {"per_request": round(n / requests, 3), "mean_us": round(t / n * 1e6, 2)}
                for key, (n, t) in sorted(counts.items(), key=lambda kv: -kv[1][1])
                if n / requests >= 0.01}
    return {"user_us_per_request": round(sum(t for _, t in pairs.values()) / requests * 1e6, 2),
            "between_calls": table(pairs), "inside_calls": table(inside),
            "inside_calls_by_name": table(inside_by_name)}


def start_nginx(tmp, backend_port, procs, callgrind=None):
    """nginx as bench.py's proxy in front of the backend, pinned as the agent would be:
    (process, port, access log). Under callgrind it runs without a master process, so the
    process valgrind starts is the one serving."""
    port = bench.free_port()
    prefix, conf = bench.nginx_proxy_conf(tmp, "nginx-proxy", port, backend_port)
    argv = ["nginx", "-p", prefix, "-e", prefix + "/error.log", "-c", conf]
    if callgrind:
        argv = callgrind + argv + ["-g", "master_process off;"]
    proc = bench.Process("nginx-proxy", argv, os.path.join(tmp, "nginx-proxy.out"),
                         role="proxy")
    procs.append(proc)
    bench.wait_for_port(port, proc, timeout=120 if callgrind else 10)
    return proc, port, os.path.join(prefix, "access.log")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build", help="build directory (default build/)")
    parser.add_argument("--mode", choices=("cpu", "callgrind", "allocs", "syscalls", "tracepoints",
                                           "gaps", "perf"), default="cpu")
    parser.add_argument("--kind", choices=("chat", "sse", "both", "paced"), default="both",
                        help="non-streaming chat completions, 50-event streams, both, or "
                        "paced streams (bench.py's paced line: the mock sends each stream's "
                        "events --tokens-per-s apart; figures are per event)")
    parser.add_argument("--streams", type=int, default=300,
                        help="paced: streams open at once (bench.py: 2000)")
    parser.add_argument("--tokens-per-s", type=int, default=bench.PACED_TOKENS_PER_S)
    parser.add_argument("--seconds", type=int, default=10, help="paced: each stream's length")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=0,
                        help="measured requests per kind (default: 20000 cpu, 3000 callgrind, "
                             "5000 allocs)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="requests before measuring (default: requests / 5, at least 500)")
    parser.add_argument("--backend", choices=("canned", "mock"), default="canned")
    parser.add_argument("--old-topology", action="store_true",
                        help="omit instances' insecure_http (builds before it existed)")
    parser.add_argument("--out", default="",
                        help="callgrind: dump file prefix (default: in the temp dir, printed)")
    parser.add_argument("--cache-sim", action="store_true",
                        help="callgrind: simulate the caches too (D1 32 KiB, LL 1 MiB, as a "
                        "core's L1 and L2 here), to compare misses per request")
    parser.add_argument("--footprint", action="store_true",
                        help="callgrind: keep instruction addresses (--dump-instr=yes), for "
                        "tests/bench/footprint.py")
    parser.add_argument("--keep-temp", action="store_true")
    parser.add_argument("--proxy", choices=("agent", "nginx"), default="agent",
                        help="the proxy measured: the agent, or nginx configured as bench.py "
                        "configures it (its worker's figures; under callgrind, one process)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place every process (default: as bench.py, the "
                        "agent on a core of its own)")
    args = parser.parse_args()
    if args.proxy == "nginx" and args.mode == "allocs":
        parser.error("--proxy nginx does not count allocations")
    bench.place(not args.no_pin)

    build = os.path.abspath(os.path.join(bench.ROOT, args.build))
    agent_bin = os.path.join(build, "dataplane", "spillway-agent")
    alloc_lib = os.path.join(build, "tests", "bench", "libspillway_alloc_counter.so")
    mock_bin = os.path.join(build, "tests", "mock_aoai", "spillway-mock-aoai")
    requests = args.requests or {"cpu": 20000, "callgrind": 3000, "allocs": 5000,
                                         "syscalls": 5000, "tracepoints": 60000, "gaps": 5000,
                                         "perf": 100000}[args.mode]
    warmup = args.warmup or max(500, requests // 5)
    kinds = ["chat", "sse"] if args.kind == "both" else [args.kind]

    paced = args.kind == "paced"
    paced_tokens = args.tokens_per_s * args.seconds
    tmp = tempfile.mkdtemp(prefix="spillway-profile-")
    os.chmod(tmp, 0o755)
    procs = []
    try:
        if paced:
            backend = bench.Process("mock-paced", [
                mock_bin, "--listen", "127.0.0.1:0", "--api-keys", bench.BACKEND_KEY] +
                bench.paced_mock_args(paced_tokens, 1000.0 / args.tokens_per_s),
                os.path.join(tmp, "mock.log"), role="backend")
            procs.append(backend)
            port = int(backend.wait_for_line(r"listening on [^:]+:(\d+)").group(1))
        elif args.backend == "canned":
            port = bench.free_port()
            prefix, conf = bench.nginx_canned_conf(tmp, port)
            backend = bench.Process("nginx-canned", ["nginx", "-p", prefix, "-e",
                                                     prefix + "/error.log", "-c", conf],
                                    os.path.join(tmp, "nginx-canned.out"), role="backend")
            procs.append(backend)
            bench.wait_for_port(port, backend)
        else:
            backend = bench.Process("mock", [mock_bin, "--listen", "127.0.0.1:0", "--api-keys",
                                             bench.BACKEND_KEY] + bench.MAIN_MOCK_ARGS,
                                    os.path.join(tmp, "mock.log"), role="backend")
            procs.append(backend)
            port = int(backend.wait_for_line(r"listening on [^:]+:(\d+)").group(1))

        instances = {"main": ("http://127.0.0.1:%d" % port,
                              [("ptu", "ProvisionedManaged"), ("std", "Standard"),
                               ("ptu-sse", "ProvisionedManaged"), ("std-sse", "Standard")])}
        routes = {"chat": [["main/ptu"], ["main/std"]],
                  "chat-sse": [["main/ptu-sse"], ["main/std-sse"]]}
        if paced:
            instances = {"paced": ("http://127.0.0.1:%d" % port, [("paced", "Standard")])}
            routes = {"chat-paced": [["paced/paced"]]}
        topology = bench.agent_topology(instances, routes)
        if args.old_topology:
            topology = topology.replace(" insecure_http: true,", "")
        topology_path = os.path.join(tmp, "topology.yaml")
        with open(topology_path, "w") as f:
            f.write(topology)
        access_log = os.path.join(tmp, "access.log")
        argv = [agent_bin, "--region", bench.REGION, "--topology", topology_path, "--listen",
                "127.0.0.1:0", "--threads", "1", "--access-log", access_log,
                "--drain-timeout-ms", "1000"]
        env = {bench.BACKEND_KEY_ENV: bench.BACKEND_KEY}
        out_prefix = args.out or os.path.join(tmp, "callgrind")
        count_file = os.path.join(tmp, "alloc-count.json")
        callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s.%%p" % out_prefix,
                     "--dump-instr=%s" % ("yes" if args.footprint else "no")] + (
                         ["--cache-sim=yes", "--D1=32768,8,64", "--LL=1048576,16,64"]
                         if args.cache_sim else [])
        if args.mode == "callgrind":
            argv = callgrind + argv
        elif args.mode == "allocs":
            env.update({"LD_PRELOAD": alloc_lib, "SPILLWAY_ALLOC_COUNT_FILE": count_file})
        if args.proxy == "nginx":
            agent, agent_port, access_log = start_nginx(
                tmp, port, procs, callgrind if args.mode == "callgrind" else None)
            pid = agent.pid if args.mode == "callgrind" else bench.nginx_worker_pid(agent)
        else:
            agent = bench.Process("agent", argv, os.path.join(tmp, "agent.log"), env=env,
                                  role="proxy")
            procs.append(agent)
            agent_port = int(agent.wait_for_line(r"listening on [^:]+:(\d+)",
                                                 timeout=120).group(1))
            pid = agent.pid

        def allocations():
            time.sleep(0.35)  # the counter rewrites its file every 100 ms
            with open(count_file) as f:
                return json.load(f)["allocations"]

        results = {"mode": args.mode, "proxy": args.proxy, "connections": args.connections,
                   "build": build, "backend": args.backend}
        client_bin = os.path.join(build, "tests", "bench", "spillway-bench-client")

        def load(kind, url, headers, body, count, name):
            """Runs one load; the requests (events, paced) it delivered."""
            if kind != "paced":
                return run_wrk(tmp, url, headers, body, args.connections, count, name)
            return run_streams(client_bin, url, headers, body, count, paced_tokens,
                               os.path.join(tmp, name + ".out"))

        for kind in kinds:
            route, body = {"chat": ("chat", bench.CHAT_BODY),
                           "sse": ("chat-sse", bench.STREAM_BODY),
                           "paced": ("chat-paced", bench.paced_body(paced_tokens))}[kind]
            if args.proxy == "nginx":  # nginx passes the path through: the deployment's
                route = {"chat": "ptu", "sse": "ptu-sse", "paced": "paced"}[kind]
            url = "http://127.0.0.1:%d%s" % (agent_port, bench.chat_path(route))
            headers = {"api-key": bench.TENANT_KEY}
            if args.proxy == "nginx" and paced:
                headers = {"api-key": bench.BACKEND_KEY}  # as bench.py's paced line sends it
            load(kind, url, headers, body, max(1, args.streams // 5) if paced else warmup,
                 kind + "-warmup")
            before_lines = logged(access_log)
            if args.mode == "callgrind":
                subprocess.run(["callgrind_control", "-z", str(pid)], check=True,
                               stdout=subprocess.DEVNULL)
            elif args.mode == "allocs":
                alloc_before = allocations()
            elif args.mode == "syscalls":
                strace_out = os.path.join(tmp, "strace-%s.txt" % kind)
                strace = subprocess.Popen(["strace", "-c", "-f", "-o", strace_out, "-p",
                                           str(pid)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                time.sleep(1.0)  # attached to every thread before the first request
            elif args.mode == "tracepoints":
                trace_out = os.path.join(tmp, "tracepoints-%s.csv" % kind)
                trace = subprocess.Popen(["perf", "stat", "-x", ",", "-o", trace_out, "-p",
                                          str(pid)] + TRACEPOINT_ARGS,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            elif args.mode == "gaps":
                gaps_out = os.path.join(tmp, "gaps-%s.data" % kind)
                events = [arg for call in TRACED_CALLS for way in ("enter", "exit")
                          for arg in ("-e", "syscalls:sys_%s_%s" % (way, call))]
                trace = subprocess.Popen(["perf", "record", "-p", str(pid), "-o", gaps_out] +
                                         events, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            elif args.mode == "perf":
                perf_out = (args.out or os.path.join(tmp, "perf")) + "-%s.data" % kind
                perf = subprocess.Popen(["perf", "record", "-F", "4000", "-g", "-p", str(pid),
                                         "-o", perf_out], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
                time.sleep(1.0)
            user_before, sys_before = cpu_split(pid)
            backend_before = sum(cpu_split(backend.pid)) if paced else 0.0
            sent = load(kind, url, headers, body, args.streams if paced else requests, kind)
            # Paced figures are per event (the streams' content events), the others per request.
            done = sent if paced else logged(access_log) - before_lines
            if args.mode == "syscalls":
                strace.send_signal(signal.SIGINT)
                strace.wait(30)
            elif args.mode in ("tracepoints", "gaps"):
                trace.send_signal(signal.SIGINT)
                trace.wait(30)
            elif args.mode == "perf":
                perf.send_signal(signal.SIGINT)
                perf.wait(60)
            user_after, sys_after = cpu_split(pid)
            entry = {"wrk_requests": sent, "agent_logged": done}
            if args.mode == "cpu":
                user, system = user_after - user_before, sys_after - sys_before
                entry.update({"cpu_us_per_request": round((user + system) / done * 1e6, 2),
                              "user_us_per_request": round(user / done * 1e6, 2),
                              "sys_us_per_request": round(system / done * 1e6, 2)})
                if paced:
                    # On loopback part of a proxy's work runs in the mock's calls (an ACK's
                    # receipt; a delayed ACK sent as data arrives): the two together are the
                    # figure no such shift can move.
                    backend_cpu = sum(cpu_split(backend.pid)) - backend_before
                    entry["backend_cpu_us_per_request"] = round(backend_cpu / done * 1e6, 2)
            elif args.mode == "syscalls":
                entry.update(syscall_counts(strace_out, done))
            elif args.mode == "tracepoints":
                entry.update(tracepoint_counts(trace_out, done))
            elif args.mode == "gaps":
                entry.update(syscall_gaps(gaps_out, done))
            elif args.mode == "perf":
                entry["perf_data"] = perf_out
            elif args.mode == "allocs":
                entry["allocations_per_request"] = round((allocations() - alloc_before) / done,
                                                         2)
            else:
                existing = set(os.listdir(os.path.dirname(out_prefix) or "."))
                subprocess.run(["callgrind_control", "-d", kind, str(pid)], check=True,
                               stdout=subprocess.DEVNULL)
                time.sleep(1.0)
                dumps = sorted(set(os.listdir(os.path.dirname(out_prefix) or ".")) - existing)
                dumps = [d for d in dumps
                         if d.startswith(os.path.basename(out_prefix) + ".%d" % pid)]
                if not dumps:
                    raise bench.BenchError("callgrind wrote no dump")
                dump = os.path.join(os.path.dirname(out_prefix) or ".", dumps[-1])
                total = callgrind_total(dump)
                entry.update({"dump": dump, "instructions": total,
                              "instructions_per_request": round(total / done)})
                if args.cache_sim:
                    entry["per_request"] = {event: round(count / done, 1) for event, count
                                            in callgrind_totals(dump).items()}
            results[kind] = entry
            print(json.dumps({kind: entry}), flush=True)
        if not agent.alive():
            raise bench.BenchError("the agent died:\n" + agent.tail())
        print("PROFILE " + json.dumps(results), flush=True)
    finally:
        for proc in reversed(procs):
            proc.stop()
        if args.keep_temp:
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except bench.BenchError as e:
        print("profile.py: %s" % e, file=sys.stderr)
        sys.exit(1)
