#!/usr/bin/env python3
"""The code a request runs through, from a callgrind dump made with --dump-instr=yes
(profile.py --mode callgrind --footprint): distinct 64-byte instruction lines touched, by
object and by function, with instructions and, under --cache-sim, first-level
instruction-cache misses.

At 256 connections the agent's cost follows the instruction cache: a request runs through more
code than a 32 KiB cache holds, so every line it touches is fetched again by the next request.
Lines touched is that working set; misses say where it hurts.

  tests/bench/footprint.py DUMP [--requests N] [--top 40] [--by object|function]
"""

import argparse
import collections
import re
import sys

LINE = 64


def parse_number(text):
    return int(text, 16) if text.startswith("0x") else int(text)


class Dump:
    """Self cost per instruction address, keyed by (object, function)."""

    def __init__(self, path):
        self.events = []
        self.cost = collections.defaultdict(lambda: collections.defaultdict(list))
        names = {"ob": {}, "fn": {}}
        current = {"ob": "?", "fn": "?"}
        positions = ["line"]
        last = []
        skip_next = False
        name_re = re.compile(r"^\((\d+)\)(?: (.*))?$")
        with open(path, errors="replace") as f:
            for raw in f:
                line = raw.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                if line.startswith("positions:"):
                    positions = line.split()[1:]
                    last = [0] * len(positions)
                    continue
                if line.startswith("events:"):
                    self.events = line.split()[1:]
                    continue
                key, sep, value = line.partition("=")
                if sep and key in ("ob", "fn", "cob", "cfn", "fl", "fi", "fe", "cfi", "cfl"):
                    kind = key.lstrip("c")
                    if kind in names:
                        match = name_re.match(value)
                        if match:
                            ident, name = match.groups()
                            if name is not None:
                                names[kind][ident] = name
                            name = names[kind].get(ident, ident)
                        else:
                            name = value
                        if not key.startswith("c"):
                            current[kind] = name
                    continue
                if sep and key == "calls":
                    skip_next = True  # the next cost line is the call's inclusive cost
                    continue
                if not (line[0].isdigit() or line[0] in "+-*"):
                    continue
                fields = line.split()
                npos = len(positions)
                pos = []
                for i, text in enumerate(fields[:npos]):
                    if text == "*":
                        value = last[i]
                    elif text[0] in "+-":
                        sign = 1 if text[0] == "+" else -1
                        value = last[i] + sign * parse_number(text[1:])
                    else:
                        value = parse_number(text)
                    pos.append(value)
                last = pos
                if skip_next:
                    skip_next = False
                    continue
                values = [int(v) for v in fields[npos:]]
                values += [0] * (len(self.events) - len(values))
                if "instr" not in positions:
                    raise SystemExit("the dump has no instruction addresses: run callgrind "
                                     "with --dump-instr=yes (profile.py --footprint)")
                address = pos[positions.index("instr")]
                self.cost[(current["ob"], current["fn"])][address].append(values)

    def summary(self, by, requests):
        """{group: (lines run by most requests, instructions, I1 misses)}: a line counts when
        one of its instructions ran at least once per two requests, so the ticker's and other
        rare paths' lines do not."""
        ir = self.events.index("Ir")
        i1 = self.events.index("I1mr") if "I1mr" in self.events else None
        groups = collections.defaultdict(lambda: [collections.Counter(), 0, 0])
        for (obj, fn), addresses in self.cost.items():
            group = groups[obj.rsplit("/", 1)[-1] if by == "object" else fn]
            for address, rows in addresses.items():
                instructions = sum(row[ir] for row in rows)
                line = (obj, address // LINE)
                group[0][line] = max(group[0][line], instructions)
                group[1] += instructions
                if i1 is not None:
                    group[2] += sum(row[i1] for row in rows)
        return {name: (sum(1 for n in lines.values() if 2 * n >= requests), ir_count, misses)
                for name, (lines, ir_count, misses) in groups.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dump")
    parser.add_argument("--requests", type=int, default=1,
                        help="requests the dump covers: instructions and misses are divided")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--by", choices=("object", "function"), default="function")
    args = parser.parse_args()
    dump = Dump(args.dump)
    rows = dump.summary(args.by, args.requests)
    total = [sum(r[i] for r in rows.values()) for i in range(3)]
    print("%-8s %-9s %-9s %-10s %s" % ("lines", "KiB", "instr/req", "I1mr/req", args.by))
    print("%-8d %-9.1f %-9.0f %-10.1f (all)" % (total[0], total[0] * LINE / 1024,
                                                 total[1] / args.requests,
                                                 total[2] / args.requests))
    ordered = sorted(rows.items(), key=lambda item: (-item[1][2], -item[1][0]))
    for name, (lines, instructions, misses) in ordered[:args.top]:
        print("%-8d %-9.1f %-9.0f %-10.1f %s" % (lines, lines * LINE / 1024,
                                                  instructions / args.requests,
                                                  misses / args.requests, name[:110]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
