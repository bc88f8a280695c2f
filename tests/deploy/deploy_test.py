#!/usr/bin/env python3
"""Checks what deploy/ ships to run Spillway: systemd units, container images, Kubernetes.

Nothing here can start a unit, build an image or reach a cluster, so each part is checked
as far as this machine allows: systemd-analyze verifies the units against the built
binaries; the Dockerfiles and manifests are parsed and their fields compared with each
other, with the binaries' flags and with the libraries the binaries link; install.sh runs
into temporary directories. Run by ctest (tests/deploy/CMakeLists.txt) as
  deploy_test.py --build-dir BUILD --cp SPILLWAY_CP --agent SPILLWAY_AGENT
"""
import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, 'deploy')
K8S = os.path.join(DEPLOY, 'k8s')
ARGS = None  # set in main()

SERVICES = {'spillway-cp': 'cp', 'spillway-agent': 'agent'}
# What the agent does after its drain ends: seals usage and waits up to 3 s for the
# control plane's ack (dataplane/main.cc, Agent::Drain).
USAGE_HANDOFF_S = 3


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def binary(name):
    return {'spillway-cp': ARGS.cp, 'spillway-agent': ARGS.agent}[name]


def flags_of(name):
    """The flag names `name --help` lists, with '-' as the binaries print them."""
    out = run([binary(name), '--help']).stdout
    return set(re.findall(r'^  --([a-z0-9-]+) \(default', out, re.M))


# --- systemd -------------------------------------------------------------------------------


def read_unit(path):
    """A unit file as {section: [(key, value)]}, continuation lines joined, in order."""
    sections, current, pending = {}, None, ''
    with open(path) as f:
        for raw in f:
            line = raw.rstrip('\n')
            if not pending and line.lstrip().startswith(('#', ';')):
                continue
            if line.endswith('\\'):
                pending += line[:-1] + ' '
                continue
            line, pending = pending + line, ''
            line = line.strip()
            if not line:
                continue
            if line.startswith('['):
                current = line.strip('[]')
                sections.setdefault(current, [])
                continue
            key, _, value = line.partition('=')
            sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit, section, key):
    found = values(unit, section, key)
    return found[-1] if found else None


def unit_defaults(unit):
    """The Environment= assignments, as systemd splits them (quotes allowed)."""
    env = {}
    for line in values(unit, 'Service', 'Environment'):
        for word in shlex.split(line):
            name, _, val = word.partition('=')
            env[name] = val
    return env


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#'):
                name, _, val = line.partition('=')
                env[name] = val
    return env


def exec_start_vars(unit):
    return set(re.findall(r'\$\{?([A-Z_][A-Z0-9_]*)\}?', value(unit, 'Service', 'ExecStart')))


def expand_exec_start(command, env, state_dir):
    """ExecStart as systemd runs it: ${VAR} one argument, $VAR split on whitespace."""
    argv = []
    for word in command.split():
        whole = re.fullmatch(r'\$([A-Z_][A-Z0-9_]*)', word)
        if whole:
            argv.extend(env.get(whole.group(1), '').split())
            continue
        word = re.sub(r'\$\{([A-Z_][A-Z0-9_]*)\}', lambda m: env.get(m.group(1), ''), word)
        argv.append(word.replace('%S', state_dir))
    return argv


def verify_unit(text, directory, name):
    """systemd-analyze verify on `text`: (exit code, everything it printed)."""
    path = os.path.join(directory, name)
    with open(path, 'w') as f:
        f.write(text)
    result = run(['systemd-analyze', 'verify', '--man=no', path])
    return result.returncode, (result.stdout + result.stderr).strip()


def with_built_binary(text, service):
    """The unit with ExecStart naming the built binary: verify needs it to exist."""
    replaced = text.replace(f'ExecStart=/usr/local/bin/{service} ',
                            f'ExecStart={binary(service)} ')
    assert replaced != text, f'{service}.service: no ExecStart=/usr/local/bin/{service}'
    return replaced


