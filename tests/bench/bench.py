#!/usr/bin/env python3
"""Spillway data-plane benchmark (issue 6): the agent against nginx on this machine.

Starts every process itself (mock backends, an nginx reverse proxy, spillway-agent with
everything a production request does switched on, wrk, spillway-bench-client) on ports chosen
at run time, measures the scenarios in rounds of direct / nginx / agent, prints a table and one
PASS/FAIL line per target, and writes tests/bench/results/latest.{json,md}. Exit code 0 when
every target passes. Python 3 standard library only; tests/bench/run.sh is the one command.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS_DIR = os.path.join(ROOT, "tests", "bench", "results")
EXAMPLE_TOPOLOGY = os.path.join(ROOT, "examples", "topology.yaml")

API_VERSION = "2024-10-21"
BACKEND_KEY = "bench-backend-key"
BACKEND_KEY_ENV = "SPILLWAY_BENCH_BACKEND_KEY"
TENANT_KEY = "bench-tenant-key"
REGION = "eastus2"
SMALL_TOKENS = 16  # completion tokens of a "small" non-streaming chat completion
STREAM_CHUNKS = 50  # content chunks per SSE stream
STREAMS_TARGET = 10000
MIB = 1024 * 1024

CHAT_BODY = json.dumps({"messages": [{"role": "user", "content": "Hello, gateway."}],
                        "max_tokens": SMALL_TOKENS}, separators=(",", ":"))
STREAM_BODY = json.dumps({"messages": [{"role": "user", "content": "Hello, gateway."}],
                          "max_tokens": STREAM_CHUNKS, "stream": True}, separators=(",", ":"))

# Limits far above anything a 2-core machine can reach, so nothing ever throttles: the
# benchmark measures the work of checking them, not their effect.
HUGE_TPM = 10_000_000_000
HUGE_RPM = 100_000_000
HUGE_CAPACITY = 100_000

# The main mock: the PTU and Standard deployments of route "chat", and "-sse" twins for streams
# (an nginx backend with canned replies can only tell streams apart by the path).
MAIN_MOCK_ARGS = [
    "--deployments", "ptu:ptu=%d,std:tpm=%d,ptu-sse:ptu=%d,std-sse:tpm=%d" % (
        HUGE_CAPACITY, HUGE_TPM, HUGE_CAPACITY, HUGE_TPM),
    "--tokens-per-ptu-minute", "100000000",
    "--completion-tokens", str(STREAM_CHUNKS)]

# How long a mock keeps an idle keep-alive connection: Azure's front ends keep one for minutes
# (the load balancer's default is 4), longer than a proxy's pool holds one. At the mock's default
# (60 s, as nginx's upstream keepalive_timeout) nginx reused connections the mock was closing
# when its paced runs came 60 s apart, and answered 502 to 2 of 2,000 streams (it does not
# retry a POST on a reset keep-alive connection; the agent does).
MOCK_IDLE_TIMEOUT_MS = 240000

ALL_SCENARIOS = ["c1", "c32", "c256", "sse", "failover", "streams10k", "paced", "idle",
                 "allocs", "controlplane"]
WRK_SCENARIOS = {  # name -> (connections, streaming)
    "c1": (1, False),
    "c32": (32, False),
    "c256": (256, False),
    "sse": (32, True),
}


# An LLM gateway beside nginx (issue 19): the Portkey open-source gateway from npm, installed
# by tests/bench/run.sh into the build directory, proxying to the same canned backend with its
# OpenAI provider and a custom host. Measured on c1, c32 and sse, judged on c32.
PORTKEY_VERSION = "1.15.2"
PORTKEY_SCENARIOS = ("c1", "c32", "sse")
PORTKEY_MIN_RATIO = 20.0  # the agent's throughput over Portkey's at 32 connections


MAX_ALLOCS_PER_REQUEST = 10  # issue 19: heap allocations per non-streaming chat completion

# LLM streams as they arrive (issue 19): many concurrent streams, each a token every 33 ms for
# 20 s (60,000 events/s through the proxy), over HTTP/1.1 upstream through nginx and through
# the agent in turn; the agent's CPU for the whole load against nginx's, per round. One round
# each was not enough: on this VM the same pair of runs gave ratios from 0.99 to 1.45.
PACED_STREAMS = 2000
PACED_TOKENS_PER_S = 30
PACED_SECONDS = 20

# Rounds for every judged line: the wrk scenarios on the backend the targets are judged against,
# and the paced streams. The issue asks for at least 5. Nine, because three lines sit at nginx's
# figure (one connection's hop, 256 connections, paced CPU): over four full runs of one agent
# their 5-round medians moved by more than the distance to the limit (docs/performance.md), so
# two runs could disagree on a verdict that one agent deserves.
ROUNDS = 9
# The mock's wrk pass comes first and, under --backend auto, mostly decides only whether the
# mock is fast enough to judge by (on 2 cores it has never been): it keeps the old 5 rounds.
MOCK_PASS_ROUNDS = 5
# Failover's margin is wide (150-180 us against a 300 us limit) and each round is 18 s.
FAILOVER_ROUNDS = 5


class BenchError(Exception):
    """A scenario could not be measured (a process died, a port never opened, ...)."""


# --------------------------------------------------------------------------------------------
# processes


def raise_nofile():
    """preexec_fn: children get the hard open-file limit as their soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# Which cores each kind of process runs on (the default on two cores or more; --no-pin turns
# it off): the proxy under test alone on one core, the load generator on the other, so the
# proxy is measured on a core of its own, as it runs in production, and the figures do not
# depend on how the scheduler happens to mix four busy processes over two cores. The backend
# goes where it disturbs least: beside the load generator when throughput is measured (beside
# the proxy it would take the proxy's CPU), beside the proxy when one connection's latency is
# (beside the load generator, "direct" would be a same-core hop no real backend is, and every
# proxy's added latency would look 10 us worse). Empty: unpinned.
PLACEMENT = {"load": set(), "proxy": set(), "backend": set(), "backend_latency": set()}


def place(pin):
    """Fills PLACEMENT: the last core for the proxy, the others for load and backend."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        for role in PLACEMENT:
            PLACEMENT[role] = set()
        return
    PLACEMENT["proxy"] = {cores[-1]}
    PLACEMENT["load"] = set(cores[:-1])
    PLACEMENT["backend"] = set(cores[:-1])
    PLACEMENT["backend_latency"] = {cores[-1]}


def placement_text():
    if not PLACEMENT["proxy"]:
        return "unpinned"
    return ("pinned: proxy on core %s, load generator on core %s, backend beside the load "
            "generator for throughput and beside the proxy for one connection's latency" % (
                ",".join(map(str, sorted(PLACEMENT["proxy"]))),
                ",".join(map(str, sorted(PLACEMENT["load"])))))


def pin_tree(pid, role):
    """Moves a running process (every thread, and its children's: nginx's workers) onto the
    cores of `role`."""
    cores = PLACEMENT.get(role)
    if not cores:
        return
    for process in [pid] + children_of(pid):
        try:
            threads = os.listdir("/proc/%d/task" % process)
        except OSError:
            continue
        for thread in threads:
            try:
                os.sched_setaffinity(int(thread), cores)
            except OSError:
                pass  # the thread ended


def child_setup(role):
    """preexec_fn for a child of `role` (None: wherever the scheduler puts it)."""
    cores = PLACEMENT.get(role) if role else None

    def setup():
        raise_nofile()
        if cores:
            os.sched_setaffinity(0, cores)  # inherited by every thread the child starts
    return setup


class Process:
    """A child in its own process group, output to a log file; stop() ends the whole group."""

    registry = []

    def __init__(self, name, argv, log_path, env=None, role=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log = open(log_path, "wb")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env,
                                      start_new_session=True, preexec_fn=child_setup(role))
        self.pid = self.popen.pid
        Process.registry.append(self)

    def alive(self):
        return self.popen.poll() is None

    def wait_for_line(self, pattern, timeout=15.0):
        """Waits until the log holds a line matching `pattern`; returns the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "r", errors="replace") as f:
                for line in f:
                    m = regex.search(line)
                    if m:
                        return m
            if not self.alive():
                raise BenchError("%s exited with %s before saying %r:\n%s" % (
                    self.name, self.popen.returncode, pattern, self.tail()))
            time.sleep(0.02)
        raise BenchError("%s did not say %r within %.0f s:\n%s" % (
            self.name, pattern, timeout, self.tail()))

    def tail(self, lines=15):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (nginx workers, a stuck child) goes now.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()
        if self in Process.registry:
            Process.registry.remove(self)

    @classmethod
    def stop_all(cls):
        for proc in reversed(list(cls.registry)):
            proc.stop()


def run_command(argv, timeout, env=None, role=None):
    """Runs a short-lived child to completion in its own group; returns (rc, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=full_env, start_new_session=True,
                             preexec_fn=child_setup(role))
    try:
        out, err = popen.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.communicate()
        raise
    return popen.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if not proc.alive():
                raise BenchError("%s exited with %s:\n%s" % (proc.name, proc.popen.returncode,
                                                             proc.tail()))
            time.sleep(0.02)
    raise BenchError("%s never listened on port %d:\n%s" % (proc.name, port, proc.tail()))


# --------------------------------------------------------------------------------------------
# /proc


def cpu_split(pid):
    """(utime, stime) of the whole process (every thread), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    return sum(cpu_split(pid))


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux 4.0+), so each run reports its own peak."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def nginx_worker_pid(master):
    """The pid of the one worker of the nginx whose master is `master`: the process that serves."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = children_of(master.pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise BenchError("%s started no worker:\n%s" % (master.name, master.tail()))


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def machine_info():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    def first_line(argv):
        try:
            rc, out, err = run_command(argv, 10)
        except OSError:
            return ""
        text = (out + err).strip()
        return text.splitlines()[0] if text else ""

    nginx_version = first_line(["nginx", "-v"])
    wrk_version = first_line(["wrk", "--version"]).split(" Copyright")[0]
    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    if first_line(["git", "-C", ROOT, "status", "--porcelain"]):
        commit += " (modified)"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "loadavg_at_start": loadavg,
        "nginx": nginx_version,
        "wrk": wrk_version,
        "commit": commit,
        "rlimit_nofile_hard": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


# --------------------------------------------------------------------------------------------
# HTTP helpers (for set-up only; load comes from wrk and spillway-bench-client)


def http_request(url, body=None, headers=None, timeout=10.0):
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except (urllib.error.URLError, OSError) as e:
        raise BenchError("%s: %s" % (url, e))


def mock_connections(port):
    """The mock's accepted connections by protocol ({"http1": N, "h2": N}), or None."""
    try:
        status, _, payload = http_request("http://127.0.0.1:%d/mock/stats" % port)
        return json.loads(payload).get("connections") if status == 200 else None
    except (BenchError, ValueError):
        return None


def chat_path(deployment):
    return "/openai/deployments/%s/chat/completions?api-version=%s" % (deployment, API_VERSION)


# --------------------------------------------------------------------------------------------
# configuration files


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


