#!/usr/bin/env python3
"""Checks that includes between the agent's and the control plane's folders run one way.

Each folder may include only the folders listed for it (and itself, common/ and proto/);
the tables are the ones in dataplane/README.md and controlplane/README.md. Run from any
directory; exits non-zero naming every include that goes the wrong way.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Folder -> the folders its files may include, lowest layers last.
DATAPLANE = ['server', 'ops', 'sync', 'proxy', 'tenants', 'usage', 'auth', 'upstream',
             'routing', 'http']
ALLOWED = {
    'dataplane/server': DATAPLANE[1:],
    'dataplane/ops': DATAPLANE[3:],
    'dataplane/sync': ['routing', 'http'],
    'dataplane/proxy': DATAPLANE[4:],
    'dataplane/tenants': DATAPLANE[5:],
    'dataplane/usage': DATAPLANE[6:],
    'dataplane/auth': DATAPLANE[7:],
    'dataplane/upstream': ['routing', 'http'],
    'dataplane/routing': ['http'],
    'dataplane/http': [],
    'controlplane/ops': ['fleet'],
    'controlplane/admin': ['fleet', 'auth', 'store'],
    'controlplane/fleet': ['auth', 'store'],
    'controlplane/auth': [],
    'controlplane/store': [],
    'controlplane/cli': [],
    # spillwayctl load: the agent's HTTP client stack, nothing of the control plane.
    'tools/load': ['dataplane/upstream', 'dataplane/http', 'dataplane/routing'],
}
INCLUDE = re.compile(r'^#include "((?:dataplane|controlplane)/[^"]+)"', re.M)


def violations():
    found = []
    for folder, allowed in ALLOWED.items():
        top = folder.split('/')[0]
        # An entry is a folder beside this one, or a full path (one with a '/').
        permitted = {folder} | {a if '/' in a else f'{top}/{a}' for a in allowed}
        path = os.path.join(ROOT, folder)
        if not os.path.isdir(path):
            found.append(f'{folder}: missing folder')
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith(('.h', '.cc')):
                continue
            text = open(os.path.join(path, name), encoding='utf-8').read()
            for included in INCLUDE.findall(text):
                target = os.path.dirname(included)
                if target not in permitted:
                    found.append(f'{folder}/{name} includes {included}')
    return found


def main():
    bad = violations()
    for line in bad:
        print('layering:', line)
    if not bad:
        print('layering: every include runs down its table')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