class SystemdUnitsTest(unittest.TestCase):
    def setUp(self):
        if shutil.which('systemd-analyze') is None:
            self.fail('systemd-analyze is missing (Debian package systemd, in install-deps.sh)')
        self.tmp = tempfile.mkdtemp(prefix='spillway-units-')
        self.addCleanup(shutil.rmtree, self.tmp)

    def unit_text(self, service):
        with open(os.path.join(DEPLOY, 'systemd', f'{service}.service')) as f:
            return f.read()

    def test_units_verify_clean(self):
        for service in SERVICES:
            with self.subTest(service=service):
                code, out = verify_unit(with_built_binary(self.unit_text(service), service),
                                        self.tmp, f'{service}.service')
                # verify exits 0 on unknown keys and bad values, printing a warning:
                # any output at all is a failure.
                self.assertEqual((code, out), (0, ''))

    def test_verify_catches_a_broken_unit(self):
        # The check above means something only if these make it fail.
        good = with_built_binary(self.unit_text('spillway-agent'), 'spillway-agent')
        broken = {
            'misspelt key': good.replace('ProtectSystem=strict', 'ProtectSystm=strict'),
            'bad value': good.replace('NoNewPrivileges=yes', 'NoNewPrivileges=maybe'),
            'missing binary': good.replace(binary('spillway-agent'), '/nonexistent/agent'),
        }
        for what, text in broken.items():
            with self.subTest(what=what):
                self.assertNotEqual(text, good)
                code, out = verify_unit(text, self.tmp, 'spillway-agent.service')
                self.assertTrue(code != 0 or out, f'{what}: verify said nothing')

    def test_exposure_is_low(self):
        # systemd's own score of the sandbox (0 to 10; 1.2 when written). A dropped
        # hardening directive or two pushes it past 2.0.
        for service in SERVICES:
            with self.subTest(service=service):
                path = os.path.join(self.tmp, f'{service}.service')
                with open(path, 'w') as f:
                    f.write(with_built_binary(self.unit_text(service), service))
                result = run(['systemd-analyze', 'security', '--offline=yes', '--man=no',
                              '--threshold=20', path])
                self.assertEqual(result.returncode, 0, result.stdout[-600:] + result.stderr)
                weaker = self.unit_text(service)
                for directive in ('ProtectSystem=strict', 'PrivateDevices=yes',
                                  'CapabilityBoundingSet=', 'SystemCallFilter=@system-service'):
                    weaker = weaker.replace(directive + '\n', '')
                with open(path, 'w') as f:
                    f.write(with_built_binary(weaker, service))
                result = run(['systemd-analyze', 'security', '--offline=yes', '--man=no',
                              '--threshold=20', path])
                self.assertNotEqual(result.returncode, 0, 'the threshold tells nothing')

    def test_hardening(self):
        for service in SERVICES:
            with self.subTest(service=service):
                unit = read_unit(os.path.join(DEPLOY, 'systemd', f'{service}.service'))
                expect = {
                    'Type': 'exec', 'User': service, 'Group': service,
                    'StateDirectory': service, 'NoNewPrivileges': 'yes',
                    'ProtectSystem': 'strict', 'ProtectHome': 'yes', 'PrivateTmp': 'yes',
                    'PrivateDevices': 'yes', 'CapabilityBoundingSet': '',
                    'AmbientCapabilities': '', 'Restart': 'on-failure',
                }
                for key, want in expect.items():
                    self.assertEqual(value(unit, 'Service', key), want, key)
                self.assertGreaterEqual(int(value(unit, 'Service', 'LimitNOFILE')), 65536)
                self.assertEqual(value(unit, 'Install', 'WantedBy'), 'multi-user.target')
                self.assertIn('network-online.target', value(unit, 'Unit', 'Wants'))

    def test_env_file_and_unit_agree(self):
        for service, short in SERVICES.items():
            with self.subTest(service=service):
                unit = read_unit(os.path.join(DEPLOY, 'systemd', f'{service}.service'))
                self.assertEqual(value(unit, 'Service', 'EnvironmentFile'),
                                 f'/etc/spillway/{short}.env')
                used = exec_start_vars(unit)
                env_file = read_env_file(os.path.join(DEPLOY, 'systemd', f'{short}.env'))
                # Every variable ExecStart uses has a default in the unit (an env file
                # from an older install may lack it) and is in the shipped env file; the
                # env file sets nothing the unit ignores (a misspelt name would be silent).
                self.assertEqual(set(unit_defaults(unit)), used)
                self.assertEqual(set(env_file), used)

    def test_exec_start_flags_exist(self):
        # Every --flag= in ExecStart is one the built binary knows, and with the shipped
        # env file's values the command line is what the binary expects.
        for service, short in SERVICES.items():
            with self.subTest(service=service):
                unit = read_unit(os.path.join(DEPLOY, 'systemd', f'{service}.service'))
                env = unit_defaults(unit)
                env.update(read_env_file(os.path.join(DEPLOY, 'systemd', f'{short}.env')))
                argv = expand_exec_start(value(unit, 'Service', 'ExecStart'), env, '/var/lib')
                self.assertEqual(argv[0], f'/usr/local/bin/{service}')
                known = flags_of(service)
                self.assertTrue(known, f'{service} --help listed no flags')
                for arg in argv[1:]:
                    self.assertRegex(arg, r'^--[a-z0-9-]+=')
                    self.assertIn(arg[2:].split('=')[0], known, arg)
                self.assertTrue(any(a == f'--state-dir=/var/lib/{service}' for a in argv) or
                                any(a == f'--db=/var/lib/{service}/topology.db' for a in argv),
                                'state is not kept in the StateDirectory')

    def test_agent_stop_timeout_covers_the_drain(self):
        unit = read_unit(os.path.join(DEPLOY, 'systemd', 'spillway-agent.service'))
        name = 'SPILLWAY_AGENT_DRAIN_TIMEOUT_MS'
        default = int(unit_defaults(unit)[name])
        shipped = int(read_env_file(os.path.join(DEPLOY, 'systemd', 'agent.env'))[name])
        self.assertEqual(default, shipped)
        self.assertGreater(int(value(unit, 'Service', 'TimeoutStopSec')),
                           shipped / 1000 + USAGE_HANDOFF_S)

    def test_sysusers_file_creates_the_users(self):
        if shutil.which('systemd-sysusers') is None:
            self.skipTest('no systemd-sysusers')
        os.makedirs(os.path.join(self.tmp, 'etc'))
        result = run(['systemd-sysusers', f'--root={self.tmp}',
                      os.path.join(DEPLOY, 'systemd', 'spillway.sysusers')])
        self.assertEqual(result.returncode, 0, result.stderr)
        users = passwd(self.tmp)
        for service in SERVICES:
            self.assertIn(service, users)
            self.assertEqual(users[service]['home'], f'/var/lib/{service}')
            self.assertEqual(users[service]['shell'], '/usr/sbin/nologin')
            self.assertNotEqual(users[service]['uid'], 0)


def passwd(root):
    users = {}
    with open(os.path.join(root, 'etc', 'passwd')) as f:
        for line in f:
            name, _, uid, gid, _, home, shell = line.rstrip('\n').split(':')
            users[name] = {'uid': int(uid), 'gid': int(gid), 'home': home, 'shell': shell}
    return users


# --- Dockerfiles ---------------------------------------------------------------------------

COMPILERS = re.compile(r'^(build-essential|gcc.*|g\+\+.*|cpp.*|clang.*|cmake|make|ccache|'
                       r'binutils|protobuf-compiler.*|.*-dev)$')
# Packages every debian:12-slim has: libraries the binaries link that need no install.
SLIM_BASE = {'libc6', 'libgcc-s1', 'libstdc++6', 'zlib1g'}


