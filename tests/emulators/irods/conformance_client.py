#!/usr/bin/python3
"""Conformance checks of the iRODS EMULATOR, driven by Debian's
python3-irodsclient (0.8.1): if the real client library understands every
reply, the emulator has not drifted into a private dialect.

usage: conformance_client.py PORT CONTROL_FILE [TLS_PORT CERT]
Prints one "ok: ..." line per check; exits 1 at the first failure.
"""

import base64
import hashlib
import json
import os
import ssl
import sys
import time

from irods.api_number import api_number
from irods.exception import CAT_INVALID_AUTHENTICATION, NetworkException
from irods.message import FileOpenRequest, MetadataRequest, StringStringMap, STR_PI, iRODSMessage
from irods.message.property import SubmessageProperty
from irods.meta import iRODSMeta
from irods.models import DataObject
from irods.rule import Rule
from irods.session import iRODSSession

PORT = int(sys.argv[1])
CONTROL = sys.argv[2]
ZONE, HOME = "tempZone", "/tempZone/home/rods"


def fail(what):
    print("FAIL: " + what, file=sys.stderr)
    sys.exit(1)


def ok(what):
    print("ok: " + what, flush=True)


def check(cond, what):
    if not cond:
        fail(what)
    ok(what)


def session(password="rods", port=PORT, **kw):
    return iRODSSession(host="127.0.0.1", port=port, user="rods", password=password, zone=ZONE, **kw)


def control(**faults):
    tmp = CONTROL + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(faults, fh)
    os.replace(tmp, CONTROL)
    # Make the mtime differ from a previous write in the same tick.
    st = os.stat(CONTROL)
    os.utime(CONTROL, ns=(st.st_atime_ns, st.st_mtime_ns + int(time.time() * 1000) % 1000003))


def error_code(exc):
    return getattr(exc, "code", None)


class AvuRequest(MetadataRequest):
    """ModAVUMetadataInp_PI as 4.3+ clients send it: all ten args and a
    KeyValPair_PI (0.8.1's MetadataRequest omits it; 5.0.2 refuses that)."""

    KeyValPair_PI = SubmessageProperty(StringStringMap)


def avu(sess, op, path, name, value, units=""):
    body = AvuRequest(op, "-d", path, name, value, units)
    for i in range(6, 10):
        setattr(body, "arg%d" % i, "")
    body.arg5 = units
    body.KeyValPair_PI = StringStringMap({})
    with sess.pool.get_connection() as conn:
        conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number["MOD_AVU_METADATA_AN"]))
        conn.recv()


def chksum(sess, path):
    body = FileOpenRequest(objPath=path, createMode=0, openFlags=0, offset=0, dataSize=0, numThreads=0,
                           oprType=0, KeyValPair_PI=StringStringMap({}))
    with sess.pool.get_connection() as conn:
        conn.send(iRODSMessage("RODS_API_REQ", msg=body, int_info=api_number["DATA_OBJ_CHKSUM_AN"]))
        return conn.recv().get_main_message(STR_PI).myStr


def rule(sess, body, params, output):
    out = Rule(sess, body=body, params=params, output=output).execute()
    return {p.label: p.inOutStruct.myStr for p in out.MsParam_PI}


def dmf_state(sess, path):
    obj = sess.data_objects.get(path)
    vals = [m.value for m in obj.metadata.items() if m.name == "SURF-DMF"]
    return vals[0] if vals else None


def wait_state(sess, path, want, timeout=10.0):
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = dmf_state(sess, path)
        if not seen or seen[-1] != st:
            seen.append(st)
        if st == want:
            return seen
        time.sleep(0.05)
    fail("%s never reached %s (saw %s)" % (path, want, seen))


# --- authentication ----------------------------------------------------------
try:
    with session(password="wrong") as s:
        s.collections.get(HOME)
    fail("a wrong password was accepted")
except CAT_INVALID_AUTHENTICATION:
    ok("wrong password -> CAT_INVALID_AUTHENTICATION (-826000)")

sess = session()
home = sess.collections.get(HOME)
check(home.path == HOME, "legacy native auth (703/704) and collection lookup")

# --- listing (GenQuery, paging) -----------------------------------------------
names = sorted(o.name for o in home.data_objects)
check(names == ["hello.txt", "put_single.bin"], "list data objects of the seeded home: %s" % names)
check(sorted(c.name for c in home.subcollections) == ["bulk", "sub"], "list subcollections")
hello = sess.data_objects.get(HOME + "/hello.txt")
check(hello.size == 39 and hello.checksum == "sha2:TTxCshLxekIofiN6iBUrUBBBGgw9FXvshkepWqxVMS8="
      and hello.replicas[0].status == "1", "object size, checksum and replica status as recorded")
