#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the alert rules name only metrics Spillway exports.

Every panel query of deploy/monitoring/grafana-dashboard.json and every alert expression of
deploy/monitoring/alerts.yml is reduced to the metric names it reads (PromQL functions,
keywords, label names, strings and durations taken out); each must be a family listed in
deploy/monitoring/metric_names.txt (histograms by their _bucket, _sum and _count series).
cp.MetricsEndToEndTest checks that list against a real agent's and control plane's scrape.
Exits non-zero naming every unknown metric.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MONITORING = os.path.join(ROOT, 'deploy', 'monitoring')

# PromQL words that are not metric names.
KEYWORDS = {
    'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless',
    'bool', 'offset', 'inf', 'nan',
    'sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile',
    'count_values', 'group',
    'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'resets',
    'changes', 'histogram_quantile', 'abs', 'absent', 'absent_over_time', 'ceil', 'floor',
    'round', 'clamp', 'clamp_max', 'clamp_min', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'scalar',
    'vector', 'sort', 'sort_desc', 'time', 'timestamp', 'label_replace', 'label_join',
    'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time',
    'quantile_over_time', 'stddev_over_time', 'last_over_time', 'present_over_time',
}
IDENTIFIER = re.compile(r'[A-Za-z_:][A-Za-z0-9_:]*')


def metric_list():
    exported, announced = set(), set()
    with open(os.path.join(MONITORING, 'metric_names.txt'), encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if line.startswith('announced '):
                announced.add(line.split()[1])
            else:
                exported.add(line)
    return exported, announced


def metrics_in(expr):
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    expr = re.sub(r'\{[^}]*\}', '', expr)  # label matchers
    expr = re.sub(r'\[[^\]]*\]', '', expr)  # ranges and subqueries
    # Label lists after by/without/on/ignoring/group_left/group_right.
    expr = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', r'\1', expr)
    expr = re.sub(r'\$\w+', '', expr)  # Grafana variables
    names = set()
    for match in IDENTIFIER.finditer(expr):
        word = match.group(0)
        start = match.start()
        if start > 0 and (expr[start - 1].isdigit() or expr[start - 1] == '.'):
            continue  # the exponent or unit of a number (1e6, 5m)
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def known(name, families):
    if name in families:
        return True
    for suffix in ('_bucket', '_sum', '_count'):
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            return True
    return False


def panel_exprs(panels):
    for panel in panels:
        yield from panel_exprs(panel.get('panels', []))
        for target in panel.get('targets', []):
            yield panel.get('title', '?'), target.get('expr', '')


def alert_exprs():
    """(alert, expr) of alerts.yml, read without a YAML library: `expr:` plain or folded."""
    with open(os.path.join(MONITORING, 'alerts.yml'), encoding='utf-8') as f:
        lines = f.read().split('\n')
    alert = '?'
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith('- alert:'):
            alert = stripped.split(':', 1)[1].strip()
        if stripped.startswith('expr:'):
            value = stripped.split(':', 1)[1].strip()
            if value in ('>-', '>', '|', '|-'):
                indent = len(lines[i]) - len(lines[i].lstrip())
                parts = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or
                                          len(lines[i]) - len(lines[i].lstrip()) > indent):
                    parts.append(lines[i].strip())
                    i += 1
                yield alert, ' '.join(parts)
                continue
            yield alert, value
        i += 1


def main():
    exported, announced = metric_list()
    families = exported | announced
    with open(os.path.join(MONITORING, 'grafana-dashboard.json'), encoding='utf-8') as f:
        dashboard = json.load(f)
    problems = []
    used = set()
    panels = 0
    for title, expr in panel_exprs(dashboard['panels']):
        panels += 1
        names = metrics_in(expr)
        if not names:
            problems.append(f'dashboard panel "{title}": no metric in {expr!r}')
        for name in sorted(names):
            used.add(name)
            if not known(name, families):
                problems.append(f'dashboard panel "{title}": unknown metric {name}')
    alerts = 0
    for alert, expr in alert_exprs():
        alerts += 1
        for name in sorted(metrics_in(expr)):
            if not known(name, families):
                problems.append(f'alert {alert}: unknown metric {name}')
    if panels == 0 or alerts == 0:
        problems.append(f'found {panels} panel queries and {alerts} alert expressions')
    # The self-check of the reduction: a name no list has must be caught.
    if known('spillway_request_duration_ms', families) or \
            metrics_in('sum by (route) (rate(x_total{route="a"}[5m]))') != {'x_total'}:
        problems.append('the metric name extraction is broken')
    for line in problems:
        print('monitoring:', line)
    if not problems:
        print(f'monitoring: {panels} panel queries and {alerts} alert expressions read only '
              f'exported metrics ({len(used)} of them)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