def read_dockerfile(path):
    """Instructions as (KEYWORD, argument) with continuations joined, split into stages."""
    stages, pending = [], ''
    with open(path) as f:
        for raw in f:
            line = raw.rstrip('\n')
            if not pending and line.lstrip().startswith('#'):
                continue
            if line.endswith('\\'):
                pending += line[:-1] + ' '
                continue
            line, pending = (pending + line).strip(), ''
            if not line:
                continue
            keyword, _, argument = line.partition(' ')
            keyword = keyword.upper()
            if keyword == 'FROM':
                stages.append({'from': argument.split(), 'lines': []})
            else:
                stages[-1]['lines'].append((keyword, argument.strip()))
    return stages


def apt_packages(stage):
    packages = []
    for keyword, argument in stage['lines']:
        if keyword != 'RUN':
            continue
        for command in re.split(r'&&|;', argument):
            words = command.split()
            if 'apt-get' in words and 'install' in words:
                packages += [w for w in words[words.index('install') + 1:]
                             if not w.startswith('-')]
    return packages


def install_deps_packages():
    with open(os.path.join(DEPLOY, 'install-deps.sh')) as f:
        text = f.read()
    body = re.search(r'PACKAGES=\((.*?)\)', text, re.S).group(1)
    return [w for line in body.splitlines() for w in line.split('#')[0].split()]


def needed_packages(path):
    """The Debian packages holding the shared libraries `path` links (via dpkg -S)."""
    dynamic = run(['objdump', '-p', path]).stdout
    libraries = re.findall(r'^\s+NEEDED\s+(\S+)', dynamic, re.M)
    cache = run(['ldconfig', '-p']).stdout
    candidates = {}
    for library in libraries:
        match = re.search(rf'^\s+{re.escape(library)} \(libc6,x86-64[^)]*\) => (\S+)', cache, re.M)
        match = match or re.search(rf'^\s+{re.escape(library)} \([^)]*\) => (\S+)', cache, re.M)
        assert match, f'{library} is not in the linker cache'
        paths = {match.group(1), os.path.realpath(match.group(1))}
        for p in list(paths):  # merged /usr: dpkg knows one of the two spellings
            paths.add(p[4:] if p.startswith('/usr/') else '/usr' + p)
        candidates[library] = paths
    # One query for all (each dpkg-query reads the whole database); it exits 1 when some
    # spelling is unknown, and prints "package[:arch][, package...]: path" for the others.
    owners = {}
    out = run(['dpkg-query', '-S'] + sorted(set().union(*candidates.values()))).stdout
    for line in out.splitlines():
        names, _, owned = line.rpartition(': ')
        owners[owned.strip()] = names.split(',')[0].split(':')[0].strip()
    packages = {}
    for library, paths in candidates.items():
        found = [owners[p] for p in sorted(paths) if p in owners]
        assert found, f'no package holds {library}'
        packages[library] = found[0]
    return packages


class DockerfilesTest(unittest.TestCase):
    def stages(self, service):
        return read_dockerfile(os.path.join(DEPLOY, 'docker', f'{service}.Dockerfile'))

    def test_two_stages_from_debian_12(self):
        for service in SERVICES:
            with self.subTest(service=service):
                stages = self.stages(service)
                self.assertEqual([s['from'] for s in stages],
                                 [['debian:12', 'AS', 'build'], ['debian:12-slim']])

    def test_final_stage_runs_the_binary_as_non_root(self):
        for service in SERVICES:
            with self.subTest(service=service):
                final = self.stages(service)[-1]['lines']
                users = [a for k, a in final if k == 'USER']
                self.assertTrue(users, 'no USER in the final stage')
                # Numeric, so Kubernetes' runAsNonRoot can check it without /etc/passwd.
                uid = users[-1].split(':')[0]
                self.assertRegex(uid, r'^[0-9]+$')
                self.assertNotEqual(int(uid), 0)
                entrypoint = [a for k, a in final if k == 'ENTRYPOINT']
                self.assertEqual(json.loads(entrypoint[-1]), [f'/usr/local/bin/{service}'])
                copies = [a.split() for k, a in final if k == 'COPY']
                self.assertEqual(len(copies), 1)
                self.assertEqual(copies[0][0], '--from=build')
                self.assertEqual(os.path.basename(copies[0][1]), service)
                self.assertEqual(copies[0][2], f'/usr/local/bin/{service}')

    def test_final_stage_has_no_compiler(self):
        for service in SERVICES:
            with self.subTest(service=service):
                packages = apt_packages(self.stages(service)[-1])
                self.assertTrue(packages)
                self.assertEqual([p for p in packages if COMPILERS.match(p)], [])
                self.assertIn('--no-install-recommends', str(self.stages(service)[-1]))

    def test_build_stage_has_install_deps_build_packages(self):
        # The image builds with what deploy/install-deps.sh gives a developer: a -dev
        # package added there and not here would break only the image.
        wanted = {p for p in install_deps_packages() if COMPILERS.match(p) or p == 'pkg-config'}
        wanted -= {'ccache'}  # a one-shot build has nothing to cache
        self.assertIn('libgrpc++-dev', wanted)
        for service in SERVICES:
            with self.subTest(service=service):
                build = self.stages(service)[0]
                self.assertEqual(sorted(wanted - set(apt_packages(build))), [])
                runs = ' '.join(a for k, a in build['lines'] if k == 'RUN')
                self.assertIn(f'--target {service}', runs)

    def test_final_stage_has_the_linked_libraries(self):
        if shutil.which('dpkg-query') is None or shutil.which('objdump') is None:
            self.skipTest('needs dpkg-query and objdump (a Debian build machine)')
        if ARGS.sanitizer:
            self.skipTest('a %s build links its runtime, which no shipped image carries'
                          % ARGS.sanitizer)
        for service in SERVICES:
            with self.subTest(service=service):
                installed = set(apt_packages(self.stages(service)[-1]))
                missing = {lib: pkg for lib, pkg in needed_packages(binary(service)).items()
                           if pkg not in installed | SLIM_BASE}
                self.assertEqual(missing, {})

    def test_exposed_ports_match_the_manifests(self):
        manifests = load_manifests()
        for service in SERVICES:
            with self.subTest(service=service):
                exposed = {int(p) for k, a in self.stages(service)[-1]['lines'] if k == 'EXPOSE'
                           for p in a.split()}
                container = pod_container(manifests, service)
                self.assertEqual(exposed, {p['containerPort'] for p in container['ports']})
                uid = [a for k, a in self.stages(service)[-1]['lines'] if k == 'USER'][-1]
                pod = workload(manifests, service)['spec']['template']['spec']
                self.assertEqual(pod['securityContext']['runAsUser'], int(uid.split(':')[0]))
                self.assertEqual(container['image'].split(':')[0], service)

    def test_dockerignore_keeps_build_trees_and_git_out(self):
        with open(os.path.join(ROOT, '.dockerignore')) as f:
            patterns = {line.strip() for line in f if line.strip() and not line.startswith('#')}
        for needed in ('.git', 'build', 'build-*'):
            self.assertIn(needed, patterns)


