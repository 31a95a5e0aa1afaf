#!/usr/bin/python3
"""Deterministic test tree for hsmscan: gen_tree.py ROOT NFILES.
Every rule kind of config.json gets files; sizes and mtimes derive from the
file index."""
import os
import sys

root, n = sys.argv[1], int(sys.argv[2])
base = os.path.join(root, 'data')
kinds = [
    lambda i: 'd1/batch/sub%02d/f%06d.fits' % (i % 17, i),           # whole directory
    lambda i: 'd1/notes_%06d.txt' % i,                                # put with \1
    lambda i: 'd1/templates/t%06d.dat' % i,                           # _files.tar
    lambda i: 'd2/%s/f%06d.dat' % (('batch', 'fiberassign')[i % 2], i),  # alternation \1
    lambda i: 'd2/spectro/redux/v%d/exposures/2020%04d/e%06d.fits' % (i % 3, 100 + i % 40, i),
    lambda i: 'd2/spectro/redux/v%d/spectra-64/%d/s%06d.fits' % (i % 3, i % 11, i),
    lambda i: 'd3/%d%02d/f%06d.dat' % (i // 12 % 4, i // 12 % 23, i),             # X wildcard
    lambda i: 'd3/preproc/p%06d.tmp' % i,                             # EXCLUDE
    lambda i: 'd4/auto/a%06d.dat' % i,                                # AUTOMATED
    lambda i: 'top%06d.txt' % i,                                      # __top__
    lambda i: 'd5/my_dir/m%06d.dat' % i,                              # underscore dir name
    lambda i: 'd2/spectro/redux/v%d/f,q"%06d.txt' % (i % 3, i),       # CSV quoting
]
for i in range(n):
    rel = kinds[i % len(kinds)](i)
    p = os.path.join(base, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f:
        f.write(b'x' * (i % 97))
    t = 1600000000 + i * 7
    os.utime(p, (t, t))
for rel in ('README.html', 'd1/README.html'):
    with open(os.path.join(base, rel), 'w') as f:
        f.write('excluded\n')
os.symlink('d1', os.path.join(base, 'link_to_d1'))
os.symlink('README.html', os.path.join(base, 'd1', 'link.txt'))