bulk = sess.collections.get(HOME + "/bulk")
bulk_names = [o.name for o in bulk.data_objects]
check(len(bulk_names) == 1234 and len(set(bulk_names)) == 1234,
      "listing of 1234 objects pages with continueInx (500 per page)")

# --- collections ------------------------------------------------------------
sess.collections.create(HOME + "/conf/deep")
check(sess.collections.exists(HOME + "/conf/deep"), "create collection (recursive)")
sess.collections.create(HOME + "/conf/gone")
sess.collections.remove(HOME + "/conf/gone")
check(not sess.collections.exists(HOME + "/conf/gone"), "remove collection")

# --- data objects -------------------------------------------------------------
payload = bytes(range(256)) * 400 + b"tail"
path = HOME + "/conf/data.bin"
sess.data_objects.create(path)
with sess.data_objects.open(path, "w") as f:
    f.write(payload)
with sess.data_objects.open(path, "r") as f:
    back = f.read()
check(back == payload, "write then read back %d bytes" % len(payload))
with sess.data_objects.open(path, "r") as f:
    f.seek(1000)
    part = f.read(300)
    f.seek(-4, 2)
    tail = f.read()
check(part == payload[1000:1300] and tail == b"tail", "seek (SEEK_SET and SEEK_END) then read")
check(sess.data_objects.get(path).size == len(payload), "ObjStat/GenQuery size after write")
want = "sha2:" + base64.b64encode(hashlib.sha256(payload).digest()).decode()
check(chksum(sess, path) == want, "checksum (629) is sha2: + base64 sha256")
check(sess.data_objects.get(path).checksum == want, "the checksum is in the catalog")
sess.data_objects.move(path, HOME + "/conf/renamed.bin")
check(sess.data_objects.exists(HOME + "/conf/renamed.bin") and not sess.data_objects.exists(path), "rename")
sess.data_objects.unlink(HOME + "/conf/renamed.bin")
check(not sess.data_objects.exists(HOME + "/conf/renamed.bin"), "unlink")

# --- AVUs ---------------------------------------------------------------------
try:
    sess.metadata.add(DataObject, HOME + "/hello.txt", iRODSMeta("k", "v"))
    fail("an AVU request without KeyValPair_PI was accepted (5.0.2 refuses it)")
except Exception as e:  # noqa: BLE001 - the library maps -15000 to its own class
    check(error_code(e) == -15000,
          "AVU add without KeyValPair_PI refused like 5.0.2 (%s)" % type(e).__name__)
avu(sess, "add", HOME + "/hello.txt", "project", "hsmfs", "u1")
items = [(m.name, m.value, m.units) for m in sess.data_objects.get(HOME + "/hello.txt").metadata.items()]
check(("project", "hsmfs", "u1") in items, "AVU add (706) then read back by GenQuery: %s" % items)
avu(sess, "rm", HOME + "/hello.txt", "project", "hsmfs", "u1")
items = [m.name for m in sess.data_objects.get(HOME + "/hello.txt").metadata.items()]
check("project" not in items, "AVU rm")

# --- rules ----------------------------------------------------------------------
out = rule(sess, 'myrule { *res = "DMF:" ++ *p; }', {"*p": '"DUL"'}, "*res")
check(out == {"*res": "DMF:DUL"}, "rule execution (625) as recorded: %s" % out)
# The real server's rule parser limits a string token to 1,023 characters
# (MAX_TOKEN_TEXT_LEN): a longer input is a syntax error, the rule runs with
# it unset and the client is told status 0. Literals joined by ++ are fine.
out = rule(sess, 'myrule { *res = "got:" ++ *p; *n = str(strlen(*p)); }', {"*p": '"%s"' % ("a" * 1100)}, "*res%*n")
check(out == {"*res": "got:", "*n": "0"}, "a 1,102-character token: the rule runs without it, status 0: %r" % out)
out = rule(sess, 'myrule { *n = str(strlen(*p)); }', {"*p": '"%s"' % ("a" * 1021)}, "*n")
check(out == {"*n": "1021"}, "a 1,023-character token is accepted: %r" % out)
out = rule(sess, 'myrule { *n = str(strlen(*p)); }', {"*p": '"%s" ++ "%s\\*"' % ("a" * 1000, "b" * 1000)}, "*n")
check(out == {"*n": "2001"}, "two short literals joined by ++ make one 2,001-byte string: %r" % out)