# --- Kubernetes ----------------------------------------------------------------------------


def manifest_files():
    return sorted(f for f in os.listdir(K8S)
                  if f.endswith('.yaml') and f != 'kustomization.yaml')


def load_manifests():
    objects = []
    for name in manifest_files():
        with open(os.path.join(K8S, name)) as f:
            for document in yaml.safe_load_all(f):
                if document is not None:
                    document['_file'] = name
                    objects.append(document)
    return objects


def find(manifests, kind, name):
    found = [o for o in manifests if o['kind'] == kind and o['metadata']['name'] == name]
    assert len(found) == 1, f'{kind}/{name}: {len(found)} found'
    return found[0]


def workload(manifests, service):
    return find(manifests, {'spillway-cp': 'StatefulSet', 'spillway-agent': 'Deployment'}[service],
                service)


def pod_container(manifests, service):
    containers = workload(manifests, service)['spec']['template']['spec']['containers']
    return next(c for c in containers if c['name'] == service)


def flag(container, name):
    """The value of --name=VALUE in the container's args (None when absent)."""
    found = [a.split('=', 1)[1] for a in container.get('args', []) if a.startswith(f'--{name}=')]
    assert len(found) <= 1, f'--{name} given twice'
    return found[0] if found else None


def port_number(container, port):
    """A probe's or Service's port (a name or a number) as the container's port number."""
    numbers = {p['containerPort'] for p in container['ports']}
    if isinstance(port, int):
        assert port in numbers, f'port {port} is not a container port'
        return port
    named = [p['containerPort'] for p in container['ports'] if p.get('name') == port]
    assert len(named) == 1, f'no container port named {port}'
    return named[0]


def mount_for(pod, container, path):
    """The (volumeMount, volume) whose mount path holds `path`, or (None, None)."""
    best = None
    for mount in container.get('volumeMounts', []):
        root = mount['mountPath'].rstrip('/')
        if path == root or path.startswith(root + '/'):
            if best is None or len(root) > len(best['mountPath']):
                best = mount
    if best is None:
        return None, None
    volume = next(v for v in pod['volumes'] if v['name'] == best['name'])
    return best, volume


