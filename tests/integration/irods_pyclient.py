#!/usr/bin/python3
"""An independent view of an iRODS zone for the tests and benchmarks of the
iRODS backend: Debian's python3-irodsclient (not our C++ client) lists,
checksums and copies, so that what the mount shows is compared with what
another client sees.

usage: irods_pyclient.py PORT COMMAND ARGS...
  list COLL              every object below COLL: "relpath|size", sorted
  states COLL ATTR       every object below COLL: "relpath|checksum|ATTR value"
  bench-list COLL        lists COLL (objects and sizes) once; prints seconds
  bench-get COLL DIR     gets every object of COLL into DIR; prints seconds
  bench-put DIR COLL     puts every file of DIR into COLL; prints seconds
Environment: IRODS_TLS_CA (a CA file: connect with TLS), IRODS_PASSWORD.
"""

import os
import ssl
import sys
import time

from irods.column import Like
from irods.models import Collection, DataObject, DataObjectMeta
from irods.session import iRODSSession

PORT = int(sys.argv[1])
ZONE = "tempZone"


def session():
    kw = {}
    ca = os.environ.get("IRODS_TLS_CA")
    if ca:
        ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=ca)
        kw = dict(client_server_negotiation="request_server_negotiation",
                  client_server_policy="CS_NEG_REQUIRE", encryption_algorithm="AES-256-CBC",
                  encryption_key_size=32, encryption_num_hash_rounds=16, encryption_salt_size=8,
                  ssl_context=ctx)
    return iRODSSession(host="127.0.0.1", port=PORT, user="rods",
                        password=os.environ.get("IRODS_PASSWORD", "rods"), zone=ZONE, **kw)


def rel(coll, path):
    return path[len(coll) + 1:]


def objects_below(s, coll):
    rows = {}
    for c in (coll, coll + "/%"):
        for r in s.query(Collection.name, DataObject.name, DataObject.size,
                         DataObject.checksum).filter(Like(Collection.name, c)):
            rows[r[Collection.name] + "/" + r[DataObject.name]] = r
    return rows


def copy_stream(src, dst):
    while True:
        b = src.read(4 << 20)
        if not b:
            break
        dst.write(b)


def main():
    cmd = sys.argv[2]
    with session() as s:
        if cmd == "list":
            coll = sys.argv[3]
            for path, r in sorted(objects_below(s, coll).items()):
                print("%s|%s" % (rel(coll, path), r[DataObject.size]))
        elif cmd == "states":
            coll, attr = sys.argv[3], sys.argv[4]
            state = {}
            for c in (coll, coll + "/%"):
                q = s.query(Collection.name, DataObject.name, DataObjectMeta.value).filter(
                    Like(Collection.name, c)).filter(DataObjectMeta.name == attr)
                for r in q:
                    state[r[Collection.name] + "/" + r[DataObject.name]] = r[DataObjectMeta.value]
            for path, r in sorted(objects_below(s, coll).items()):
                print("%s|%s|%s" % (rel(coll, path), r[DataObject.checksum] or "",
                                    state.get(path, "")))
        elif cmd == "bench-list":
            coll = sys.argv[3]
            t = time.monotonic()
            n = sum(1 for _ in s.query(DataObject.name, DataObject.size).filter(
                Collection.name == coll))
            print("%.3f %d" % (time.monotonic() - t, n))
        elif cmd == "bench-get":
            coll, out = sys.argv[3], sys.argv[4]
            t = time.monotonic()
            for o in s.collections.get(coll).data_objects:
                with o.open("r") as src, open(os.path.join(out, o.name), "wb") as dst:
                    copy_stream(src, dst)
            print("%.3f" % (time.monotonic() - t))
        elif cmd == "bench-put":
            src_dir, coll = sys.argv[3], sys.argv[4]
            t = time.monotonic()
            for name in sorted(os.listdir(src_dir)):
                with open(os.path.join(src_dir, name), "rb") as src, \
                        s.data_objects.open(coll + "/" + name, "w") as dst:
                    copy_stream(src, dst)
            print("%.3f" % (time.monotonic() - t))
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