# --- DMF state machine --------------------------------------------------------
dpath = HOME + "/conf/tape.bin"
sess.data_objects.create(dpath)
with sess.data_objects.open(dpath, "w") as f:
    f.write(b"on tape\n" * 1000)
seen = wait_state(sess, dpath, "DUL")
check(seen[0] == "REG" and seen[-1] == "DUL", "put -> REG -> MIG -> DUL: %s" % seen)
out = rule(sess, "release { msiDmfRelease(*paths); }", {"*paths": '"%s"' % dpath}, "")
check(dmf_state(sess, dpath) == "OFL", "release rule DUL -> OFL")
try:
    with sess.data_objects.open(dpath, "r") as f:
        f.read()
    fail("open of an OFL object succeeded")
except Exception as e:  # noqa: BLE001
    check(error_code(e) == -1101000, "open of OFL refused with RULE_FAILED_ERR -1101000 (%s)" % type(e).__name__)
out = rule(sess, "state { msiGetDmfObject(*paths, *out); }", {"*paths": '"%s,%s/hello.txt"' % (dpath, HOME)}, "*out")
check(out["*out"] == "OFL %s\nDUL %s/hello.txt" % (dpath, HOME), "state query rule, batched: %r" % out["*out"])
rule(sess, "stage { msiDmfStage(*paths); }", {"*paths": '"%s"' % dpath}, "")
seen = wait_state(sess, dpath, "DUL")
check(seen[0] == "UNM" and seen[-1] == "DUL", "stage rule OFL -> UNM -> DUL: %s" % seen)
with sess.data_objects.open(dpath, "r") as f:
    check(f.read() == b"on tape\n" * 1000, "the staged object is readable")

# --- faults -------------------------------------------------------------------
sess.cleanup()
control(drop_after=2)
try:
    with session() as s2:
        s2.collections.get(HOME)
        s2.collections.get(HOME + "/sub")
    fail("a dropped connection went unnoticed")
except NetworkException as e:
    ok("dropped connection -> NetworkException (%s)" % e)
with session() as s3:
    check(s3.collections.get(HOME).path == HOME, "a new connection works after the drop")
control(drop_mid_read=True)
try:
    with session() as s4:
        with s4.data_objects.open(HOME + "/put_single.bin", "r") as f:
            f.read()
    fail("a connection dropped mid-read went unnoticed")
except Exception as e:  # noqa: BLE001 - struct.error or NetworkException depending on where it cuts
    ok("connection dropped mid-read is an error (%s)" % type(e).__name__)
control(refuse_password=True)
try:
    with session() as s5:
        s5.collections.get(HOME)
    fail("refuse_password did not refuse")
except CAT_INVALID_AUTHENTICATION:
    ok("refuse_password fault -> CAT_INVALID_AUTHENTICATION")
control(refuse_password=False, slow_ms=300)
t0 = time.time()
with session() as s6:
    s6.collections.get(HOME)
check(time.time() - t0 >= 0.85, "slow_ms delays every reply (%.2fs for 703, 704 and a GenQuery)" % (time.time() - t0))
control(slow_ms=0)

# --- TLS ----------------------------------------------------------------------
if len(sys.argv) > 4:
    tls_port, cert = int(sys.argv[3]), sys.argv[4]
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cert)
    tls = dict(client_server_negotiation="request_server_negotiation", client_server_policy="CS_NEG_REQUIRE",
               encryption_algorithm="AES-256-CBC", encryption_key_size=32, encryption_num_hash_rounds=16,
               encryption_salt_size=8, ssl_context=ctx)
    with session(port=tls_port, **tls) as st:
        c = st.collections.get(HOME)
        with st.data_objects.open(HOME + "/hello.txt", "r") as f:
            data = f.read()
        check(isinstance(st.pool.get_connection().socket, ssl.SSLSocket) and data.startswith(b"hello, irods"),
              "CS_NEG_REQUIRE negotiation, TLS with the throwaway certificate, auth and read over TLS")
    try:
        with session(port=tls_port, client_server_negotiation="request_server_negotiation",
                     client_server_policy="CS_NEG_REFUSE") as sr:
            sr.collections.get(HOME)
        fail("a CS_NEG_REFUSE client got through a TLS-only server")
    except NetworkException:
        ok("CS_NEG_REFUSE client vs CS_NEG_REQUIRE server -> negotiation failure")
print("conformance: all checks passed")