def agent_topology(instances, routes):
    """A standalone topology: `instances` maps instance name -> (endpoint, [(deployment, sku)]);
    `routes` maps route name -> tiers, each tier a list of "instance/deployment". One pool per
    tier, one tenant with a key, TPM/RPM limits and every route."""
    lines = ["# Written by tests/bench/bench.py.",
             "stamps: [ { name: us } ]",
             "regions: [ { name: %s, stamp: us } ]" % REGION,
             "subscriptions: [ { name: bench } ]",
             "instances:"]
    for name, (endpoint, _) in instances.items():
        lines.append('  - { name: %s, region: %s, subscription: bench, endpoint: "%s", insecure_http: true, '
                     "auth: { api_key_env: %s } }" % (name, REGION, endpoint, BACKEND_KEY_ENV))
    lines.append("deployments:")
    for name, (_, deployments) in instances.items():
        for deployment, sku in deployments:
            lines.append('  - { instance: %s, name: %s, model: gpt-4o, version: "1", sku: %s, '
                         "capacity: %d }" % (name, deployment, sku, HUGE_CAPACITY))
    lines.append("pools:")
    route_lines = []
    for route, tiers in routes.items():
        pools = []
        for i, members in enumerate(tiers):
            pool = "%s-t%d" % (route, i + 1)
            pools.append(pool)
            lines.append("  - { name: %s, members: [ %s ] }" % (
                pool, ", ".join("{ deployment: %s }" % m for m in members)))
        route_lines.append("  - { name: %s, stamp: us, tiers: [ %s ] }" % (route, ", ".join(pools)))
    lines.append("routes:")
    lines.extend(route_lines)
    lines.extend([
        "tenants:",
        "  - name: bench",
        "    stamp: us",
        "    priority: standard",
        "    routes: [ %s ]" % ", ".join(routes),
        "    limits: { tokens_per_minute: %d, requests_per_minute: %d }" % (HUGE_TPM, HUGE_RPM),
        "    api_keys: [ { name: bench, sha256: %s } ]" % sha256_hex(TENANT_KEY),
    ])
    return "\n".join(lines) + "\n"