def quantity(text):
    """A Kubernetes memory or CPU quantity as a number (bytes, cores)."""
    text = str(text)
    units = {'Ki': 2**10, 'Mi': 2**20, 'Gi': 2**30, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'm': 1e-3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * factor
    return float(text)


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


class KubernetesTest(unittest.TestCase):
    def setUp(self):
        self.manifests = load_manifests()

    def test_every_object_is_named_and_namespaced(self):
        self.assertGreaterEqual(len(self.manifests), 7)
        for o in self.manifests:
            with self.subTest(object=f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"):
                self.assertIn('apiVersion', o)
                self.assertIn('name', o['metadata'])
                if o['kind'] != 'Namespace':
                    self.assertEqual(o['metadata'].get('namespace'), 'spillway')

    def test_string_maps_hold_strings(self):
        # YAML 1.1 reads `true`, `on`, `8080` as non-strings, which the API server refuses
        # in labels, annotations and ConfigMap data.
        def walk(node, where):
            if isinstance(node, dict):
                for key, child in node.items():
                    if key in ('labels', 'annotations', 'matchLabels', 'data') and \
                            isinstance(child, dict):
                        for k, v in child.items():
                            self.assertIsInstance(v, str, f'{where}.{key}.{k}')
                    walk(child, f'{where}.{key}')
            elif isinstance(node, list):
                for i, child in enumerate(node):
                    walk(child, f'{where}[{i}]')
        for o in self.manifests:
            walk(o, f"{o['kind']}/{o['metadata']['name']}")

    def test_kustomization_lists_every_manifest(self):
        with open(os.path.join(K8S, 'kustomization.yaml')) as f:
            kustomization = yaml.safe_load(f)
        self.assertEqual(sorted(kustomization['resources']), manifest_files())
        self.assertEqual({i['name'] for i in kustomization['images']}, set(SERVICES))
        if shutil.which('kubectl') is None:
            return  # kubectl is optional: the list above is the check that matters
        result = run(['kubectl', 'kustomize', K8S])
        self.assertEqual(result.returncode, 0, result.stderr)
        built = [d for d in yaml.safe_load_all(result.stdout) if d]
        self.assertEqual(len(built), len(self.manifests))

    def test_containers_are_locked_down(self):
        for service in SERVICES:
            with self.subTest(service=service):
                pod = workload(self.manifests, service)['spec']['template']['spec']
                self.assertIs(pod['securityContext']['runAsNonRoot'], True)
                self.assertNotEqual(pod['securityContext']['runAsUser'], 0)
                self.assertEqual(pod['securityContext']['seccompProfile']['type'],
                                 'RuntimeDefault')
                self.assertIs(pod.get('automountServiceAccountToken'), False)
                for c in pod['containers']:
                    sc = c['securityContext']
                    self.assertIs(sc['readOnlyRootFilesystem'], True)
                    self.assertIs(sc['allowPrivilegeEscalation'], False)
                    self.assertEqual(sc['capabilities']['drop'], ['ALL'])
                    for kind in ('requests', 'limits'):
                        for resource in ('cpu', 'memory'):
                            self.assertIn(resource, c['resources'][kind], f'{kind}.{resource}')
                    for resource in ('cpu', 'memory'):
                        self.assertLessEqual(quantity(c['resources']['requests'][resource]),
                                             quantity(c['resources']['limits'][resource]))

    def test_flags_exist_and_ports_match(self):
        for service in SERVICES:
            with self.subTest(service=service):
                container = pod_container(self.manifests, service)
                known = flags_of(service)
                # --metrics-listen and --log-format are arriving in other branches.
                known |= {'metrics-listen', 'log-format'}
                for arg in container['args']:
                    self.assertRegex(arg, r'^--[a-z0-9-]+=')
                    self.assertIn(arg[2:].split('=')[0], known, arg)
                listens = {flag(container, f) for f in ('listen', 'admin-listen', 'metrics-listen')}
                ports = {int(v.rsplit(':', 1)[1]) for v in listens if v}
                for v in listens:
                    if v:
                        self.assertTrue(v.startswith('0.0.0.0:'), f'{v}: kubelet and Service '
                                        'reach the pod on its own address, not loopback')
                self.assertEqual(ports, {p['containerPort'] for p in container['ports']})

    def test_probes_reach_the_right_endpoints(self):
        agent = pod_container(self.manifests, 'spillway-agent')
        admin = int(flag(agent, 'admin-listen').rsplit(':', 1)[1])
        # Readiness ignores a region drain: it gates the regional Service, which must keep the
        # agents that serve what still reaches them (docs/operations.md, "Drains and drills").
        for probe, path in (('readinessProbe', '/readyz?drain=ignore'),
                            ('livenessProbe', '/healthz')):
            with self.subTest(probe=probe):
                self.assertEqual(agent[probe]['httpGet']['path'], path)
                # The API port answers /readyz too, but the admin port is where the agent
                # serves ops endpoints to anyone: probing it checks the same listener as
                # Prometheus.
                self.assertEqual(port_number(agent, agent[probe]['httpGet']['port']), admin)
        cp = pod_container(self.manifests, 'spillway-cp')
        metrics = int(flag(cp, 'metrics-listen').rsplit(':', 1)[1])
        grpc = int(flag(cp, 'listen').rsplit(':', 1)[1])
        self.assertEqual(cp['livenessProbe']['httpGet']['path'], '/healthz')
        self.assertEqual(port_number(cp, cp['livenessProbe']['httpGet']['port']), metrics)
        self.assertEqual(port_number(cp, cp['readinessProbe']['tcpSocket']['port']), grpc)

    def test_agents_are_many_and_spread_over_zones(self):
        deployment = find(self.manifests, 'Deployment', 'spillway-agent')
        spec = deployment['spec']
        labels = spec['template']['metadata']['labels']
        self.assertGreaterEqual(spec['replicas'], 3)
        self.assertTrue(selects(spec['selector']['matchLabels'], labels))
        self.assertEqual(spec['strategy']['rollingUpdate']['maxUnavailable'], 0)
        zone = [c for c in spec['template']['spec']['topologySpreadConstraints']
                if c['topologyKey'] == 'topology.kubernetes.io/zone']
        self.assertEqual(len(zone), 1)
        self.assertEqual(zone[0]['maxSkew'], 1)
        self.assertEqual(zone[0]['whenUnsatisfiable'], 'DoNotSchedule')
        self.assertTrue(selects(zone[0]['labelSelector']['matchLabels'], labels))

    def test_disruption_budget_covers_the_agents(self):
        deployment = find(self.manifests, 'Deployment', 'spillway-agent')
        labels = deployment['spec']['template']['metadata']['labels']
        pdb = find(self.manifests, 'PodDisruptionBudget', 'spillway-agent')
        self.assertEqual(pdb['apiVersion'], 'policy/v1')
        self.assertTrue(selects(pdb['spec']['selector']['matchLabels'], labels))
        # It must let a drain proceed (at least one may go) and keep most serving.
        replicas = deployment['spec']['replicas']
        if 'maxUnavailable' in pdb['spec']:
            self.assertTrue(1 <= pdb['spec']['maxUnavailable'] < replicas / 2)
        else:
            self.assertTrue(replicas / 2 < pdb['spec']['minAvailable'] < replicas)

    def test_grace_period_covers_prestop_and_drain(self):
        pod = find(self.manifests, 'Deployment', 'spillway-agent')['spec']['template']['spec']
        agent = pod_container(self.manifests, 'spillway-agent')
        drain_s = int(flag(agent, 'drain-timeout-ms')) / 1000
        pre_stop = agent['lifecycle']['preStop']['exec']['command']
        self.assertEqual(pre_stop[0], '/bin/sleep')
        needed = int(pre_stop[1]) + drain_s + USAGE_HANDOFF_S
        self.assertGreater(pod['terminationGracePeriodSeconds'], needed)

    def test_body_memory_fits_the_memory_limit(self):
        # The default --body-memory-limit (1 GiB) would let bodies alone reach the limit
        # and have the container OOM-killed instead of answering 503.
        agent = pod_container(self.manifests, 'spillway-agent')
        body = int(flag(agent, 'body-memory-limit'))
        self.assertLessEqual(body, quantity(agent['resources']['limits']['memory']) / 2)

    def test_secrets_are_files_from_secret_volumes(self):
        for service in SERVICES:
            with self.subTest(service=service):
                pod = workload(self.manifests, service)['spec']['template']['spec']
                for c in pod['containers']:
                    for e in c.get('env', []):
                        self.assertNotIn('secretKeyRef', e.get('valueFrom', {}), e['name'])
                    for e in c.get('envFrom', []):
                        self.assertNotIn('secretRef', e)
                container = pod_container(self.manifests, service)
                secret_flags = {
                    'spillway-cp': ['admin-token-file', 'agent-token-file', 'tls-cert', 'tls-key'],
                    'spillway-agent': ['token-file', 'secrets-dir'],
                }[service]
                for name in secret_flags:
                    path = flag(container, name)
                    self.assertIsNotNone(path, f'--{name} is not set')
                    mount, volume = mount_for(pod, container, path)
                    self.assertIsNotNone(mount, f'--{name}={path} is on no volume')
                    self.assertIn('secret', volume, f'--{name}: {volume}')
                    self.assertIs(mount.get('readOnly'), True)
                    self.assertLessEqual(volume['secret'].get('defaultMode', 0o644), 0o440)
        # The agent gets the agent token only, not the operators' admin token.
        pod = workload(self.manifests, 'spillway-agent')['spec']['template']['spec']
        agent = pod_container(self.manifests, 'spillway-agent')
        _, volume = mount_for(pod, agent, flag(agent, 'token-file'))
        self.assertEqual([i['path'] for i in volume['secret']['items']],
                         [os.path.basename(flag(agent, 'token-file'))])
        cp_pod = workload(self.manifests, 'spillway-cp')['spec']['template']['spec']
        cp = pod_container(self.manifests, 'spillway-cp')
        _, cp_tokens = mount_for(cp_pod, cp, flag(cp, 'agent-token-file'))
        self.assertEqual(volume['secret']['secretName'], cp_tokens['secret']['secretName'])

    def test_agent_files_are_mounted(self):
        pod = workload(self.manifests, 'spillway-agent')['spec']['template']['spec']
        agent = pod_container(self.manifests, 'spillway-agent')
        for name in ('control-plane-ca', 'state-dir'):
            mount, _ = mount_for(pod, agent, flag(agent, name))
            self.assertIsNotNone(mount, f'--{name} is on no volume')
        mount, _ = mount_for(pod, agent, flag(agent, 'state-dir'))
        self.assertFalse(mount.get('readOnly', False))
        self.assertTrue(any(m['mountPath'] == '/tmp' for m in agent['volumeMounts']))

    def test_env_references_resolve(self):
        # $(VAR) in args must name an env entry, and a configMapKeyRef a key that exists.
        for service in SERVICES:
            with self.subTest(service=service):
                container = pod_container(self.manifests, service)
                env = {e['name']: e for e in container.get('env', [])}
                for arg in container['args']:
                    for var in re.findall(r'\$\(([A-Z_]+)\)', arg):
                        self.assertIn(var, env, arg)
                for e in env.values():
                    ref = e.get('valueFrom', {}).get('configMapKeyRef')
                    if ref:
                        cm = find(self.manifests, 'ConfigMap', ref['name'])
                        self.assertIn(ref['key'], cm['data'])

    def test_agents_reach_the_control_plane_service(self):
        agent = pod_container(self.manifests, 'spillway-agent')
        env = {e['name']: e for e in agent['env']}
        var = re.fullmatch(r'\$\(([A-Z_]+)\)', flag(agent, 'control-plane')).group(1)
        ref = env[var]['valueFrom']['configMapKeyRef']
        address = find(self.manifests, 'ConfigMap', ref['name'])['data'][ref['key']]
        host, port = address.rsplit(':', 1)
        service_name, namespace = host.split('.')[:2]
        self.assertEqual(host, f'{service_name}.{namespace}.svc')
        service = find(self.manifests, 'Service', service_name)
        self.assertEqual(service['metadata']['namespace'], namespace)
        self.assertIn(int(port), [p['port'] for p in service['spec']['ports']])

    def test_services_select_their_pods(self):
        for service in SERVICES:
            with self.subTest(service=service):
                svc = find(self.manifests, 'Service', service)
                pod_labels = workload(self.manifests, service)['spec']['template']['metadata'][
                    'labels']
                self.assertTrue(selects(svc['spec']['selector'], pod_labels))
                container = pod_container(self.manifests, service)
                for p in svc['spec']['ports']:
                    port_number(container, p['targetPort'])
        agent = pod_container(self.manifests, 'spillway-agent')
        api = int(flag(agent, 'listen').rsplit(':', 1)[1])
        svc = find(self.manifests, 'Service', 'spillway-agent')
        # Only the API: /status on the admin port is for operators.
        self.assertEqual([port_number(agent, p['targetPort']) for p in svc['spec']['ports']],
                         [api])

    def test_control_plane_keeps_its_database_on_a_claim(self):
        sts = find(self.manifests, 'StatefulSet', 'spillway-cp')
        self.assertEqual(sts['spec']['replicas'], 1)  # one SQLite writer
        service = find(self.manifests, 'Service', sts['spec']['serviceName'])
        self.assertEqual(service['spec'].get('clusterIP'), 'None')
        pod = sts['spec']['template']['spec']
        cp = pod_container(self.manifests, 'spillway-cp')
        db = flag(cp, 'db')
        mount = next(m for m in cp['volumeMounts'] if db.startswith(m['mountPath'] + '/'))
        claims = {t['metadata']['name']: t for t in sts['spec']['volumeClaimTemplates']}
        self.assertIn(mount['name'], claims)  # not an emptyDir: the store must outlive the pod
        self.assertNotIn(mount['name'], {v['name'] for v in pod.get('volumes', [])})
        self.assertEqual(claims[mount['name']]['spec']['accessModes'], ['ReadWriteOnce'])
        self.assertIn('storage', claims[mount['name']]['spec']['resources']['requests'])
        self.assertIn('fsGroup', pod['securityContext'])  # the claim is writable by the user


# --- install.sh ----------------------------------------------------------------------------


def tree(root):
    """Every path under root with its mode and content hash, for before/after comparisons."""
    snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                with open(path, 'rb') as f:
                    content = hash(f.read())
            snapshot[os.path.relpath(path, root)] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                                                     content)
    return snapshot


# Where a build tree keeps each binary, as install.sh looks for them.
BUILD_PATHS = {'spillway-cp': 'controlplane', 'spillway-agent': 'dataplane',
               'spillwayctl': 'controlplane/cli'}


class InstallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='spillway-install-')
        self.addCleanup(shutil.rmtree, self.tmp)
        self.dest = os.path.join(self.tmp, 'root')
        # A build tree of small stand-ins: the agent alone is ~190 MB, and most tests are
        # about what install.sh does, not what it copies (test_installs_the_built_binaries
        # takes the real ones).
        self.from_dir = os.path.join(self.tmp, 'build')
        self.sources = {}
        for name, folder in BUILD_PATHS.items():
            path = os.path.join(self.from_dir, folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write(f'#!/bin/sh\necho {name}\n')
            os.chmod(path, 0o755)
            self.sources[name] = path

    def install(self, *extra, dest=None, user=None, from_dir=None, deploy=DEPLOY):
        cmd = [os.path.join(deploy, 'install.sh'), '--from', from_dir or self.from_dir,
               '--destdir', dest or self.dest, *extra]
        if user:
            cmd = ['runuser', '-u', user, '--'] + cmd
        result = run(cmd)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    def mode(self, relative, dest=None):
        return stat.S_IMODE(os.stat(os.path.join(dest or self.dest, relative)).st_mode)

    def check_layout(self, dest, prefix='/usr/local', sources=None):
        sources = sources or self.sources
        for name in BUILD_PATHS:
            installed = os.path.join(dest, prefix.lstrip('/'), 'bin', name)
            self.assertEqual(self.mode(installed), 0o755)
            with open(installed, 'rb') as a, open(sources[name], 'rb') as b:
                self.assertTrue(a.read() == b.read(), f'{installed} is not {sources[name]}')
        for service in SERVICES:
            unit = os.path.join(dest, 'etc/systemd/system', f'{service}.service')
            self.assertEqual(self.mode(unit), 0o644)
            self.assertEqual(value(read_unit(unit), 'Service', 'ExecStart').split()[0],
                             f'{prefix}/bin/{service}')
        for short in SERVICES.values():
            env = os.path.join(dest, 'etc/spillway', f'{short}.env')
            self.assertEqual(self.mode(env), 0o600)
            with open(env) as a, open(os.path.join(DEPLOY, 'systemd', f'{short}.env')) as b:
                self.assertEqual(a.read(), b.read())
            self.assertEqual(self.mode(os.path.join(dest, 'etc/spillway', short)), 0o750)
        self.assertEqual(self.mode(os.path.join(dest, 'etc/sysusers.d/spillway.conf')), 0o644)

    def test_installs_the_built_binaries(self):
        self.install(from_dir=ARGS.build_dir)
        self.check_layout(self.dest, sources={
            name: os.path.join(ARGS.build_dir, folder, name)
            for name, folder in BUILD_PATHS.items()})
        self.assertEqual(os.path.join(ARGS.build_dir, BUILD_PATHS['spillway-cp'], 'spillway-cp'),
                         ARGS.cp)
        # The units as installed, pointed at the installed binaries: what a host would run.
        for service in SERVICES:
            with self.subTest(service=service):
                with open(os.path.join(self.dest, 'etc/systemd/system',
                                       f'{service}.service')) as f:
                    text = f.read()
                text = text.replace('ExecStart=/usr/local/bin/',
                                    f'ExecStart={self.dest}/usr/local/bin/')
                code, out = verify_unit(text, self.tmp, f'{service}.service')
                self.assertEqual((code, out), (0, ''))

    def test_installs_into_destdir(self):
        self.install()
        self.check_layout(self.dest)
        if shutil.which('systemd-sysusers'):
            users = passwd(self.dest)
            for service, short in SERVICES.items():
                self.assertIn(service, users)
                if os.getuid() == 0:  # only root can hand the folder to the service's group
                    folder = os.stat(os.path.join(self.dest, 'etc/spillway', short))
                    self.assertEqual((folder.st_uid, folder.st_gid), (0, users[service]['gid']))

    def test_second_run_changes_nothing(self):
        self.install()
        before = tree(self.dest)
        out = self.install()
        self.assertNotIn('installed /', out)
        self.assertEqual(tree(self.dest), before)

    def test_existing_env_files_are_kept(self):
        self.install()
        env = os.path.join(self.dest, 'etc/spillway/agent.env')
        with open(env, 'w') as f:
            f.write('SPILLWAY_AGENT_REGION=westus3\n')
        self.install()
        with open(env) as f:
            self.assertEqual(f.read(), 'SPILLWAY_AGENT_REGION=westus3\n')
        # The new template lands beside it, for the administrator to compare.
        with open(env + '.new') as a, open(os.path.join(DEPLOY, 'systemd', 'agent.env')) as b:
            self.assertEqual(a.read(), b.read())
        self.assertFalse(os.path.exists(os.path.join(self.dest, 'etc/spillway/cp.env.new')))

    def test_prefix(self):
        self.install('--prefix', '/opt/spillway')
        self.check_layout(self.dest, prefix='/opt/spillway')
        self.assertFalse(os.path.exists(os.path.join(self.dest, 'usr/local/bin')))

    def test_without_root(self):
        if os.getuid() != 0:
            self.install()  # this process is not root already
            self.check_layout(self.dest)
            return
        if shutil.which('runuser') is None:
            self.skipTest('no runuser to drop root with')
        dest = os.path.join(self.tmp, 'nobody')
        os.makedirs(dest)
        os.chown(dest, 65534, 65534)
        os.chmod(self.tmp, 0o755)
        # The checkout may sit where nobody cannot reach (under /root): install.sh reads
        # only deploy/, so a copy of that does.
        deploy = os.path.join(self.tmp, 'repo', 'deploy')
        shutil.copytree(DEPLOY, deploy)
        self.install(dest=dest, user='nobody', deploy=deploy)
        self.check_layout(dest)

    def test_refuses_without_binaries(self):
        empty = os.path.join(self.tmp, 'empty')
        os.makedirs(empty)
        result = run([os.path.join(DEPLOY, 'install.sh'), '--from', empty,
                      '--destdir', self.dest])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('no spillway-cp', result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dest, 'etc')))

    def test_shellcheck(self):
        if shutil.which('shellcheck') is None:
            self.skipTest('no shellcheck')
        result = run(['shellcheck', os.path.join(DEPLOY, 'install.sh')])
        self.assertEqual(result.returncode, 0, result.stdout)


