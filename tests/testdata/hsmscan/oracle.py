#!/usr/bin/python3
"""Reference oracle for hsmscan: HPSSPy's documented missing_from_hpss
algorithm (hpsspy.scan.scan_disk / find_missing, version 0.5), written
independently with Python's own `re`, csv and json modules, so that regex and
output semantics are Python's by construction.

  oracle.py walk ROOT OUT_CSV
  oracle.py missing CONFIG SECTION DISK_CSV HPSS_CSV|- OUT_JSON [LIMIT_GB]
"""
import csv
import json
import os
import re
import sys


def walk(root, out):
    with open(out, 'w', newline='') as t:
        w = csv.writer(t)
        w.writerow(['Name', 'Size', 'Mtime'])
        for top, dirs, files in os.walk(root):
            for f in files:
                full = os.path.join(top, f)
                if not os.path.islink(full):
                    s = os.stat(full)
                    w.writerow([full.replace(root + '/', ''), s.st_size, int(s.st_mtime)])


def missing(config, section, disk_csv, hpss_csv, out, limit=1024.0):
    with open(config) as fp:
        data = json.load(fp)
    sec = data[section]
    exclude = frozenset(sec.get('__exclude__', []))
    rules = {k: tuple((re.compile(r), t) for r, t in v.items())
             for k, v in sec.items() if k != '__exclude__'}
    hpss = {}
    if hpss_csv != '-':
        with open(hpss_csv, newline='') as t:
            for row in csv.DictReader(t):
                hpss[row['Name']] = (int(row['Size']), int(row['Mtime']))
    backups = {}
    nmissing = nmultiple = 0
    with open(disk_csv, newline='') as t:
        for row in csv.DictReader(t):
            f = row['Name']
            if f in exclude:
                continue
            top = f.split('/')[0]
            if top == f:
                top = '__top__'
            s = rules.get(top)
            if not s:
                continue
            mapped = 0
            for r, target in s:
                if r.match(f) is None:
                    continue
                mapped += 1
                if target in ('EXCLUDE', 'AUTOMATED'):
                    continue
                name = r.sub(target, f)
                exists = name in hpss
                newer = exists and int(row['Mtime']) > hpss[name][1]
                if name in backups:
                    backups[name]['files'].append(f)
                    backups[name]['size'] += int(row['Size'])
                    if newer:
                        backups[name]['newer'] = newer
                else:
                    backups[name] = {'files': [f], 'size': int(row['Size']),
                                     'newer': newer, 'exists': exists}
            if mapped == 0:
                nmissing += 1
            if mapped > 1:
                nmultiple += 1
    result = {}
    for k, v in backups.items():
        if v['exists'] and not v['newer']:
            continue
        if v['size'] / 1024 / 1024 / 1024 > limit:
            continue
        result[k] = v
    with open(out, 'w') as fp:
        json.dump(result, fp, indent=2, separators=(',', ': '))
    return 1 if (nmissing or nmultiple) else 0


if __name__ == '__main__':
    if sys.argv[1] == 'walk':
        walk(sys.argv[2], sys.argv[3])
        sys.exit(0)
    limit = float(sys.argv[7]) if len(sys.argv) > 7 else 1024.0
    sys.exit(missing(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], limit))