def nginx_common(tmp, name, port, workers=1):
    """The parts of an nginx.conf both nginx roles share; everything lives under tmp/name."""
    prefix = os.path.join(tmp, name)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(prefix, sub), exist_ok=True)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    head = """# Written by tests/bench/bench.py.
daemon off;
worker_processes %d;
worker_rlimit_nofile %d;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections %d; }
""" % (workers, hard, prefix, prefix, max(1024, hard // 2 - 16))
    http = """  client_body_temp_path %s/client_body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  client_max_body_size 32m;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
""" % ((prefix,) * 5)
    return prefix, head, http


def paced_mock_args(tokens, ms_per_token=None):
    """The mock's arguments for the paced line's deployment "paced": answers of `tokens` tokens,
    `ms_per_token` apart (none: at once)."""
    args = ["--deployments", "paced:tpm=%d" % HUGE_TPM, "--completion-tokens", str(tokens)]
    return args + (["--ms-per-token", "%.3f" % ms_per_token] if ms_per_token else [])


def paced_body(tokens):
    """The paced line's request: a stream of `tokens` tokens."""
    return json.dumps({"messages": [{"role": "user", "content": "Hello, gateway."}],
                       "max_tokens": tokens, "stream": True}, separators=(",", ":"))


def nginx_proxy_conf(tmp, name, port, backend_port, failover_ports=None):
    """nginx as a reverse proxy: one worker, keep-alive upstream, no response buffering (SSE),
    default access log, the backend's key set on every request. With `failover_ports` (A, B),
    /failover/ goes to A and on a 429 to B, as the agent's failover route does (nginx's
    weighted round robin sends 1 request in 1,001 to B first)."""
    prefix, head, http = nginx_common(tmp, name, port)
    failover_upstream = failover_location = ""
    if failover_ports:
        failover_upstream = """  upstream failover {
    server 127.0.0.1:%d weight=1000 max_fails=0;
    server 127.0.0.1:%d weight=1 max_fails=0;
    keepalive 32;
  }
""" % failover_ports
        failover_location = """    location /failover/ {
      rewrite ^/failover/(.*)$ /$1 break;
      proxy_pass http://failover;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header api-key "%s";
      proxy_next_upstream error timeout http_429 non_idempotent;
      proxy_next_upstream_tries 2;
    }
""" % BACKEND_KEY
    conf = head + ("""http {
%s  access_log %s/access.log;
  upstream backend {
    server 127.0.0.1:%d;
    keepalive 512;
    keepalive_requests 10000000;
  }
""" + failover_upstream + """  server {
    listen 127.0.0.1:%d backlog=4096;
""" + failover_location + """
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header api-key "%s";
      proxy_buffering off;
      proxy_read_timeout 120s;
    }
  }
}
""") % (http, prefix, backend_port, port, BACKEND_KEY)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return prefix, path


def canned_words(count):
    words = ["Hello", " from", " a", " canned", " backend", " of", " fixed", " words", ":",
             " tokens", " are", " words", " and", " words", " are", " tokens."]
    return [words[i % len(words)] for i in range(count)]


def canned_completion():
    content = "".join(canned_words(SMALL_TOKENS))
    return json.dumps({
        "choices": [{"content_filter_results": {}, "finish_reason": "stop", "index": 0,
                     "logprobs": None,
                     "message": {"content": content, "refusal": None, "role": "assistant"}}],
        "created": 1700000000, "id": "chatcmpl-canned", "model": "gpt-4o",
        "object": "chat.completion", "prompt_filter_results": [],
        "system_fingerprint": "fp_canned",
        "usage": {"completion_tokens": SMALL_TOKENS, "prompt_tokens": 5,
                  "total_tokens": SMALL_TOKENS + 5,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}},
        separators=(",", ":"))


def canned_stream():
    """Azure's stream shape: a prompt-filter event, 50 deltas, a finish event, the usage
    event, [DONE]."""
    def chunk(choices):
        return "data: " + json.dumps({"choices": choices, "created": 1700000000,
                                      "id": "chatcmpl-canned", "model": "gpt-4o",
                                      "object": "chat.completion.chunk",
                                      "system_fingerprint": "fp_canned"},
                                     separators=(",", ":")) + "\n\n"
    events = ['data: {"choices":[],"created":0,"id":"","model":"","object":"",'
              '"prompt_filter_results":[]}\n\n']
    for i, word in enumerate(canned_words(STREAM_CHUNKS)):
        delta = {"content": word}
        if i == 0:
            delta["role"] = "assistant"
        events.append(chunk([{"content_filter_results": {}, "delta": delta,
                              "finish_reason": None, "index": 0, "logprobs": None}]))
    events.append(chunk([{"content_filter_results": {}, "delta": {}, "finish_reason": "stop",
                          "index": 0, "logprobs": None}]))
    # The usage event Azure sends when stream_options.include_usage is set, which the agent
    # always sets (and takes back out for a client that did not ask): nginx relays it too.
    events.append("data: " + json.dumps({
        "choices": [], "created": 1700000000, "id": "chatcmpl-canned", "model": "gpt-4o",
        "object": "chat.completion.chunk", "system_fingerprint": "fp_canned",
        "usage": {"completion_tokens": STREAM_CHUNKS, "prompt_tokens": 5,
                  "total_tokens": STREAM_CHUNKS + 5,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}},
        separators=(",", ":")) + "\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events)


def nginx_canned_conf(tmp, port):
    """nginx as the backend: a fixed Azure-shaped chat.completion, or a fixed 50-chunk SSE
    body for deployments whose name ends in -sse (nginx cannot look into the request body).
    The stream is too long for a `return` string, so it is a file; nginx serves files only to
    GET, hence the 405 -> error_page detour (which also discards the request body)."""
    prefix, head, http = nginx_common(tmp, "nginx-canned", port)
    completion = canned_completion()
    if "'" in completion or "$" in completion or "\\" in completion:
        raise BenchError("the canned completion cannot be quoted for nginx")
    root = os.path.join(prefix, "root")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "stream.sse"), "w") as f:
        f.write(canned_stream())
    conf = head + """http {
%s  access_log off;
  etag off;
  open_file_cache max=16;
  server {
    listen 127.0.0.1:%d backlog=4096;
    root %s;
    add_header x-ratelimit-remaining-requests 1000000;
    add_header x-ratelimit-remaining-tokens 100000000;
    location ~ ^/openai/deployments/[^/]+-sse/ {
      error_page 405 =200 /stream.sse;
      return 405;
    }
    location = /stream.sse {
      default_type text/event-stream;
    }
    location / {
      default_type application/json;
      return 200 '%s';
    }
  }
}
""" % (http, port, root, completion)
    path = os.path.join(prefix, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return prefix, path


def wrk_script(tmp, name, body, headers):
    """A wrk script: POST `body`; done() prints one JSON line (latencies in microseconds)."""
    path = os.path.join(tmp, "wrk-%s.lua" % name)
    header_lines = "".join('wrk.headers["%s"] = "%s"\n' % kv for kv in headers.items())
    with open(path, "w") as f:
        f.write("""-- Written by tests/bench/bench.py.
wrk.method = "POST"
wrk.body = [==[%s]==]
wrk.headers["Content-Type"] = "application/json"
%s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%%.0f,"duration_us":%%.0f,"bytes":%%.0f,"connect_errors":%%.0f,' ..
    '"read_errors":%%.0f,"write_errors":%%.0f,"status_errors":%%.0f,"timeouts":%%.0f,' ..
    '"p50":%%.0f,"p99":%%.0f,"p999":%%.0f,"mean":%%.1f,"max":%%.0f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
""" % (body, header_lines))
    return path


# --------------------------------------------------------------------------------------------
# the systems under test


class Stack:
    """One backend with an nginx proxy and an agent in front of it: the three targets a wrk
    scenario alternates between."""

    def __init__(self, bench, backend_kind):
        self.bench = bench
        self.kind = backend_kind  # "mock" or "nginx-canned"
        self.backend = None
        self.backend_pid = None
        self.backend_port = None
        self.nginx = None
        self.nginx_worker = None
        self.nginx_port = None
        self.nginx_access_log = None
        self.agent = None
        self.agent_port = None
        self.agent_access_log = None
        self.portkey = None  # with the canned backend, when run.sh installed it
        self.portkey_port = None
        self.portkey_streams = False  # Portkey answered a stream in check_targets
        self.metrics_status = None
        self.metrics_headers = {}
        self.metrics_has_tokens = False

    def start(self):
        b = self.bench
        if self.kind == "mock":
            self.backend = b.start_mock("mock-main", MAIN_MOCK_ARGS)
            self.backend_port = b.mock_port(self.backend)
            self.backend_pid = self.backend.pid
        else:
            self.backend_port = free_port()
            prefix, conf = nginx_canned_conf(b.tmp, self.backend_port)
            self.backend = Process("nginx-canned", ["nginx", "-p", prefix, "-e",
                                                    prefix + "/error.log", "-c", conf],
                                   os.path.join(b.tmp, "nginx-canned.out"), role="backend")
            wait_for_port(self.backend_port, self.backend)
            self.backend_pid = b.nginx_worker_pid(self.backend)
        self.nginx_port = free_port()
        failover_ports = None
        if b.failover_mocks is not None:
            failover_ports = tuple(b.mock_port(m) for m in b.failover_mocks)
        prefix, conf = nginx_proxy_conf(b.tmp, "nginx-proxy-" + self.kind, self.nginx_port,
                                        self.backend_port, failover_ports)
        self.nginx_access_log = os.path.join(prefix, "access.log")
        self.nginx = Process("nginx-proxy-" + self.kind, ["nginx", "-p", prefix, "-e",
                                                          prefix + "/error.log", "-c", conf],
                             os.path.join(b.tmp, "nginx-proxy-%s.out" % self.kind), role="proxy")
        wait_for_port(self.nginx_port, self.nginx)
        self.nginx_worker = b.nginx_worker_pid(self.nginx)

        instances = {"main": ("http://127.0.0.1:%d" % self.backend_port,
                              [("ptu", "ProvisionedManaged"), ("std", "Standard"),
                               ("ptu-sse", "ProvisionedManaged"), ("std-sse", "Standard")])}
        routes = {"chat": [["main/ptu"], ["main/std"]],
                  "chat-sse": [["main/ptu-sse"], ["main/std-sse"]]}
        if b.failover_mocks is not None:
            (a, b_) = b.failover_mocks
            instances["fo-a"] = ("http://127.0.0.1:%d" % b.mock_port(a), [("fo", "Standard")])
            instances["fo-b"] = ("http://127.0.0.1:%d" % b.mock_port(b_), [("fo", "Standard")])
            routes["failover"] = [["fo-a/fo"], ["fo-b/fo"]]
        self.agent, self.agent_port, self.agent_access_log = b.start_agent(
            "agent-" + self.kind, agent_topology(instances, routes))
        if self.kind != "mock":
            self.portkey, self.portkey_port = b.start_portkey()
        self.check_targets()

    def check_targets(self):
        """One request through each target before measuring, so a misconfiguration is an
        error message and not a table of failures."""
        if self.portkey is not None:
            self.check_portkey()
        for target in ("direct", "nginx", "agent"):
            for stream in (False, True):
                url, headers = self.url(target, stream)
                body = STREAM_BODY if stream else CHAT_BODY
                status, answer_headers, payload = http_request(url, body, dict(headers, **{
                    "Content-Type": "application/json"}))
                if status != 200:
                    raise BenchError("%s (%s backend, stream=%s) answered %d: %s" % (
                        target, self.kind, stream, status, payload[:300]))
                if target == "agent":
                    # Tier 1 (the PTU deployment) must serve: the Standard tier is a fallback.
                    served = {k.lower(): v for k, v in answer_headers.items()}.get(
                        "x-spillway-backend")
                    expected = "main/ptu-sse" if stream else "main/ptu"
                    if served is not None and served != expected:
                        self.bench.note("the agent served %s from %s, not tier 1 (%s)" % (
                            "streams" if stream else "requests", served, expected))
        # Scraped the way Prometheus would, without a key; with the tenant key if that fails.
        self.metrics_headers = {}
        for headers in ({}, {"api-key": TENANT_KEY}):
            status, _, _ = http_request("http://127.0.0.1:%d/metrics" % self.agent_port,
                                        headers=headers)
            self.metrics_status = status
            self.metrics_headers = headers
            if status == 200:
                break

    def check_portkey(self):
        """Portkey serves a chat completion or is left out, with a note saying why; a gateway
        that fails streams is measured without them."""
        for stream in (False, True):
            url, headers = self.url("portkey", stream)
            body = STREAM_BODY if stream else CHAT_BODY
            try:
                status, _, payload = http_request(url, body, dict(headers, **{
                    "Content-Type": "application/json"}), timeout=30)
            except BenchError as e:
                status, payload = 0, str(e).encode()
            if status == 200 and stream:
                self.portkey_streams = True
            elif status != 200:
                self.bench.note("Portkey %s answered %d to a %s: %s" % (
                    PORTKEY_VERSION, status, "stream" if stream else "chat completion",
                    payload[:200].decode(errors="replace")))
                if not stream:
                    self.portkey.stop()
                    self.portkey = None
                    return

    def targets_for(self, name):
        """The proxies a wrk scenario compares: Portkey joins where it is measured."""
        targets = ["direct", "nginx", "agent"]
        if self.portkey is not None and name in PORTKEY_SCENARIOS and (
                self.portkey_streams or not WRK_SCENARIOS[name][1]):
            targets.append("portkey")
        return tuple(targets)

    def url(self, target, stream):
        if target == "portkey":
            deployment = "ptu-sse" if stream else "ptu"
            return ("http://127.0.0.1:%d/v1/chat/completions" % self.portkey_port, {
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": "http://127.0.0.1:%d/openai/deployments/%s" % (
                    self.backend_port, deployment),
                "Authorization": "Bearer " + BACKEND_KEY})
        if target == "direct":
            deployment = "ptu-sse" if stream else "ptu"
            return ("http://127.0.0.1:%d%s" % (self.backend_port, chat_path(deployment)),
                    {"api-key": BACKEND_KEY})
        if target == "nginx":
            deployment = "ptu-sse" if stream else "ptu"
            return ("http://127.0.0.1:%d%s" % (self.nginx_port, chat_path(deployment)),
                    {"api-key": TENANT_KEY})
        route = "chat-sse" if stream else "chat"
        return ("http://127.0.0.1:%d%s" % (self.agent_port, chat_path(route)),
                {"api-key": TENANT_KEY})

    def measured_pid(self, target):
        """The process whose CPU and memory a run reports: the proxy, or the backend when
        measured directly."""
        return {"direct": self.backend_pid, "nginx": self.nginx_worker,
                "agent": self.agent.pid,
                "portkey": self.portkey.pid if self.portkey else None}[target]

    def access_log(self, target):
        return {"direct": None, "nginx": self.nginx_access_log,
                "agent": self.agent_access_log, "portkey": None}[target]

    def process(self, target):
        return {"direct": self.backend, "nginx": self.nginx, "agent": self.agent,
                "portkey": self.portkey}[target]

    def scrape_metrics(self):
        if self.metrics_status != 200:
            return None
        try:
            status, _, payload = http_request("http://127.0.0.1:%d/metrics" % self.agent_port,
                                              headers=self.metrics_headers)
        except BenchError:
            return None
        text = payload.decode(errors="replace")
        samples = [l for l in text.splitlines() if l and not l.startswith("#")]
        # Metered usage reaches /metrics on the agent's usage tick (seconds), not per request.
        tenant_tokens = [l for l in samples if "tenant" in l and "token" in l]
        self.metrics_has_tokens = self.metrics_has_tokens or bool(tenant_tokens)
        return {"status": status, "bytes": len(payload), "samples": len(samples),
                "tenant_token_samples": len(tenant_tokens)}

    def stop(self):
        for proc in (self.portkey, self.agent, self.nginx, self.backend):
            if proc is not None:
                proc.stop()


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(os.path.join(ROOT, args.build))
        self.tmp = tempfile.mkdtemp(prefix="spillway-bench-")
        os.chmod(self.tmp, 0o755)  # nginx workers may run as another user
        self.failover_mocks = None
        self.results = {"machine": machine_info(), "settings": {}, "scenarios": {},
                        "targets": [], "notes": []}
        self.quick = args.quick
        self.duration = args.duration or (2 if args.quick else 5)
        self.rounds = args.rounds or (5 if args.quick else ROUNDS)
        self.mock_pass_rounds = (min(self.rounds, MOCK_PASS_ROUNDS)
                                 if args.backend == "auto" and not args.rounds else self.rounds)
        self.results["settings"] = {"quick": self.quick, "duration_s": self.duration,
                                    "rounds": self.rounds, "build": self.build,
                                    "mock_pass_rounds": self.mock_pass_rounds,
                                    "paced_rounds": 1 if self.quick else self.rounds,
                                    "agent_threads": 1, "wrk_threads": 1,
                                    "placement": placement_text(),
                                    "agent_build": args.agent_build}
        self.binaries = {
            "agent": (os.path.abspath(os.path.join(ROOT, args.agent)) if args.agent else
                      os.path.join(self.build, "dataplane", "spillway-agent")),
            "mock": os.path.join(self.build, "tests", "mock_aoai", "spillway-mock-aoai"),
            "client": os.path.join(self.build, "tests", "bench", "spillway-bench-client"),
            "alloc": os.path.join(self.build, "tests", "bench", "libspillway_alloc_counter.so"),
            "controlplane": os.path.join(self.build, "tests", "bench",
                                         "spillway-bench-controlplane"),
            "portkey": os.path.join(self.build, "bench-portkey", "node_modules", "@portkey-ai",
                                    "gateway", "build", "start-server.js"),
        }

    # --- helpers ------------------------------------------------------------------------------

    def note(self, text):
        print("note: " + text, flush=True)
        self.results["notes"].append(text)

    def target(self, name, value, limit, unit, passed, detail="", kind="max"):
        """Records one target line. kind: 'max' (value <= limit), 'min' (value >= limit)."""
        entry = {"name": name, "value": value, "limit": limit, "unit": unit,
                 "pass": bool(passed), "kind": kind, "detail": detail}
        self.results["targets"].append(entry)
        print(format_target(entry), flush=True)

    def error(self, name, exception):
        entry = {"name": name, "value": None, "limit": None, "unit": "", "pass": False,
                 "kind": "error", "detail": "could not run: %s" % exception}
        self.results["targets"].append(entry)
        print(format_target(entry), flush=True)

    def info(self, name, value, unit, detail=""):
        entry = {"name": name, "value": value, "limit": None, "unit": unit, "pass": None,
                 "kind": "info", "detail": detail}
        self.results["targets"].append(entry)
        print(format_target(entry), flush=True)

    def start_mock(self, name, args):
        proc = Process(name, [self.binaries["mock"], "--listen", "127.0.0.1:0", "--api-keys",
                              BACKEND_KEY, "--idle-timeout-ms", str(MOCK_IDLE_TIMEOUT_MS)] + args,
                       os.path.join(self.tmp, name + ".log"), role="backend")
        proc.wait_for_line(r"listening on [^:]+:(\d+)")
        return proc

    def mock_port(self, proc):
        return int(proc.wait_for_line(r"listening on [^:]+:(\d+)").group(1))

    def start_agent(self, name, topology, extra_env=None, extra_args=None):
        path = os.path.join(self.tmp, name + "-topology.yaml")
        with open(path, "w") as f:
            f.write(topology)
        access_log = os.path.join(self.tmp, name + "-access.log")
        env = {BACKEND_KEY_ENV: BACKEND_KEY}
        env.update(extra_env or {})
        proc = Process(name, [self.binaries["agent"], "--region", REGION, "--topology", path,
                              "--listen", "127.0.0.1:0", "--threads", "1", "--access-log",
                              access_log, "--drain-timeout-ms", "1000"] + (extra_args or []),
                       os.path.join(self.tmp, name + ".log"), env=env, role="proxy")
        port = int(proc.wait_for_line(r"listening on [^:]+:(\d+)").group(1))
        return proc, port, access_log

    def start_portkey(self):
        """(process, port), or (None, None) with a note when it is not installed."""
        if shutil.which("node") is None or not os.path.exists(self.binaries["portkey"]):
            self.note("Portkey %s is not installed (tests/bench/run.sh installs it with npm): "
                      "no Portkey rows" % PORTKEY_VERSION)
            return None, None
        port = free_port()
        proc = Process("portkey", ["node", self.binaries["portkey"], "--port=%d" % port,
                                   "--headless"], os.path.join(self.tmp, "portkey.log"),
                       env={"NODE_ENV": "production"}, role="proxy")
        wait_for_port(port, proc, timeout=60)
        return proc, port

    def nginx_worker_pid(self, master):
        return nginx_worker_pid(master)

    def client(self, args, timeout):
        rc, out, err = run_command([self.binaries["client"]] + args, timeout, role="load")
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise BenchError("spillway-bench-client printed no summary (rc %d): %s" % (rc, err[-800:]))

    def check_binaries(self):
        missing = [path for key, path in self.binaries.items()
                   if key not in ("controlplane", "portkey") and not os.path.exists(path)]
        if missing:
            raise BenchError("not built: %s (run tests/bench/run.sh, or pass --build DIR)" %
                             ", ".join(missing))
        for tool in ("nginx", "wrk"):
            if shutil.which(tool) is None:
                raise BenchError("%s is not installed (tests/bench/run.sh installs it)" % tool)

    # --- wrk scenarios --------------------------------------------------------------------------

    def run_wrk(self, stack, target, connections, stream, duration):
        url, headers = stack.url(target, stream)
        script = wrk_script(self.tmp, "%s-%s-%s" % (stack.kind, target, "sse" if stream else
                                                     "chat"), STREAM_BODY if stream else
                            CHAT_BODY, headers)
        pid = stack.measured_pid(target)
        proxy = stack.process(target)
        log = stack.access_log(target)
        if log:
            os.truncate(log, 0)
        peak_reset = reset_peak_rss(pid)
        user_before, sys_before = cpu_split(pid)
        rc, out, err = run_command(["wrk", "-t1", "-c%d" % connections, "-d%ds" % duration,
                                    "--timeout", "10s", "-s", script, url], duration + 60,
                                   role="load")
        user_after, sys_after = cpu_split(pid) if proxy.alive() else (user_before, sys_before)
        if not proxy.alive():
            raise BenchError("%s died during the run (exit %s):\n%s" % (
                proxy.name, proxy.popen.returncode, proxy.tail()))
        line = next((l for l in out.splitlines() if l.startswith("BENCHJSON ")), None)
        if line is None:
            raise BenchError("wrk printed no summary (rc %d): %s %s" % (rc, out[-500:], err[-500:]))
        w = json.loads(line[len("BENCHJSON "):])
        requests = w["requests"]
        seconds = w["duration_us"] / 1e6
        errors = (w["connect_errors"] + w["read_errors"] + w["write_errors"] +
                  w["status_errors"] + w["timeouts"])
        run = {
            "requests": requests,
            "rps": requests / seconds if seconds > 0 else 0.0,
            "p50_us": w["p50"], "p99_us": w["p99"], "p999_us": w["p999"],
            "mean_us": w["mean"], "max_us": w["max"],
            "errors": errors,
            "non_2xx": w["status_errors"],
            "error_detail": {k: w[k] for k in ("connect_errors", "read_errors", "write_errors",
                                               "status_errors", "timeouts") if w[k]},
            "cpu_s_per_10k": ((user_after - user_before + sys_after - sys_before) / requests *
                              10000 if requests else None),
            "user_s_per_10k": (user_after - user_before) / requests * 10000 if requests else None,
            "sys_s_per_10k": (sys_after - sys_before) / requests * 10000 if requests else None,
            "peak_rss_mib": status_kib(pid, "VmHWM") / 1024.0,
            "peak_is_per_run": peak_reset,
        }
        if log:
            time.sleep(0.2)  # the agent writes its log asynchronously
            run["access_log_lines"] = count_lines(log)
            os.truncate(log, 0)
        return run

    def wrk_scenario(self, stack, name):
        connections, stream = WRK_SCENARIOS[name]
        print("== %s: %d connection%s, %s, %s backend" % (
            name, connections, "" if connections == 1 else "s",
            "SSE streams of %d chunks" % STREAM_CHUNKS if stream else
            "small chat completions (%d tokens)" % SMALL_TOKENS, stack.kind), flush=True)
        pin_tree(stack.backend.pid, "backend_latency" if connections == 1 else "backend")
        targets = stack.targets_for(name)
        for target in targets:  # warm pools, caches and allocator arenas; not measured
            self.run_wrk(stack, target, connections, stream, 1)
        rounds = {t: [] for t in targets}
        for r in range(self.wrk_rounds(stack)):
            for target in round_order(targets, r):
                run = self.run_wrk(stack, target, connections, stream, self.duration)
                rounds[target].append(run)
                print("   round %d %-6s %9.0f req/s  p50 %6.0f us  p99 %7.0f us  errors %d" % (
                    r + 1, target, run["rps"], run["p50_us"], run["p99_us"], run["errors"]),
                    flush=True)
        result = {"kind": "wrk", "connections": connections, "stream": stream,
                  "backend": stack.kind, "targets": {}}
        for target in targets:
            ordered = sorted(rounds[target], key=lambda run: run["rps"])
            median = dict(ordered[len(ordered) // 2])
            median["errors_all_rounds"] = sum(run["errors"] for run in rounds[target])
            median["rounds"] = rounds[target]
            result["targets"][target] = median
        for target in ("nginx", "agent"):
            short = [run for run in rounds[target]
                     if run.get("access_log_lines", run["requests"]) < run["requests"]]
            if short:
                self.note("%s %s: the access log has fewer lines than requests answered (%d < %d)"
                          % (name, target, short[0]["access_log_lines"], short[0]["requests"]))
        a, n = result["targets"]["agent"], result["targets"]["nginx"]
        result["ratios"] = ratios(a, n)
        if "portkey" in result["targets"]:
            result["ratios_portkey"] = ratios(a, result["targets"]["portkey"])
        metrics = stack.scrape_metrics()
        if metrics is not None:
            result["agent_metrics_scrape"] = metrics
        return result

    def wrk_rounds(self, stack):
        """The judged backend's pass has every round; the mock's pass under --backend auto
        (judged only on a machine where the mock is fast enough) has MOCK_PASS_ROUNDS."""
        return self.mock_pass_rounds if stack.kind == "mock" else self.rounds

    # --- scenario drivers ------------------------------------------------------------------------

    def backend_headroom(self, scenarios):
        """Direct throughput over the best proxied figure at the throughput levels."""
        worst = None
        for name in ("c32", "c256", "sse"):
            if name not in scenarios:
                continue
            t = scenarios[name]["targets"]
            best_proxied = max(t["nginx"]["rps"], t["agent"]["rps"])
            factor = t["direct"]["rps"] / best_proxied if best_proxied else float("inf")
            worst = factor if worst is None else min(worst, factor)
        return worst

    def judge_wrk(self, scenarios, backend):
        """Issue 19's targets for the wrk scenarios. Each ratio is the median of the per-round
        ratios (agent and nginx measured one after the other in the same round), with their
        spread, so a slow minute of the host moves both sides of a ratio together."""
        suffix = " (%s backend)" % backend
        if "c1" in scenarios:
            t = scenarios["c1"]["targets"]
            added, hop = round_hops(t, "agent"), round_hops(t, "nginx")
            errs = t["agent"]["errors_all_rounds"] + t["direct"]["errors_all_rounds"]
            self.target("added_latency_c1_vs_nginx_hop", added["median"], hop["median"], "us",
                        added["median"] <= hop["median"] and errs == 0,
                        "median over rounds of p50 - the same round's direct p50: agent %.0f "
                        "us (rounds %s), nginx's own hop %.0f us (rounds %s)%s%s" % (
                            added["median"], added["text"], hop["median"], hop["text"], suffix,
                            "; %d errors" % errs if errs else ""))
        for name in ("c32", "c256", "sse"):
            if name not in scenarios:
                continue
            t = scenarios[name]["targets"]
            errs = t["agent"]["errors_all_rounds"] + t["nginx"]["errors_all_rounds"]
            err_text = "; %d errors/non-2xx" % errs if errs else ""
            unit = "streams" if name == "sse" else "req"
            rps = round_ratios(t, "rps")
            self.target("throughput_%s_vs_nginx" % name, rps["median"], 1.0, "x",
                        rps["median"] >= 1.0 and errs == 0,
                        "agent %.0f %s/s, nginx %.0f %s/s (median rounds); per-round ratios %s%s%s"
                        % (t["agent"]["rps"], unit, t["nginx"]["rps"], unit, rps["text"], suffix,
                           err_text), kind="min")
            if name != "sse":
                p99 = round_ratios(t, "p99_us")
                self.target("p99_%s_vs_nginx" % name, p99["median"], 1.1, "x",
                            p99["median"] <= 1.1 and errs == 0,
                            "agent p99 %.0f us, nginx p99 %.0f us; per-round ratios %s%s%s" % (
                                t["agent"]["p99_us"], t["nginx"]["p99_us"], p99["text"], suffix,
                                err_text))
            cpu = round_ratios(t, "cpu_s_per_10k")
            self.target("cpu_%s_vs_nginx" % name, cpu["median"], 1.0, "x",
                        cpu["median"] <= 1.0 and errs == 0,
                        "CPU seconds per 10k %s, agent %.2f, nginx %.2f (user %.2f vs %.2f); "
                        "per-round ratios %s%s" % (
                            unit, t["agent"]["cpu_s_per_10k"], t["nginx"]["cpu_s_per_10k"],
                            t["agent"]["user_s_per_10k"], t["nginx"]["user_s_per_10k"],
                            cpu["text"], suffix))
        self.judge_portkey(scenarios, suffix)

    def judge_portkey(self, scenarios, suffix):
        """Portkey's rows: the 32-connection throughput ratio is a target, the rest INFO."""
        measured = [n for n in PORTKEY_SCENARIOS if n in scenarios and
                    "portkey" in scenarios[n]["targets"]]
        if not measured:
            return
        for name in measured:
            t = scenarios[name]["targets"]
            a, k = t["agent"], t["portkey"]
            rps_ratio = a["rps"] / k["rps"] if k["rps"] else float("inf")
            detail = "agent %.0f req/s, Portkey %s %.0f req/s; p50 %.0f vs %.0f us%s%s" % (
                a["rps"], PORTKEY_VERSION, k["rps"], a["p50_us"], k["p50_us"], suffix,
                "; %d Portkey errors" % k["errors_all_rounds"] if k["errors_all_rounds"] else "")
            if name == "c32":
                self.target("throughput_c32_vs_portkey", round(rps_ratio, 1), PORTKEY_MIN_RATIO,
                            "x", rps_ratio >= PORTKEY_MIN_RATIO and a["errors_all_rounds"] == 0,
                            detail, kind="min")
            else:
                self.info("%s_vs_portkey" % name, round(rps_ratio, 1), "x", detail)
        if "c1" in measured:
            t = scenarios["c1"]["targets"]
            self.info("portkey_added_latency_c1", t["portkey"]["p50_us"] - t["direct"]["p50_us"],
                      "us", "Portkey p50 %.0f us - direct p50 %.0f us; the agent adds %.0f us" % (
                          t["portkey"]["p50_us"], t["direct"]["p50_us"],
                          t["agent"]["p50_us"] - t["direct"]["p50_us"]))

    def failover_scenario(self, stack):
        """Tier 1 answers 429 with retry-after-ms 1, tier 2 serves. Measured back to back at one
        connection, as c1 is: the agent honours the 1 ms retry-after, so the request that comes
        after it expires tries tier 1 again and fails over; the client sorts latencies by
        x-spillway-attempts, and the target compares the two-attempt requests with backend B
        called directly. Then the same paced (3 ms apart, every request fails over) for scale:
        there every hop pays idle vCPUs' wake-ups, whoever proxies."""
        print("== failover: tier 1 answers 429 (retry-after 1 ms), tier 2 serves", flush=True)
        a, b = self.failover_mocks
        for mock in self.failover_mocks:
            pin_tree(mock.pid, "backend_latency")  # one connection's latency, as c1
        direct_url = "http://127.0.0.1:%d%s" % (self.mock_port(b), chat_path("fo"))
        agent_url = "http://127.0.0.1:%d%s" % (stack.agent_port, chat_path("failover"))
        # nginx doing the same (proxy_next_upstream http_429; max_fails=0, so every request
        # tries A first).
        nginx_url = "http://127.0.0.1:%d/failover%s" % (stack.nginx_port, chat_path("fo"))
        targets = (("direct_b", direct_url, BACKEND_KEY), ("agent", agent_url, TENANT_KEY),
                   ("nginx", nginx_url, BACKEND_KEY))
        result = {}
        for mode, pause_us, requests in (("back_to_back", 0, 1500 if self.quick else 5000),
                                         ("paced", 3000, 300 if self.quick else 1000)):
            runs = {name: [] for name, _, _ in targets}
            for r in range(FAILOVER_ROUNDS):
                for which, url, key in targets:
                    summary = self.client(["--mode", "paced", "--url", url, "--header",
                                           "api-key:" + key, "--body", CHAT_BODY, "--requests",
                                           str(requests), "--warmup", "20", "--pause-us",
                                           str(pause_us), "--count-header",
                                           "x-spillway-attempts"], timeout=300)
                    runs[which].append(summary)
                    by_value = summary.get("latency_us_by_header_value", {})
                    print("   %-12s round %d %-8s p50 %6d us  p99 %6d us  status %s  "
                          "attempts %s" % (
                              mode, r + 1, which, summary["latency_us"]["p50"],
                              summary["latency_us"]["p99"], summary["status"],
                              {k: "%d (p50 %d us)" % (v["count"], v["p50"])
                               for k, v in by_value.items()}), flush=True)
            if not stack.agent.alive():
                raise BenchError("the agent died in the failover scenario:\n" +
                                 stack.agent.tail())
            result[mode] = self.failover_figures(runs, pause_us, requests)
        self.failover_targets(result)
        return result

    @staticmethod
    def failover_figures(runs, pause_us, requests):
        def median_p50(summaries, value=None):
            p50s = [(s["latency_us"] if value is None else
                     s.get("latency_us_by_header_value", {}).get(value, {})).get("p50")
                    for s in summaries]
            p50s = [p for p in p50s if p is not None]
            return statistics.median(p50s) if p50s else None

        def count(summaries, value):
            return sum(s.get("header_values", {}).get(value, 0) for s in summaries)

        agent = runs["agent"]
        total = sum(s["requests"] for s in agent)
        direct_p50 = median_p50(runs["direct_b"])
        failover_p50 = median_p50(agent, "2")
        nginx_p50 = median_p50(runs["nginx"])
        return {
            "pause_us": pause_us, "requests_per_round": requests, "runs": runs,
            "direct_b_p50_us": direct_p50,
            # Requests that tried A, got its 429, and were served by B.
            "agent_failover_p50_us": failover_p50,
            "agent_failover_count": count(agent, "2"),
            # Requests the agent sent straight to B while A's retry-after ran.
            "agent_one_attempt_p50_us": median_p50(agent, "1"),
            "agent_one_attempt_count": count(agent, "1"),
            "agent_other_attempt_counts": total - count(agent, "1") - count(agent, "2"),
            "added_us": None if failover_p50 is None else failover_p50 - direct_p50,
            "errors_or_non_2xx": sum(s["errors"] + s["non_2xx"] for s in agent + runs["direct_b"]),
            "nginx_p50_us": nginx_p50, "nginx_added_us": nginx_p50 - direct_p50,
            "nginx_errors_or_non_2xx": sum(s["errors"] + s["non_2xx"] for s in runs["nginx"]),
        }

    def failover_targets(self, result):
        b2b, paced = result["back_to_back"], result["paced"]
        added = b2b["added_us"]
        bad = b2b["errors_or_non_2xx"] + paced["errors_or_non_2xx"]
        # Enough real failovers to have a median, none needing a third attempt, and in the
        # paced run (3 ms > the 1 ms retry-after) every request failed over.
        paced_total = sum(s["requests"] for s in paced["runs"]["agent"])
        enough = b2b["agent_failover_count"] >= 100 and b2b["agent_other_attempt_counts"] == 0
        every_paced = paced["agent_failover_count"] == paced_total
        ok = added is not None and added <= 300 and enough and every_paced and bad == 0
        self.target("failover_added_latency", added, 300, "us", ok,
                    "back to back at 1 connection: the %d requests that failed over (x-spillway-"
                    "attempts=2) p50 %s us - backend B directly p50 %s us; nginx failing over "
                    "adds %s us%s%s" % (
                        b2b["agent_failover_count"], fmt(b2b["agent_failover_p50_us"]),
                        fmt(b2b["direct_b_p50_us"]), fmt(b2b["nginx_added_us"]),
                        "" if every_paced else "; the paced run had requests that did not fail "
                        "over", "; %d errors/non-2xx" % bad if bad else ""))
        self.info("failover_added_latency_paced", paced["added_us"], "us",
                  "requests 3 ms apart (idle processes, every request fails over): agent p50 %s "
                  "us - backend B p50 %s us; nginx failing over adds %s us" % (
                      fmt(paced["agent_failover_p50_us"]), fmt(paced["direct_b_p50_us"]),
                      fmt(paced["nginx_added_us"])))

    def streams_scenario(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # Over HTTP/1.1 the agent would hold two sockets per stream (client and upstream): 10k
        # streams need 20k descriptors, and this machine's hard limit may be exactly that. Over
        # HTTP/2 upstream (--upstream-http2) the streams share a few backend connections, so the
        # agent holds one socket per stream plus a few of its own.
        fit = hard - 64
        n = min(STREAMS_TARGET, fit)
        # "Idle-ish" streams of about 50 s: long enough that all of them are open at once even
        # when the ramp through the agent takes half a minute on a busy 2-core machine.
        ms_per_token = 1000
        print("== streams10k: %d concurrent SSE streams of %d chunks, %d ms apart, one agent" % (
            n, STREAM_CHUNKS, ms_per_token), flush=True)
        port_range = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        ports = int(port_range[1]) - int(port_range[0]) + 1
        if ports < 2 * n + 1000:
            self.note("ephemeral port range %s-%s may be too small for %d streams" % (
                port_range[0], port_range[1], n))
        slow = self.start_mock("mock-slow", [
            "--deployments", "slow:tpm=%d" % HUGE_TPM, "--completion-tokens",
            str(STREAM_CHUNKS), "--ms-per-token", str(ms_per_token)])
        agent = None
        try:
            agent, port, access_log = self.start_agent("agent-streams", agent_topology(
                {"slow": ("http://127.0.0.1:%d" % self.mock_port(slow), [("slow", "Standard")])},
                {"chat-slow": [["slow/slow"]]}), extra_args=["--upstream-http2"])
            expected = self.expected_content()
            hold = os.path.join(self.tmp, "streams.hold")
            time.sleep(0.5)
            idle_rss = status_kib(agent.pid, "VmRSS")
            reset_peak_rss(agent.pid)
            cpu_before = cpu_seconds(agent.pid)
            argv = [self.binaries["client"], "--mode", "streams", "--connections", str(n),
                    "--ramp", "500", "--url",
                    "http://127.0.0.1:%d%s" % (port, chat_path("chat-slow")), "--header",
                    "api-key:" + TENANT_KEY, "--body", STREAM_BODY, "--expect-chunks",
                    str(STREAM_CHUNKS), "--expect-content", expected, "--hold-file", hold]
            client_log = os.path.join(self.tmp, "streams-client.out")
            client = Process("bench-client-streams", argv, client_log, role="load")
            max_rss = 0
            at_hold = None
            deadline = time.monotonic() + 300
            while client.alive() and time.monotonic() < deadline:
                if not agent.alive():
                    break
                max_rss = max(max_rss, status_kib(agent.pid, "VmRSS"))
                if at_hold is None and os.path.exists(hold):
                    at_hold = {"rss_mib": status_kib(agent.pid, "VmRSS") / 1024.0,
                               "fds": open_fds(agent.pid),
                               "hold_line": open(hold).read().strip()}
                    print("   all streams open: %s; agent RSS %.1f MiB, %d fds" % (
                        at_hold["hold_line"], at_hold["rss_mib"], at_hold["fds"]), flush=True)
                time.sleep(0.1)
            agent_alive = agent.alive()
            backend_connections = mock_connections(self.mock_port(slow))
            hwm = status_kib(agent.pid, "VmHWM") if agent_alive else 0
            agent_cpu = cpu_seconds(agent.pid) - cpu_before if agent_alive else None
            if client.alive():
                client.stop()
                raise BenchError("the streams client did not finish within 300 s")
            client.stop()
            with open(client_log) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("{")]
            if not lines:
                raise BenchError("the streams client printed no summary:\n" + client.tail())
            summary = json.loads(lines[-1])
            if not agent_alive:
                self.note("the agent died during the 10k-stream scenario:\n" + agent.tail())
            peak_mib = max(hwm, max_rss) / 1024.0
            result = {"kind": "streams", "streams": n, "target_streams": STREAMS_TARGET,
                      "rlimit_nofile_hard": hard, "ms_per_token": ms_per_token,
                      "client": summary, "agent_idle_rss_mib": idle_rss / 1024.0,
                      "agent_at_all_open": at_hold, "agent_peak_rss_mib": peak_mib,
                      "agent_alive_after": agent_alive, "agent_cpu_s": agent_cpu,
                      "backend_connections": backend_connections,
                      "access_log_lines": count_lines(access_log)}
            print("   %d of %d streams OK, %d failed %s; %d content chunks; all open after %.1f s "
                  "(%d at once); agent peak RSS %.1f MiB, CPU %.1f s; backend h2 connections %s" % (
                      summary["ok"], n, summary["failed"], summary["failures"] or "",
                      summary["content_chunks"], summary["all_open_seconds"],
                      summary.get("open_at_all_open", -1), peak_mib, agent_cpu or 0,
                      (backend_connections or {}).get("h2")), flush=True)
            concurrent = summary.get("open_at_all_open", -1)
            all_ok = (summary["ok"] == n and summary["failed"] == 0 and agent_alive and
                      concurrent == n)
            if n < STREAMS_TARGET:
                detail = ("%s streams: RLIMIT_NOFILE hard limit %d allows at most %s (1 socket per "
                          "stream + 64); %d open at once, %d completed in order" % (
                              "{:,}".format(n), hard, "{:,}".format(fit), concurrent,
                              summary["ok"]))
                self.target("sse_10k_streams", summary["ok"], STREAMS_TARGET, "streams", False,
                            detail, kind="min")
            else:
                self.target("sse_10k_streams", summary["ok"], STREAMS_TARGET, "streams", all_ok,
                            "%d open at once; every chunk in order, [DONE] last; failures %s; "
                            "HTTP/2 upstream over %s backend connections" % (
                                concurrent, summary["failures"] or "none",
                                (backend_connections or {}).get("h2")),
                            kind="min")
            self.target("sse_10k_rss", round(peak_mib, 1), 300, "MiB",
                        peak_mib <= 300 and agent_alive,
                        "agent peak RSS with %s concurrent streams" % "{:,}".format(n))
            return result
        finally:
            if agent is not None:
                agent.stop()
            slow.stop()

    def paced_scenario(self):
        """PACED_STREAMS streams at once, each PACED_TOKENS_PER_S tokens a second for
        PACED_SECONDS, through nginx and then the agent (HTTP/1.1 upstream for both, as nginx
        has no other): every event in order, the proxy's CPU for the whole run, and the
        agent's memory per open stream."""
        tokens = PACED_TOKENS_PER_S * PACED_SECONDS
        ms_per_token = 1000.0 / PACED_TOKENS_PER_S
        print("== paced: %d concurrent streams of %d tokens, %.1f ms apart (%d events/s)" % (
            PACED_STREAMS, tokens, ms_per_token, PACED_STREAMS * PACED_TOKENS_PER_S), flush=True)
        mock = self.start_mock("mock-paced", paced_mock_args(tokens, ms_per_token))
        content_mock = self.start_mock("mock-paced-content", paced_mock_args(tokens))
        procs = [mock, content_mock]
        try:
            mock_port = self.mock_port(mock)
            expected = self.expected_content(content_mock, "paced", tokens)
            body = paced_body(tokens)
            nginx_port = free_port()
            prefix, conf = nginx_proxy_conf(self.tmp, "nginx-paced", nginx_port, mock_port)
            nginx = Process("nginx-paced", ["nginx", "-p", prefix, "-e", prefix + "/error.log",
                                            "-c", conf], os.path.join(self.tmp, "nginx-paced.out"),
                            role="proxy")
            procs.append(nginx)
            wait_for_port(nginx_port, nginx)
            agent, agent_port, _ = self.start_agent("agent-paced", agent_topology(
                {"paced": ("http://127.0.0.1:%d" % mock_port, [("paced", "Standard")])},
                {"chat-paced": [["paced/paced"]]}))
            procs.append(agent)
            rounds = self.results["settings"]["paced_rounds"]
            result = {"kind": "paced", "streams": PACED_STREAMS, "tokens": tokens,
                      "ms_per_token": ms_per_token, "rounds": rounds, "targets": {}}
            runs = (("nginx", self.nginx_worker_pid(nginx), nginx_port, chat_path("paced"),
                     BACKEND_KEY), ("agent", agent.pid, agent_port, chat_path("chat-paced"),
                                    TENANT_KEY))
            per_proxy = {name: [] for name, *_ in runs}
            for r in range(rounds):
                # Each goes first in every other round: neither always meets the host's drift.
                for name, pid, port, path, key in (runs if r % 2 == 0 else runs[::-1]):
                    per_proxy[name].append(self.paced_run(name, r, pid, port, path, key, body,
                                                          tokens, expected))
                print("   round %d: agent/nginx CPU %.2f" % (
                    r + 1, per_proxy["agent"][-1]["cpu_s"] / max(per_proxy["nginx"][-1]["cpu_s"],
                                                                 1e-9)), flush=True)
            for name, proxy_runs in per_proxy.items():
                median = dict(sorted(proxy_runs, key=lambda run: run["cpu_s"])[len(proxy_runs) // 2])
                median["rounds"] = proxy_runs
                result["targets"][name] = median
            self.judge_paced(result)
            return result
        finally:
            for proc in reversed(procs):
                proc.stop()

    def paced_run(self, name, round_index, pid, port, path, key, body, tokens, expected):
        hold = os.path.join(self.tmp, "paced-%s-%d.hold" % (name, round_index))
        time.sleep(0.5)
        idle_rss = status_kib(pid, "VmRSS")
        reset_peak_rss(pid)
        user_before, sys_before = cpu_split(pid)
        argv = [self.binaries["client"], "--mode", "streams", "--connections",
                str(PACED_STREAMS), "--ramp", "500", "--url", "http://127.0.0.1:%d%s" % (
                    port, path), "--header", ("api-key:" + key), "--body", body,
                "--expect-chunks", str(tokens), "--expect-content", expected, "--hold-file",
                hold]
        client_log = os.path.join(self.tmp, "paced-%s-%d-client.out" % (name, round_index))
        client = Process("bench-client-paced-" + name, argv, client_log, role="load")
        at_hold = None
        deadline = time.monotonic() + PACED_SECONDS + 120
        while client.alive() and time.monotonic() < deadline:
            if at_hold is None and os.path.exists(hold):
                at_hold = status_kib(pid, "VmRSS")
            time.sleep(0.1)
        user_after, sys_after = cpu_split(pid)
        peak = status_kib(pid, "VmHWM")
        if client.alive():
            client.stop()
            raise BenchError("the paced client (%s) did not finish in time" % name)
        client.stop()
        with open(client_log) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        if not lines:
            raise BenchError("the paced client (%s) printed no summary:\n%s" % (
                name, client.tail()))
        summary = json.loads(lines[-1])
        run = {"ok": summary["ok"], "failed": summary["failed"],
               "failures": summary["failures"], "content_chunks": summary["content_chunks"],
               "open_at_all_open": summary.get("open_at_all_open", -1),
               "cpu_s": user_after - user_before + sys_after - sys_before,
               "user_s": user_after - user_before, "sys_s": sys_after - sys_before,
               "idle_rss_mib": idle_rss / 1024.0, "peak_rss_mib": peak / 1024.0,
               "rss_all_open_mib": (at_hold or 0) / 1024.0,
               "duration_s": summary.get("duration_seconds", 0.0)}
        # The rate the events actually went through: the mock and the client share a core, and
        # when that core cannot keep up, the streams last longer than PACED_SECONDS.
        run["events_per_s"] = (summary["content_chunks"] / run["duration_s"]
                               if run["duration_s"] > 0 else 0.0)
        run["kib_per_stream"] = ((at_hold - idle_rss) / PACED_STREAMS) if at_hold else None
        print("   %-5s %d of %d streams in order (%d at once), CPU %.2f s (user %.2f, system "
              "%.2f), RSS %.1f -> %.1f MiB, %.1f s at %.0f events/s" % (
                  name, run["ok"], PACED_STREAMS, run["open_at_all_open"], run["cpu_s"],
                  run["user_s"], run["sys_s"], run["idle_rss_mib"], run["rss_all_open_mib"],
                  run["duration_s"], run["events_per_s"]), flush=True)
        return run

    def judge_paced(self, result):
        a, n = result["targets"]["agent"], result["targets"]["nginx"]
        every = a["rounds"] + n["rounds"]
        delivered = all(t["ok"] == PACED_STREAMS and t["failed"] == 0 for t in every)
        ratios = round_ratios(result["targets"], "cpu_s")
        ratio = ratios["median"]
        self.target("paced_cpu_vs_nginx", ratio, 1.0, "x", ratio <= 1.0 and delivered,
                    "agent %.2f s (user %.2f), nginx %.2f s (user %.2f) for %d streams of %d "
                    "events (median runs), delivered at %.0f and %.0f events/s; per-round ratios "
                    "%s; every event in order: %s" % (
                        a["cpu_s"], a["user_s"], n["cpu_s"], n["user_s"], PACED_STREAMS,
                        result["tokens"], a.get("events_per_s", 0), n.get("events_per_s", 0),
                        ratios["text"],
                        "yes, every run" if delivered else "NO (agent %s, nginx %s streams)" % (
                            [t["ok"] for t in a["rounds"]], [t["ok"] for t in n["rounds"]])))
        # From each proxy's first run: later runs reuse memory the first one grew.
        kib, nginx_kib = a["rounds"][0]["kib_per_stream"], n["rounds"][0]["kib_per_stream"]
        if kib is not None:
            self.info("paced_memory_per_stream", round(kib, 1), "KiB",
                      "agent RSS with every stream open over idle, per stream, first run "
                      "(nginx: %s KiB)" % (round(nginx_kib, 1) if nginx_kib is not None else "-"))

    def expected_content(self, mock=None, deployment="ptu", tokens=STREAM_CHUNKS):
        """The text a `tokens`-token answer of the mock holds: streams must concatenate to
        it."""
        mock = mock or self.mock_for_content
        status, _, payload = http_request(
            "http://127.0.0.1:%d%s" % (self.mock_port(mock), chat_path(deployment)),
            json.dumps({"messages": [{"role": "user", "content": "x"}],
                        "max_tokens": tokens}),
            {"api-key": BACKEND_KEY, "Content-Type": "application/json"})
        if status != 200:
            raise BenchError("%s answered %d to the content probe" % (mock.name, status))
        return json.loads(payload)["choices"][0]["message"]["content"]

    def idle_scenario(self):
        print("== idle: agent RSS with the example topology", flush=True)
        if not os.path.exists(EXAMPLE_TOPOLOGY):
            raise BenchError("no example topology at " + EXAMPLE_TOPOLOGY)
        with open(EXAMPLE_TOPOLOGY) as f:
            topology = f.read()
        # Keys for the api_key_env instances; managed identity points at a closed local port so
        # an idle agent never waits on the network (it only has to start and sit).
        env = {name: "idle-key" for name in re.findall(r"api_key_env:\s*(\w+)", topology)}
        agent, port, _ = self.start_agent("agent-idle", topology, extra_env=env, extra_args=[
            "--imds-endpoint", "http://127.0.0.1:%d" % free_port()])
        try:
            time.sleep(2.0)
            if not agent.alive():
                raise BenchError("the idle agent exited:\n" + agent.tail())
            rss = status_kib(agent.pid, "VmRSS") / 1024.0
            result = {"kind": "idle", "topology": EXAMPLE_TOPOLOGY, "rss_mib": rss,
                      "hwm_mib": status_kib(agent.pid, "VmHWM") / 1024.0,
                      "threads": status_kib(agent.pid, "Threads"),
                      "log_tail": agent.tail(6)}
            self.target("idle_rss", round(rss, 1), 30, "MiB", rss <= 30,
                        "agent VmRSS after 2 s idle, example topology, region %s" % REGION)
            return result
        finally:
            agent.stop()

    def allocs_scenario(self, mock_port):
        print("== allocs: heap allocations per request (LD_PRELOAD counter)", flush=True)
        count_file = os.path.join(self.tmp, "alloc-count.json")
        instances = {"main": ("http://127.0.0.1:%d" % mock_port,
                              [("ptu", "ProvisionedManaged"), ("std", "Standard"),
                               ("ptu-sse", "ProvisionedManaged"), ("std-sse", "Standard")])}
        routes = {"chat": [["main/ptu"], ["main/std"]],
                  "chat-sse": [["main/ptu-sse"], ["main/std-sse"]]}
        agent, port, _ = self.start_agent(
            "agent-allocs", agent_topology(instances, routes),
            extra_env={"LD_PRELOAD": self.binaries["alloc"],
                       "SPILLWAY_ALLOC_COUNT_FILE": count_file})

        def read_count():
            time.sleep(0.35)  # the counter rewrites its file every 100 ms
            with open(count_file) as f:
                return json.load(f)

        def paced(route, body, requests):
            summary = self.client(["--mode", "paced", "--url", "http://127.0.0.1:%d%s" % (
                port, chat_path(route)), "--header", "api-key:" + TENANT_KEY, "--body", body,
                "--requests", str(requests), "--warmup", "0", "--pause-us", "0"], timeout=300)
            if summary["errors"] or summary["non_2xx"]:
                raise BenchError("allocation run had errors: %s" % summary)

        try:
            result = {"kind": "allocs"}
            idle0 = read_count()
            time.sleep(1.0)
            idle1 = read_count()
            result["idle_allocations_per_s"] = (idle1["allocations"] - idle0["allocations"]) / (
                1.35)
            n1, n2 = (100, 1100) if self.quick else (500, 5500)
            for label, route, body in (("request", "chat", CHAT_BODY),
                                       ("stream", "chat-sse", STREAM_BODY)):
                paced(route, body, n1)  # connections, pools and caches warm
                c1 = read_count()
                paced(route, body, n2 - n1)
                c2 = read_count()
                per = (c2["allocations"] - c1["allocations"]) / float(n2 - n1)
                per_bytes = (c2["bytes"] - c1["bytes"]) / float(n2 - n1)
                result["per_" + label] = {"allocations": per, "bytes": per_bytes,
                                          "n1": n1, "n2": n2}
                detail = ("%s, %.0f bytes requested per %s; agent --threads 1, counted from "
                          "%d to %d sequential requests" % (
                              "non-streaming chat completion" if label == "request" else
                              "SSE stream of %d chunks" % STREAM_CHUNKS, per_bytes, label, n1,
                              n2))
                if label == "request":  # issue 19: at most 10 per request
                    self.target("allocations_per_request", round(per, 1), MAX_ALLOCS_PER_REQUEST,
                                "allocs", per <= MAX_ALLOCS_PER_REQUEST, detail)
                else:
                    self.info("allocations_per_%s" % label, round(per, 1), "allocs", detail)
            if not agent.alive():
                raise BenchError("the agent died under the allocation counter:\n" + agent.tail())
            return result
        finally:
            agent.stop()

    def controlplane_scenario(self):
        binary = self.binaries["controlplane"]
        print("== controlplane: %s" % binary, flush=True)
        if not os.path.exists(binary):
            self.error("controlplane_bench", "not built: " + binary)
            return {"kind": "controlplane", "ran": False}
        out_json = os.path.join(self.tmp, "controlplane.json")
        # One spillway-cp on SQLite takes seconds; three replicas on PostgreSQL with 1,000
        # agents and their reconnect storms take a minute or two on a busy 2-core machine.
        rc, out, err = run_command([binary, "--json", out_json], 1200)
        sys.stdout.write(out)
        try:
            with open(out_json) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self.error("controlplane_bench", "no JSON from %s (exit %d, %s): %s" % (
                binary, rc, e, err[-500:]))
            return {"kind": "controlplane", "ran": True, "rc": rc}
        for t in data.get("targets", []):
            name = str(t.get("name", "?"))
            if not name.startswith("controlplane"):
                name = "controlplane." + name
            if "error" in t:  # a scenario that could not run
                self.error(name, t["error"])
                continue
            entry = {"name": name, "value": t.get("value"),
                     "limit": t.get("limit"), "unit": t.get("unit", ""),
                     "pass": bool(t.get("pass")), "kind": "given",
                     "detail": t.get("detail") or "spillway-bench-controlplane"}
            self.results["targets"].append(entry)
            print(format_target(entry), flush=True)
        replicas = data.get("replicas") or {}
        if "skipped" in replicas:
            # Not a failure: the machine has no PostgreSQL to run the replicas on.
            print("SKIP controlplane.replicas %s" % replicas["skipped"], flush=True)
            self.note("controlplane replicas scenario skipped: %s" % replicas["skipped"])
        for i in replicas.get("info", []):
            self.info(str(i.get("name", "?")), i.get("value"), i.get("unit", ""),
                      i.get("detail", ""))
        return {"kind": "controlplane", "ran": True, "rc": rc, "report": data}

    # --- the whole run -----------------------------------------------------------------------------

    def run(self, only):
        self.check_binaries()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        raise_nofile()
        print("spillway benchmark: %s, %s cores, nofile hard limit %d, temp %s" % (
            self.results["machine"]["cpu_model"], self.results["machine"]["nproc"], hard,
            self.tmp), flush=True)
        scenarios = self.results["scenarios"]
        wrk_names = [n for n in ("c1", "c32", "c256", "sse") if n in only]
        need_stack = bool(wrk_names) or "failover" in only
        # One mock always runs: it is the backend and it tells what a stream must contain.
        stack = Stack(self, "mock")
        if "failover" in only:
            self.failover_mocks = (
                self.start_mock("mock-fo-a", ["--deployments", "fo:tpm=%d" % HUGE_TPM,
                                              "--fault", "status=429,retry_after_ms=1"]),
                self.start_mock("mock-fo-b", ["--deployments", "fo:tpm=%d" % HUGE_TPM]))
        if need_stack:
            try:
                stack.start()
            except BenchError as e:
                # Without the stack no wrk or failover line can be measured; the scenarios
                # that start processes of their own still run.
                self.error("start_mock_stack", e)
                stack.stop()
                wrk_names = []
                only = [n for n in only if n != "failover"]
                need_stack = False
        if need_stack:
            self.mock_for_content = stack.backend
        else:
            self.mock_for_content = self.start_mock("mock-main", MAIN_MOCK_ARGS)
        self.results["backend"] = "mock"
        try:
            for name in wrk_names:
                self.guard(name, lambda: scenarios.__setitem__(
                    name, self.wrk_scenario(stack, name)))
            if "failover" in only:
                self.guard("failover", lambda: scenarios.__setitem__(
                    "failover", self.failover_scenario(stack)))
            if need_stack:
                stack.scrape_metrics()
                self.record_agent_features(stack)
            if wrk_names:
                self.choose_backend(stack, wrk_names)
            if need_stack:
                stack.agent.stop()  # the other scenarios start agents of their own
                stack.nginx.stop()
            if "streams10k" in only:
                self.guard("streams10k", lambda: scenarios.__setitem__(
                    "streams10k", self.streams_scenario()))
            if "paced" in only:
                self.guard("paced", lambda: scenarios.__setitem__(
                    "paced", self.paced_scenario()))
            if "idle" in only:
                self.guard("idle", lambda: scenarios.__setitem__("idle", self.idle_scenario()))
            if "allocs" in only:
                self.guard("allocs", lambda: scenarios.__setitem__(
                    "allocs", self.allocs_scenario(self.mock_port(self.mock_for_content))))
        finally:
            stack.stop()
        if "controlplane" in only:
            self.guard("controlplane", lambda: scenarios.__setitem__(
                "controlplane", self.controlplane_scenario()))

    def guard(self, name, action):
        """Runs one scenario; a scenario that cannot be measured is a failed line, not the end
        of the benchmark."""
        try:
            action()
        except BenchError as e:
            self.error("scenario_" + name, e)

    def record_agent_features(self, stack):
        self.results["agent_features"] = {
            "client_key_check": "tenant api key (sha256 in the topology)",
            "routing": "route 'chat' -> tier 1 PTU deployment, tier 2 Standard deployment",
            "tenant_limits": "tokens_per_minute %d, requests_per_minute %d" % (HUGE_TPM, HUGE_RPM),
            "access_log": "JSON lines to a file (line counts checked per run)",
            "metrics": "GET /metrics answered %s%s" % (
                stack.metrics_status, "" if stack.metrics_status == 200 else
                " (no metrics endpoint yet: not scraped)"),
            "usage_metering": "per-tenant token usage%s" % (
                " (tenant token counters seen in /metrics)" if stack.metrics_has_tokens else
                " (no tenant token counters in /metrics by the end of the run)"),
        }
        if stack.metrics_status != 200:
            self.note("the agent's GET /metrics answered %s: metrics are not measured" %
                      stack.metrics_status)

    def choose_backend(self, stack, wrk_names):
        """Keeps the mock when it is at least 3x faster than any proxy; otherwise measures the
        throughput scenarios again with nginx serving canned replies as the backend."""
        mock_scenarios = {n: self.results["scenarios"][n] for n in wrk_names
                          if n in self.results["scenarios"]}
        factor = self.backend_headroom(mock_scenarios)
        forced = self.args.backend
        use_canned = forced == "canned" or (forced == "auto" and factor is not None and
                                            factor < 3)
        if factor is not None:
            print("mock backend headroom: direct is %.2fx the best proxied throughput" % factor,
                  flush=True)
        if not use_canned:
            if factor is not None:
                self.target("backend_not_bottleneck", round(factor, 2), 3, "x", factor >= 3,
                            "mock direct / best proxied req/s at c32, c256, sse", kind="min")
            self.judge_wrk(mock_scenarios, "mock")
            return
        if forced != "canned":
            self.note("the mock backend is only %.2fx faster than the best proxy (< 3x): "
                      "measured again with nginx serving canned replies as the backend" %
                      (factor or 0))
        # The mock stack's proxies go; the canned stack gets proxies of its own.
        stack.agent.stop()
        stack.nginx.stop()
        canned = Stack(self, "nginx-canned")
        try:
            canned.start()
            results = {}
            for name in wrk_names:
                try:
                    results[name] = self.wrk_scenario(canned, name)
                except BenchError as e:
                    self.error("scenario_%s_canned" % name, e)
            self.results["scenarios_mock_backend"] = mock_scenarios
            for name, value in results.items():
                self.results["scenarios"][name] = value
            self.results["backend"] = "nginx-canned"
            canned_factor = self.backend_headroom(results)
            # Step 1 of the issue: a mock under 3x is replaced by a faster backend "and say
            # so" -- that is this line. It is the benchmark's setup, not one of the targets.
            if canned_factor is not None:
                why = ("--backend canned" if forced == "canned" else
                       "the mock reached only %.2fx (< 3x)" % (factor or 0))
                self.info("backend_not_bottleneck", round(canned_factor, 2), "x",
                          "%s, so the throughput targets are judged against nginx serving "
                          "canned replies, whose direct req/s is %.2fx the best proxied figure "
                          "(wrk, proxy and backend share 2 cores)" % (why, canned_factor))
            self.judge_wrk(results, "nginx-canned")
        finally:
            canned.stop()


def round_order(targets, round_index):
    """The order of one round's runs: direct first, then the proxies, nginx and the agent
    swapping places every other round, so that neither always runs next to direct (whose p50
    each proxy's hop is taken from) or always meets the same point of the host's drift."""
    order = list(targets)
    if round_index % 2 == 1 and "nginx" in order and "agent" in order:
        i, j = order.index("nginx"), order.index("agent")
        order[i], order[j] = order[j], order[i]
    return order


def round_ratios(targets, key):
    """Agent / nginx for `key` in each round (the two ran back to back), their median and
    spread: {"median", "min", "max", "text"}."""
    values = []
    for a, n in zip(targets["agent"]["rounds"], targets["nginx"]["rounds"]):
        if a.get(key) is not None and n.get(key):
            values.append(a[key] / n[key])
    if not values:
        return {"median": float("nan"), "min": None, "max": None, "text": "none"}
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3),
            "text": "%.2f-%.2f over %d rounds" % (min(values), max(values), len(values))}


def round_hops(targets, proxy):
    """What `proxy` added to each round's p50 over the backend called directly in the same
    round (the two ran back to back), and their median: {"median", "text"}. A direct p50 from
    one round and a proxy's from another differ by the host's minute (99-140 us for direct
    alone within one run), which is more than the hop itself moves."""
    values = [p["p50_us"] - d["p50_us"]
              for p, d in zip(targets[proxy]["rounds"], targets["direct"]["rounds"])]
    if not values:
        return {"median": float("nan"), "text": "none"}
    return {"median": statistics.median(values), "text": "/".join("%d" % v for v in values)}


def ratios(agent, nginx):
    def div(a, b):
        return round(a / b, 3) if a is not None and b else None
    return {"rps": div(agent["rps"], nginx["rps"]),
            "p50": div(agent["p50_us"], nginx["p50_us"]),
            "p99": div(agent["p99_us"], nginx["p99_us"]),
            "p999": div(agent["p999_us"], nginx["p999_us"]),
            "cpu_per_10k": div(agent["cpu_s_per_10k"], nginx["cpu_s_per_10k"]),
            "peak_rss": div(agent["peak_rss_mib"], nginx["peak_rss_mib"])}


# --------------------------------------------------------------------------------------------
# reporting


def format_value(value):
    if isinstance(value, float):
        return "%.3g" % value if abs(value) < 10 else "{:,.0f}".format(value)
    if isinstance(value, int):
        return "{:,}".format(value)
    return str(value)


def format_target(t):
    if t["kind"] == "error":
        return "FAIL %s %s" % (t["name"], t["detail"])
    if t["kind"] == "info":
        return "INFO %s %s %s%s" % (t["name"], format_value(t["value"]), t["unit"],
                                    " (%s)" % t["detail"] if t["detail"] else "")
    op = {"max": "<=", "min": ">="}.get(t["kind"], "limit")
    return "%s %s %s %s (target %s %s %s%s)" % (
        "PASS" if t["pass"] else "FAIL", t["name"], format_value(t["value"]), t["unit"], op,
        format_value(t["limit"]), t["unit"], "; " + t["detail"] if t["detail"] else "")


def fmt(value, digits=0):
    if value is None:
        return "-"
    return ("{:,.%df}" % digits).format(value)


def table_rows(scenarios):
    rows = []
    for name in ("c1", "c32", "c256", "sse"):
        s = scenarios.get(name)
        if not s:
            continue
        for target in ("direct", "nginx", "agent", "portkey"):
            t = s["targets"].get(target)
            if t is None:
                continue
            rows.append([name, target, fmt(t["rps"]), fmt(t["p50_us"]), fmt(t["p99_us"]),
                         fmt(t["p999_us"]), fmt(t["cpu_s_per_10k"], 2),
                         fmt(t["peak_rss_mib"], 1), str(t["errors_all_rounds"])])
        for label, key in (("agent/nginx", "ratios"), ("agent/portkey", "ratios_portkey")):
            r = s.get(key)
            if r is None:
                continue
            rows.append([name, label, fmt(r["rps"], 2) + "x", fmt(r["p50"], 2) + "x",
                         fmt(r["p99"], 2) + "x", fmt(r["p999"], 2) + "x",
                         fmt(r["cpu_per_10k"], 2) + "x", fmt(r["peak_rss"], 2) + "x", ""])
    return rows


HEADER = ["scenario", "target", "req/s", "p50 us", "p99 us", "p99.9 us", "CPU s/10k req",
          "peak RSS MiB", "errors"]


def text_table(rows):
    widths = [max(len(str(r[i])) for r in [HEADER] + rows) for i in range(len(HEADER))]
    lines = ["  ".join(str(c).rjust(w) if i >= 2 else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths)))
             for row in [HEADER] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def detail_lines(scenarios):
    """One line per non-wrk scenario, with the figures behind its target lines."""
    lines = []
    f = scenarios.get("failover")
    if f:
        for mode, what in (("back_to_back", "back to back at 1 connection"),
                           ("paced", "paced, requests %d us apart" % f["paced"]["pause_us"])):
            m = f[mode]
            straight = ""
            if m["agent_one_attempt_count"]:
                straight = ", %s us on the %d sent straight to tier 2 during the retry-after" % (
                    fmt(m["agent_one_attempt_p50_us"]), m["agent_one_attempt_count"])
            lines.append(
                "failover, %s (tier 1 answers 429 with retry-after-ms 1, tier 2 serves): agent "
                "p50 %s us on the %d requests that failed over%s; backend B directly p50 %s us, "
                "added %s us; nginx with proxy_next_upstream http_429: p50 %s us, added %s us" % (
                    what, fmt(m["agent_failover_p50_us"]), m["agent_failover_count"], straight,
                    fmt(m["direct_b_p50_us"]), fmt(m["added_us"]), fmt(m["nginx_p50_us"]),
                    fmt(m["nginx_added_us"])))
    st = scenarios.get("streams10k")
    if st:
        c = st["client"]
        at = st.get("agent_at_all_open") or {}
        lines.append("streams10k: %s streams (%d ms per chunk), %s OK, %s failed %s; all open "
                     "after %.1f s with %s in flight; first event p50 %s us, p99 %s us; agent "
                     "RSS %s MiB with all open (%s fds), peak %s MiB, idle before %s MiB; agent "
                     "CPU %s s" % (
                         "{:,}".format(st["streams"]), st["ms_per_token"], c["ok"], c["failed"],
                         c["failures"] or "", c["all_open_seconds"],
                         c.get("open_at_all_open"), fmt(c["first_event_us"]["p50"]),
                         fmt(c["first_event_us"]["p99"]), fmt(at.get("rss_mib"), 1),
                         at.get("fds"), fmt(st["agent_peak_rss_mib"], 1),
                         fmt(st["agent_idle_rss_mib"], 1), fmt(st.get("agent_cpu_s"), 1)))
    i = scenarios.get("idle")
    if i:
        lines.append("idle: agent with %s, VmRSS %s MiB after 2 s, %s threads" % (
            os.path.basename(i["topology"]), fmt(i["rss_mib"], 1), i["threads"]))
    cp = (scenarios.get("controlplane") or {}).get("report") or {}
    r = cp.get("replicas") or {}
    if "storm" in r:
        st = r["storm"]
        lines.append(
            "controlplane replicas: %d spillway-cp on one PostgreSQL database, %s agents over "
            "them; Apply through replica 0 median %s ms; all acked median %s ms, worst %s ms "
            "(CPU per round: replicas %s ms, PostgreSQL %s ms, simulated agents %s ms); "
            "reconnect storm (to the %s replica) settled median %s ms, worst %s ms, last "
            "budget split %s ms (%s budget messages per agent); per replica during a storm: "
            "CPU %s ms, peak RSS %s MB; budget shares sum to %sx a tenant's limit" % (
                r["replicas"], "{:,}".format(r["agents"]), fmt(r["apply_ms"]["median"]),
                fmt(r["push_ms"]["median"]), fmt(r["push_ms"]["max"]),
                "/".join(fmt(c["median"]) for c in r["replica_cpu_ms"]),
                fmt(r["postgres_cpu_ms"]["median"]), fmt(r["agents_cpu_ms"]["median"]),
                st["reconnect_to"], fmt(st["recorded_ms"]["median"]),
                fmt(st["recorded_ms"]["max"]), fmt(st["budgets_last_ms"]["max"]),
                fmt(max(st.get("budget_messages_per_agent") or [0]), 1),
                "/".join(fmt(c["max"]) for c in st["replica_cpu_ms"]),
                "/".join(fmt(max(m)) for m in st["replica_peak_rss_mb"]),
                fmt(r["budget_overcommit"]["max"], 2)))
    a = scenarios.get("allocs")
    if a:
        parts = []
        for label in ("request", "stream"):
            p = a.get("per_" + label)
            if p:
                parts.append("%s allocations (%s bytes) per %s" % (
                    fmt(p["allocations"], 1), fmt(p["bytes"]), label))
        lines.append("allocs: %s; %s allocations/s idle" % (
            ", ".join(parts), fmt(a.get("idle_allocations_per_s"), 1)))
    return lines


def markdown(results):
    m = results["machine"]
    out = ["# Spillway benchmark: agent vs nginx", "",
           "Machine: %s cores, %s, Linux %s; %s; load average at start %s; %s; %s; commit %s." % (
               m["nproc"], m["cpu_model"], m["kernel"], m["date"], m["loadavg_at_start"],
               m["nginx"], m["wrk"], m["commit"]), "",
           "Settings: wrk -t1, %s s per run, %s rounds of direct then nginx and the agent, the "
           "two swapping places every other round (median round by req/s shown; the paced "
           "streams %s rounds, the mock's pass %d), agent --threads 1 (%s build), nginx 1 "
           "worker; %s; backend: **%s**%s." % (
               results["settings"]["duration_s"], results["settings"]["rounds"],
               results["settings"].get("paced_rounds", results["settings"]["rounds"]),
               results["settings"].get("mock_pass_rounds", results["settings"]["rounds"]),
               results["settings"].get("agent_build", "plain"),
               results["settings"].get("placement", "unpinned"),
               results.get("backend", "mock"), " (quick run)" if results["settings"]["quick"]
               else ""), ""]
    rows = table_rows(results["scenarios"])
    if rows:
        out.append("| " + " | ".join(HEADER) + " |")
        out.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADER))) + "|")
        for row in rows:
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        out.append("c1/c32/c256: small non-streaming chat completions (%d tokens) at 1, 32 and "
                   "256 connections; sse: streams of %d chunks at 32 connections. CPU: the "
                   "proxy process (the backend for 'direct'); peak RSS: VmHWM, reset before "
                   "each run." % (SMALL_TOKENS, STREAM_CHUNKS))
        out.append("")
    if results.get("scenarios_mock_backend"):
        out.append("With the mock as the backend (too slow to judge the proxies by, so not used "
                   "for the targets):")
        out.append("")
        out.append("| " + " | ".join(HEADER) + " |")
        out.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADER))) + "|")
        for row in table_rows(results["scenarios_mock_backend"]):
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| result | target | value | limit | detail |")
    out.append("|---|---|---:|---:|---|")
    for t in results["targets"]:
        result = "INFO" if t["kind"] == "info" else ("PASS" if t["pass"] else "FAIL")
        op = {"max": "≤ ", "min": "≥ "}.get(t["kind"], "")
        if t["kind"] == "error":
            out.append("| FAIL | %s | | | %s |" % (t["name"], str(t["detail"]).replace(
                "|", "/").replace("\n", " ")[:400]))
            continue
        limit = "" if t["limit"] is None else op + format_value(t["limit"]) + " " + t["unit"]
        out.append("| %s | %s | %s %s | %s | %s |" % (
            result, t["name"], format_value(t["value"]), t["unit"], limit,
            (t.get("detail") or "").replace("|", "/").replace("\n", " ")))
    out.append("")
    details = detail_lines(results["scenarios"])
    if details:
        out.append("## Other scenarios")
        out.append("")
        out.extend("- " + line for line in details)
        out.append("")
    if results.get("agent_features"):
        out.append("## Agent configuration")
        out.append("")
        for k, v in results["agent_features"].items():
            out.append("- %s: %s" % (k, v))
        out.append("")
    if results["notes"]:
        out.append("## Notes")
        out.append("")
        for note in results["notes"]:
            out.append("- " + note.replace("\n", " "))
        out.append("")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default="build", help="build directory (relative to the "
                        "repository root or absolute); default build/")
    parser.add_argument("--agent", default="", help="the spillway-agent to measure (default: "
                        "the build directory's; run.sh passes the profile-guided one)")
    parser.add_argument("--agent-build", default="plain", help="how that agent was built, for "
                        "the results (run.sh: profile-guided or plain)")
    parser.add_argument("--quick", action="store_true", help="short runs, for iterating")
    parser.add_argument("--only", default="", help="comma-separated scenarios, of: " +
                        ",".join(ALL_SCENARIOS))
    parser.add_argument("--duration", type=int, default=0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=0, help="rounds per judged wrk scenario "
                        "and for the paced streams (%d; the mock's pass under --backend auto: %d)"
                        % (ROUNDS, MOCK_PASS_ROUNDS))
    parser.add_argument("--backend", choices=["auto", "mock", "canned"], default="auto",
                        help="auto: the mock unless it is < 3x faster than the proxies")
    parser.add_argument("--keep-temp", action="store_true", help="keep configs and logs")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the scheduler place every process (default: the proxy under "
                        "test on a core of its own, load and backend on the other)")
    parser.add_argument("--results", default=RESULTS_DIR, help="where latest.{json,md} go")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()] or ALL_SCENARIOS
    unknown = [s for s in only if s not in ALL_SCENARIOS]
    if unknown:
        parser.error("unknown scenario(s) %s; known: %s" % (",".join(unknown),
                                                             ",".join(ALL_SCENARIOS)))

    # SIGTERM/SIGHUP end the run through the finally blocks, which stop every child.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: sys.exit(128 + number))

    place(not args.no_pin)
    bench = Bench(args)
    started = time.monotonic()
    try:
        bench.run(only)
    except BenchError as e:
        bench.error("benchmark", e)
    finally:
        Process.stop_all()
        if args.keep_temp:
            print("temp files kept in " + bench.tmp)
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    results = bench.results
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["only"] = only

    print()
    if results.get("scenarios_mock_backend"):
        print("mock backend (not used for the targets):")
        print(text_table(table_rows(results["scenarios_mock_backend"])))
        print()
        print("%s backend:" % results["backend"])
    rows = table_rows(results["scenarios"])
    if rows:
        print(text_table(rows))
        print()
    for line in detail_lines(results["scenarios"]):
        print(line)
    for t in results["targets"]:
        print(format_target(t))
    failed = [t for t in results["targets"] if t["pass"] is False]
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "latest.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(os.path.join(args.results, "latest.md"), "w") as f:
        f.write(markdown(results))
    print("\n%d target(s) failed, %d passed; %.0f s; results in %s/latest.{json,md}" % (
        len(failed), len([t for t in results["targets"] if t["pass"] is True]),
        results["elapsed_s"], args.results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