# --- the profile-guided build ----------------------------------------------------------------
class ProfileGuidedBuildTest(unittest.TestCase):
    """deploy/build-pgo.sh and the SPILLWAY_PGO option it drives (docs/performance.md)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='spillway-pgo-')
        self.addCleanup(shutil.rmtree, self.tmp)

    def configure(self, phase):
        return run(['cmake', '-S', ROOT, '-B', os.path.join(self.tmp, 'build'),
                    '-DSPILLWAY_PGO=' + phase])

    def compile_line(self, source):
        with open(os.path.join(self.tmp, 'build', 'compile_commands.json')) as f:
            for entry in json.load(f):
                if entry['file'].endswith(source):
                    return entry['command']
        self.fail(f'{source} is not in compile_commands.json')

    def test_unknown_phase_is_refused(self):
        result = self.configure('sometimes')
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SPILLWAY_PGO must be empty, generate or use, not 'sometimes'",
                      result.stdout + result.stderr)

    def test_each_phase_reaches_the_request_path(self):
        result = self.configure('generate')
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        line = self.compile_line('dataplane/proxy/proxy.cc')
        self.assertIn('-fprofile-generate', line)
        self.assertNotIn('-fprofile-use', line)
        result = self.configure('use')
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        line = self.compile_line('dataplane/proxy/proxy.cc')
        self.assertIn('-fprofile-use', line)
        self.assertNotIn('-fprofile-generate', line)

    def script(self, build_dir, stamp):
        """build-pgo.sh on a tree holding a stand-in agent and `stamp`, with only the tools it
        needs before the training on PATH (no nginx, no wrk)."""
        os.makedirs(os.path.join(build_dir, 'dataplane'))
        agent = os.path.join(build_dir, 'dataplane', 'spillway-agent')
        with open(agent, 'w') as f:
            f.write('#!/bin/sh\n')
        os.chmod(agent, 0o755)
        with open(os.path.join(build_dir, 'pgo.stamp'), 'w') as f:
            f.write(stamp + '\n')
        tools = os.path.join(self.tmp, 'bin')
        os.makedirs(tools)
        for tool in ('git', 'sha256sum', 'cut', 'cat', 'rm', 'dirname', 'nproc', 'mkdir',
                     'xargs'):
            os.symlink(shutil.which(tool), os.path.join(tools, tool))
        return run([shutil.which('bash'), os.path.join(DEPLOY, 'build-pgo.sh'), build_dir],
                   cwd=ROOT,
                   env={'PATH': tools, 'SPILLWAY_LOG_DIR': os.path.join(self.tmp, 'logs')})

    def sources(self):
        """What the script hashes: sha256sum's lines for the agent's tracked sources and the
        script itself (its training decides the profile)."""
        files = run(['git', 'ls-files', '-z', '--', 'CMakeLists.txt', 'common', 'dataplane',
                     'proto', 'deploy/build-pgo.sh'], cwd=ROOT).stdout.split('\0')
        lines = ''
        for name in filter(None, files):
            with open(os.path.join(ROOT, name), 'rb') as f:
                lines += '%s  %s\n' % (hashlib.sha256(f.read()).hexdigest(), name)
        return hashlib.sha256(lines.encode()).hexdigest()

    def test_an_agent_built_from_the_same_sources_is_kept(self):
        build_dir = os.path.join(self.tmp, 'build-pgo')
        result = self.script(build_dir, self.sources())
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn('is current', result.stdout)
        self.assertTrue(os.path.exists(os.path.join(build_dir, 'pgo.stamp')))

    def test_other_sources_rebuild_and_the_training_needs_its_tools(self):
        build_dir = os.path.join(self.tmp, 'build-pgo')
        result = self.script(build_dir, '0' * 64)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('the training needs nginx', result.stderr)
        # The stale stamp is gone: a failed rebuild never passes for a current one.
        self.assertFalse(os.path.exists(os.path.join(build_dir, 'pgo.stamp')))

    def test_shellcheck(self):
        if shutil.which('shellcheck') is None:
            self.skipTest('no shellcheck')
        result = run(['shellcheck', '-x', os.path.join(DEPLOY, 'build-pgo.sh')], cwd=ROOT)
        self.assertEqual(result.returncode, 0, result.stdout)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument('--build-dir', required=True, help='the CMake build tree')
    parser.add_argument('--cp', required=True, help='the built spillway-cp')
    parser.add_argument('--agent', required=True, help='the built spillway-agent')
    parser.add_argument('--sanitizer', default='',
                        help='the build links a sanitizer runtime (tests/sanitize.sh)')
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == '__main__':
    main()
