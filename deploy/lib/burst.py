#!/usr/bin/env python3
"""The demo's traffic: chat completions from several tenants, streamed and not, through an
agent, then a report of what served them (per tier and backend), the spillover share, the
retries and what clients saw. Standard library only: it runs wherever the demo does."""
import argparse
import collections
import concurrent.futures
import json
import random
import threading
import time
import urllib.error
import urllib.request

PATH = "/openai/deployments/{route}/chat/completions?api-version=2024-10-21"


def one_request(agent, route, key, stream, max_tokens):
    """Sends one chat completion; returns (status, backend, attempts, prompt, completion)."""
    body = {"messages": [{"role": "user", "content": "Summarise the quarterly report."}],
            "max_tokens": max_tokens}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    request = urllib.request.Request(agent + PATH.format(route=route), data=json.dumps(body).encode(),
                                     headers={"api-key": key, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, error.headers.get("x-spillway-backend", ""), \
            int(error.headers.get("x-spillway-attempts", "0") or 0), 0, 0
    except OSError:
        return 0, "", 0, 0, 0
    usage = {}
    if stream:
        for line in text.splitlines():
            if line.startswith("data: {") and '"usage"' in line:
                usage = json.loads(line[6:]).get("usage") or usage
    else:
        usage = json.loads(text).get("usage") or {}
    return (status, headers.get("x-spillway-backend", ""),
            int(headers.get("x-spillway-attempts", "1") or 1),
            usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agent", required=True, help="http://host:port of an agent")
    parser.add_argument("--route", default="gpt-4o")
    parser.add_argument("--tenant", action="append", required=True, help="NAME=KEY, repeatable")
    parser.add_argument("--requests", type=int, default=0, help="how many (0: use --duration)")
    parser.add_argument("--duration", type=float, default=0, help="seconds of steady traffic")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--stream-share", type=float, default=0.3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--deployments", help="`spillwayctl get deployments -o json` output")
    parser.add_argument("--quiet", action="store_true", help="no report")
    args = parser.parse_args()
    tenants = [t.split("=", 1) for t in args.tenant]
    rng = random.Random(7)
    tiers = {}
    if args.deployments:
        with open(args.deployments) as f:
            for d in json.load(f).get("deployments", []):
                tiers[d["instance"] + "/" + d["name"]] = (
                    "PTU" if "Provisioned" in d.get("sku", "") else "Standard")

    results = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.duration

    def worker(index):
        count = 0
        while True:
            if args.requests:
                if index + count * args.concurrency >= args.requests:
                    return
            elif time.monotonic() >= deadline:
                return
            name, key = tenants[(index + count) % len(tenants)]
            with lock:
                stream = rng.random() < args.stream_share
            outcome = one_request(args.agent, args.route, key, stream, args.max_tokens)
            with lock:
                results.append((name, stream) + outcome)
            count += 1
            if args.duration and not args.requests:
                time.sleep(0.05)  # steady, not a flood: a drill watches where it goes

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(worker, range(args.concurrency)))
    elapsed = time.monotonic() - started
    if args.quiet:
        return

    by_backend = collections.defaultdict(lambda: [0, 0])
    errors = collections.Counter()
    retried = 0
    streamed = 0
    for name, stream, status, backend, attempts, prompt, completion in results:
        streamed += stream
        if status != 200:
            errors[status] += 1
            continue
        by_backend[backend][0] += 1
        by_backend[backend][1] += prompt + completion
        retried += attempts > 1
    ok = sum(v[0] for v in by_backend.values())
    print(f"{len(results)} requests from {len(tenants)} tenants in {elapsed:.1f} s "
          f"({streamed} streamed), concurrency {args.concurrency}")
    print(f"  {'TIER':<9}{'BACKEND':<28}{'REQUESTS':>9}{'TOKENS':>9}")
    for backend, (count, tokens) in sorted(by_backend.items(),
                                           key=lambda kv: (tiers.get(kv[0], ""), kv[0])):
        print(f"  {tiers.get(backend, '?'):<9}{backend:<28}{count:>9}{tokens:>9}")
    spilled = sum(v[0] for b, v in by_backend.items() if tiers.get(b) == "Standard")
    if ok:
        print(f"  spillover share: {100.0 * spilled / ok:.0f}% of the answered requests "
              f"went past the PTU tier")
    print(f"  retried on another backend before answering: {retried}")
    shown = ", ".join(f"{s} x{n}" for s, n in errors.most_common()) or "none"
    print(f"  client-visible errors: {shown}")


if __name__ == "__main__":
    main()
