#!/usr/bin/python3
"""iRODS EMULATOR for tests: a loopback server speaking the iRODS native
protocol (4-byte length + MsgHeader_PI XML framing) over an in-memory catalog,
with a DMF tape-state machine on an AVU and fault injection.

It is NOT iRODS. It answers the subset of the protocol that hsmfs and
python3-irodsclient use, shaped like the replies recorded from a real iRODS
5.0.2 server in shared/irods-recordings/. See README.md next to this file.
Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

# Error codes (iRODS rodsErrorTable.h).
SYS_HEADER_READ_LEN_ERR = -4000
SYS_API_INPUT_ERR = -15000  # what 5.0.2 answers to an AVU request without KeyValPair_PI
SYS_UNMATCHED_API_NUM = -12000
USER_FILE_DOES_NOT_EXIST = -310000
OVERWRITE_WITHOUT_FORCE_FLAG = -312000
CAT_NO_ROWS_FOUND = -808000
CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME = -809000
CAT_UNKNOWN_COLLECTION = -814000
CAT_UNKNOWN_FILE = -817000
CAT_COLLECTION_NOT_EMPTY = -821000
CAT_INVALID_AUTHENTICATION = -826000
CAT_INVALID_ARGUMENT = -816000
RULE_FAILED_ERR = -1101000
NO_MICROSERVICE_FOUND_ERR = -1209000
SYS_INVALID_FILE_PATH = -824000
SYS_BAD_FILE_DESCRIPTOR = -346000  # SYS_FILE_DESC_OUT_OF_RANGE
LEGACY_AUTH_DEPRECATED = -3002000

MAX_SQL_ATTR = 50  # a GenQueryOut_PI always carries 50 SqlResult_PI
MAX_PASSWORD_LEN = 50

O_ACCMODE, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC = 3, 1, 2, 0o100, 0o1000

DMF_STATES = ("REG", "MIG", "DUL", "OFL", "UNM", "NMG", "PAR", "INV")


def now_str():
    return "%011d" % int(time.time())


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


class X:
    """A packed structure: name plus ordered (tag, value-or-X-or-list) items.
    Packed the way the real server does: one element per line."""

    def __init__(self, name, *items):
        self.name, self.items = name, list(items)

    def pack(self):
        out = ["<%s>\n" % self.name]
        for tag, val in self.items:
            if isinstance(val, X):
                out.append(val.pack())
            elif isinstance(val, list):
                for v in val:
                    out.append(v.pack() if isinstance(v, X) else "<%s>%s</%s>\n" % (tag, xml_escape(v), tag))
            else:
                out.append("<%s>%s</%s>\n" % (tag, xml_escape(val), tag))
        out.append("</%s>\n" % self.name)
        return "".join(out)


def parse_xml(data):
    """Lenient parse of a request body: the real server accepts loosely
    formatted XML; a bare '&' is the usual offender."""
    text = data.decode("utf-8", "replace")
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        text = re.sub(r"&(?!(amp|lt|gt|quot|apos|#\d+);)", "&amp;", text)
        return ET.fromstring(text)


def txt(el, tag, default=""):
    if el is None:
        return default
    f = el.find(tag)
    if f is None or f.text is None:
        return default
    return f.text


def kvp(el):
    """KeyValPair_PI -> dict, or None when the element is absent."""
    if el is None:
        return None
    k = el.find("KeyValPair_PI")
    if k is None:
        return None
    keys = [e.text or "" for e in k.findall("keyWord")]
    vals = [e.text or "" for e in k.findall("svalue")]
    return dict(zip(keys, vals))


# ---------------------------------------------------------------- catalog


class Coll:
    def __init__(self, cid, path, owner, zone):
        self.id, self.path, self.owner, self.zone = cid, path, owner, zone
        self.ctime = self.mtime = now_str()
        self.avus = []  # [name, value, units, id]


class Obj:
    def __init__(self, oid, path, owner, zone):
        self.id, self.path, self.owner, self.zone = oid, path, owner, zone
        self.data = bytearray()
        self.checksum = ""
        self.ctime = self.mtime = now_str()
        self.avus = []
        self.data_type = "generic"
        # Extra catalog rows for GenQuery only: [{"status": "0"|"1", "size": n}];
        # None = the one good replica that holds `data`.
        self.replicas = None


def parent_of(path):
    p = path.rsplit("/", 1)[0]
    return p if p else "/"


class Catalog:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.next_id = 10000
        self.colls = {}
        self.objs = {}
        self.by_coll = {}  # coll path -> {name: Obj}
        self.timers = []  # (due, obj_id, from_state, to_state)
        z = "/" + args.zone
        for p in ("/", z, z + "/home", z + "/trash", z + "/trash/home"):
            self.mkcoll(p, "rods")
        for u in args.users:
            self.mkcoll("%s/home/%s" % (z, u), u)
            self.mkcoll("%s/trash/home/%s" % (z, u), u)

    def new_id(self):
        self.next_id += 1
        return self.next_id

    def mkcoll(self, path, owner):
        if path in self.colls:
            return self.colls[path]
        c = Coll(self.new_id(), path, owner, self.args.zone)
        self.colls[path] = c
        self.by_coll.setdefault(path, {})
        return c

    def coll_of_id(self, cid):
        for c in self.colls.values():
            if str(c.id) == cid:
                return c
        return None

    def add_obj(self, path, owner, data=b""):
        o = Obj(self.new_id(), path, owner, self.args.zone)
        o.data = bytearray(data)
        self.objs[path] = o
        self.by_coll.setdefault(parent_of(path), {})[path.rsplit("/", 1)[1]] = o
        return o

    def del_obj(self, path):
        o = self.objs.pop(path)
        self.by_coll.get(parent_of(path), {}).pop(path.rsplit("/", 1)[1], None)
        return o

    def find_obj_by_id(self, oid):
        for o in self.objs.values():
            if o.id == oid:
                return o
        return None

    # --- DMF ---------------------------------------------------------------
    def dmf_managed(self, path):
        roots = self.args.dmf_roots
        if not self.args.dmf_attr or roots == ["none"]:
            return False
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def dmf_state(self, o):
        for a in o.avus:
            if a[0] == self.args.dmf_attr:
                return a[1]
        return None

    def set_dmf(self, o, state):
        o.avus = [a for a in o.avus if a[0] != self.args.dmf_attr]
        o.avus.append([self.args.dmf_attr, state, "", self.new_id()])

    def schedule(self, o, delay, frm, to):
        self.timers.append((time.monotonic() + delay, o.id, frm, to))

    def after_put(self, o):
        # A put lands on the DMF disk cache: REG, then migrated to tape (MIG)
        # and finally dual-resident (DUL), as dmput does in the background.
        if not self.dmf_managed(o.path):
            return
        self.timers = [t for t in self.timers if t[1] != o.id]
        self.set_dmf(o, "REG")
        self.schedule(o, self.args.mig_delay, "REG", "MIG")

    def tick(self):
        with self.lock:
            t = time.monotonic()
            due = [x for x in self.timers if x[0] <= t]
            self.timers = [x for x in self.timers if x[0] > t]
            for _, oid, frm, to in due:
                o = self.find_obj_by_id(oid)
                if o is None or self.dmf_state(o) != frm:
                    continue
                self.set_dmf(o, to)
                if to == "MIG":
                    self.schedule(o, self.args.dul_delay, "MIG", "DUL")

    def stage(self, o):
        st = self.dmf_state(o)
        if st == "OFL":
            self.set_dmf(o, "UNM")
            self.schedule(o, self.args.stage_delay, "UNM", "DUL")
        return self.dmf_state(o)

    def release(self, o):
        if self.dmf_state(o) in ("DUL", "MIG"):
            self.timers = [t for t in self.timers if t[1] != o.id]
            self.set_dmf(o, "OFL")
        return self.dmf_state(o)

    # --- seeding --------------------------------------------------------------
    def seed_dir(self, src, dest):
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            cpath = dest if rel == "." else dest + "/" + rel.replace(os.sep, "/")
            self.mkcoll_p(cpath, self.args.users[0])
            for f in sorted(files):
                with open(os.path.join(root, f), "rb") as fh:
                    o = self.add_obj(cpath + "/" + f, self.args.users[0], fh.read())
                if self.dmf_managed(o.path):
                    self.set_dmf(o, self.args.seed_state)

    def mkcoll_p(self, path, owner):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self.mkcoll("/" + "/".join(parts[:i]), owner)

    def seed_json(self, fname):
        """{"collections": [path...], "objects": [{"path", "data" | "data_b64" |
        "size", "checksum": true|"sha2:...", "avus": [[n, v, u]...],
        "mtime": int}]}; "size" makes a deterministic filler of that length."""
        with open(fname) as fh:
            spec = json.load(fh)
        for c in spec.get("collections", []):
            self.mkcoll_p(c, self.args.users[0])
        for od in spec.get("objects", []):
            p = od["path"]
            self.mkcoll_p(parent_of(p), self.args.users[0])
            if "data_b64" in od:
                data = base64.b64decode(od["data_b64"])
            elif "data" in od:
                data = od["data"].encode()
            else:
                n = int(od.get("size", 0))
                data = (p.encode() + b"\n") * (n // (len(p) + 1) + 1)
                data = data[:n]
            o = self.add_obj(p, self.args.users[0], data)
            ck = od.get("checksum")
            if ck is True:
                o.checksum = "sha2:" + base64.b64encode(hashlib.sha256(data).digest()).decode()
            elif ck:
                o.checksum = ck
            if "mtime" in od:
                o.ctime = o.mtime = "%011d" % int(od["mtime"])
            for a in od.get("avus", []):
                o.avus.append([a[0], a[1], a[2] if len(a) > 2 else "", self.new_id()])
            if "replicas" in od:
                o.replicas = [{"status": str(r.get("status", "1")), "size": r.get("size")}
                              for r in od["replicas"]]
            if self.dmf_managed(p) and self.dmf_state(o) is None:
                self.set_dmf(o, self.args.seed_state)
        for n in range(int(spec.get("bulk", {}).get("count", 0))):
            b = spec["bulk"]
            p = "%s/%s%06d" % (b["collection"], b.get("prefix", "obj"), n)
            self.mkcoll_p(b["collection"], self.args.users[0])
            o = self.add_obj(p, self.args.users[0], (b"%d\n" % n) * int(b.get("repeat", 1)))
            if self.dmf_managed(p):
                self.set_dmf(o, b.get("state", self.args.seed_state))


# ---------------------------------------------------------------- GenQuery

COLL_COLS = {500: "id", 501: "path", 502: "parent", 503: "owner", 504: "zone", 505: "map",
             506: "inherit", 507: "comments", 508: "ctime", 509: "mtime"}


def coll_values(c):
    return {500: str(c.id), 501: c.path, 502: parent_of(c.path) if c.path != "/" else "/",
            503: c.owner, 504: c.zone, 505: "0", 506: "", 507: "", 508: c.ctime, 509: c.mtime}


def obj_values(cat, o):
    coll = cat.colls[parent_of(o.path)]
    zone = "/" + cat.args.zone
    v = {401: str(o.id), 402: str(coll.id), 403: o.path.rsplit("/", 1)[1], 404: "0", 405: "",
         406: o.data_type, 407: str(len(o.data)), 409: cat.args.resource,
         410: "/var/lib/irods/Vault" + o.path[len(zone):], 411: o.owner, 412: o.zone,
         413: "1", 414: "", 415: o.checksum, 416: "00000000000", 417: "0", 418: "",
         419: o.ctime, 420: o.mtime, 421: "", 422: cat.args.resource, 423: "10013"}
    v.update(coll_values(coll))
    return v


def replica_values(cat, o):
    """One catalog row per replica (seeded "replicas"), else the one replica."""
    base = obj_values(cat, o)
    if not o.replicas:
        return [base]
    out = []
    for i, r in enumerate(o.replicas):
        v = dict(base)
        v.update({404: str(i), 413: r["status"]})
        if r.get("size") is not None:
            v[407] = str(r["size"])
        out.append(v)
    return out


def parse_conditions(s):
    """'= 'x'' | "like 'a%'" | "in ('a','b')" | "between 'a' 'b'" | ... joined by '||'
    -> list of alternatives (op, [values])."""
    alts = []
    for part in s.split("||"):
        part = part.strip()
        m = re.match(r"(?i)\s*(not like|like|not in|in|between|<>|!=|>=|<=|=|<|>)\s*(.*)$", part, re.S)
        if not m:
            raise ValueError("bad condition %r" % s)
        op, rest = m.group(1).lower(), m.group(2)
        vals = re.findall(r"'((?:[^']|'')*)'", rest)
        if not vals:
            vals = [rest.strip()]
        alts.append((op, vals))
    return alts


def like_re(pat):
    out = ""
    for ch in pat:
        out += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
    return re.compile("^" + out + "$", re.S)


def cmp_val(a, b):
    try:
        fa, fb = float(a), float(b)
        return (fa > fb) - (fa < fb)
    except ValueError:
        return (a > b) - (a < b)


def cond_match(val, alts):
    for op, vals in alts:
        v0 = vals[0]
        if op == "=" and val == v0:
            return True
        if op in ("!=", "<>") and val != v0:
            return True
        if op == "like" and like_re(v0).match(val):
            return True
        if op == "not like" and not like_re(v0).match(val):
            return True
        if op == "in" and val in vals:
            return True
        if op == "not in" and val not in vals:
            return True
        if op == "between" and len(vals) > 1 and cmp_val(val, vals[0]) >= 0 and cmp_val(val, vals[1]) <= 0:
            return True
        if op in ("<", ">", "<=", ">="):
            c = cmp_val(val, v0)
            if {"<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0}[op]:
                return True
    return False


def gen_query_rows(cat, selects, conds):
    """Rows (dicts col -> value) of the implicit join the columns ask for."""
    cols = set(selects) | set(conds)
    data_side = any(400 <= c < 500 or 600 <= c < 610 for c in cols)
    rows = []
    if data_side:
        # Narrow the scan with an equality on the collection when there is one.
        cands = None
        for c, alts in conds.items():
            if c == 501 and len(alts) == 1 and alts[0][0] == "=":
                cands = list(cat.by_coll.get(alts[0][1][0], {}).values())
            elif c == 402 and len(alts) == 1 and alts[0][0] == "=":
                co = cat.coll_of_id(alts[0][1][0])
                cands = list(cat.by_coll.get(co.path, {}).values()) if co else []
        if cands is None:
            cands = list(cat.objs.values())
        meta = any(600 <= c < 610 for c in cols)
        for o in cands:
            for base in replica_values(cat, o):
                if meta:
                    for a in o.avus:
                        r = dict(base)
                        r.update({600: a[0], 601: a[1], 602: a[2], 603: str(a[3])})
                        rows.append(r)
                else:
                    rows.append(base)
    elif any(610 <= c < 620 for c in cols):
        for c in cat.colls.values():
            for a in c.avus:
                r = coll_values(c)
                r.update({610: a[0], 611: a[1], 612: a[2], 613: str(a[3])})
                rows.append(r)
    else:
        rows = [coll_values(c) for c in cat.colls.values() if c.path != "/"]
    return [r for r in rows if all(cond_match(r.get(c, ""), alts) for c, alts in conds.items())]


# ---------------------------------------------------------------- rules


# The real server's rule parser refuses a string token longer than this
# (MAX_TOKEN_TEXT_LEN in iRODS' rule engine); in an input parameter that is a
# syntax error after which the rule runs with the parameter unset and the
# client is told status 0.
MAX_TOKEN_TEXT_LEN = 1023


class RuleSyntaxError(Exception):
    pass


def rule_tokens(expr):
    """Tokens of a rule-language expression: ("str", value), ("op", "++"),
    ("(", ), (")", ) and ("word", text) for variables, names and numbers."""
    toks, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j, val = i + 1, []
            while j < len(expr) and expr[j] != '"':
                if expr[j] == "\\" and j + 1 < len(expr):
                    val.append({"n": "\n", "t": "\t", "r": "\r"}.get(expr[j + 1], expr[j + 1]))
                    j += 2
                else:
                    val.append(expr[j])
                    j += 1
            if j >= len(expr):
                raise RuleSyntaxError("unterminated string")
            if j + 1 - i > MAX_TOKEN_TEXT_LEN:
                raise RuleSyntaxError("string token of %d characters (max %d)" % (j + 1 - i, MAX_TOKEN_TEXT_LEN))
            toks.append(("str", "".join(val)))
            i = j + 1
        elif expr.startswith("++", i):
            toks.append(("op", "++"))
            i += 2
        elif c in "()":
            toks.append((c, c))
            i += 1
        else:
            m = re.compile(r"[*$]?[\w.:/-]+").match(expr, i)
            if not m:
                raise RuleSyntaxError("unexpected %r" % c)
            toks.append(("word", m.group()))
            i = m.end()
    return toks


def rule_eval(expr, env):
    """Evaluates a rule-language expression: string literals, variables
    (unset: ""), str(x), strlen(x) and "++" between them."""
    toks = rule_tokens(expr)
    pos = [0]

    def term():
        if pos[0] >= len(toks):
            raise RuleSyntaxError("missing operand")
        kind, val = toks[pos[0]][0], toks[pos[0]][-1]
        pos[0] += 1
        if kind == "str":
            return val
        if kind != "word":
            raise RuleSyntaxError("unexpected %r" % val)
        if val.startswith("*"):
            return env.get(val, "")
        if pos[0] < len(toks) and toks[pos[0]][0] == "(":
            pos[0] += 1
            inner = expression()
            if pos[0] >= len(toks) or toks[pos[0]][0] != ")":
                raise RuleSyntaxError("missing )")
            pos[0] += 1
            if val == "str":
                return inner
            if val == "strlen":
                return str(len(inner.encode()))
            raise RuleSyntaxError("unknown function %s" % val)
        return val

    def expression():
        out = term()
        while pos[0] < len(toks) and toks[pos[0]][0] == "op":
            pos[0] += 1
            out += term()
        return out

    if not toks:
        return ""
    out = expression()
    if pos[0] != len(toks):
        raise RuleSyntaxError("unexpected %r" % (toks[pos[0]][-1],))
    return out


def split_paths(s):
    return [p.strip() for p in re.split(r"[,\n%]", s) if p.strip()]


# ---------------------------------------------------------------- connection


class Drop(Exception):
    """Fault injection: close the connection now."""


class Conn:
    def __init__(self, server, sock, peer):
        self.srv, self.sock, self.peer = server, sock, peer
        self.cat = server.cat
        self.args = server.args
        self.user = None
        self.authed = False
        self.challenge = None
        self.fds = {}
        self.queries = {}
        self.next_q = 1
        self.slept = False  # the slow_ms delay of the pending reply is done

    # --- framing -------------------------------------------------------------
    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def read_header(self):
        (hlen,) = struct.unpack(">I", self.recv_exact(4))
        if hlen > 1 << 20:
            raise EOFError
        h = self.recv_exact(hlen).decode("utf-8", "replace")

        def g(tag):
            m = re.search(r"<%s>\s*(.*?)\s*</%s>" % (tag, tag), h, re.S)
            return m.group(1) if m else ""

        return g("type"), int(g("msgLen") or 0), int(g("errorLen") or 0), int(g("bsLen") or 0), int(g("intInfo") or 0)

    def read_msg(self):
        typ, ml, el, bl, ii = self.read_header()
        msg = self.recv_exact(ml) if ml else b""
        err = self.recv_exact(el) if el else b""
        bs = self.recv_exact(bl) if bl else b""
        return typ, msg, err, bs, ii

    def send(self, typ, msg=None, int_info=0, bs=b"", error=None, partial_bs=False):
        if self.srv.faults.get("slow_ms") and not self.slept:
            time.sleep(self.srv.faults["slow_ms"] / 1000.0)
        self.slept = False
        body = msg.pack().encode() if isinstance(msg, X) else (msg or b"")
        errb = error.pack().encode() if isinstance(error, X) else b""
        hdr = ("<MsgHeader_PI>\n<type>%s</type>\n<msgLen>%d</msgLen>\n<errorLen>%d</errorLen>\n"
               "<bsLen>%d</bsLen>\n<intInfo>%d</intInfo>\n</MsgHeader_PI>\n"
               % (typ, len(body), len(errb), len(bs), int_info)).encode()
        data = struct.pack(">I", len(hdr)) + hdr + body + errb
        if partial_bs:
            self.sock.sendall(data + bs[: len(bs) // 2])
            raise Drop()
        self.sock.sendall(data + bs)

    def reply(self, msg=None, int_info=0, bs=b"", error=None, partial_bs=False):
        self.send("RODS_API_REPLY", msg, int_info, bs, error, partial_bs)

    # --- session -------------------------------------------------------------
    def run(self):
        try:
            self.startup()
            while True:
                typ, msg, err, bs, ii = self.read_msg()
                if typ == "RODS_DISCONNECT":
                    if isinstance(self.sock, ssl.SSLSocket):
                        # The client unwraps (close_notify both ways) before closing.
                        self.sock = self.sock.unwrap()
                    return
                self.srv.count_message()
                if typ != "RODS_API_REQ":
                    self.reply(int_info=SYS_UNMATCHED_API_NUM)
                    continue
                self.api(ii, msg, bs)
        except Drop:
            # Reset rather than a clean FIN: a peer blocked in recv() gets
            # ECONNRESET at once (python3-irodsclient 0.8.1 spins forever on
            # the empty reads of an orderly close).
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def startup(self):
        with self.srv.fault_lock:
            self.srv.load_control()
        typ, msg, _, _, _ = self.read_msg()
        if typ != "RODS_CONNECT":
            raise EOFError
        sp = parse_xml(msg)
        self.user = txt(sp, "proxyUser")
        option = txt(sp, "option")
        policy = self.args.tls_policy
        use_ssl = False
        if "request_server_negotiation" in option:
            self.send("RODS_CS_NEG_T", X("CS_NEG_PI", ("status", 1), ("result", policy)))
            typ, msg, _, _, _ = self.read_msg()
            result = txt(parse_xml(msg), "result") if msg else ""
            if "CS_NEG_FAILURE" in result:
                # Let the client say RODS_DISCONNECT before closing, so that it
                # sees the negotiation failure rather than a broken pipe.
                self.sock.settimeout(5)
                self.read_msg()
                raise EOFError
            use_ssl = "CS_NEG_USE_SSL" in result
            if use_ssl and not self.srv.ssl_ctx:
                raise EOFError
        elif policy == "CS_NEG_REQUIRE":
            # A client that does not negotiate cannot satisfy a TLS-only server.
            self.send("RODS_VERSION", X("Version_PI", ("status", -1), ("relVersion", self.args.rel_version),
                                        ("apiVersion", "d"), ("reconnPort", 0), ("reconnAddr", ""),
                                        ("cookie", 400)), int_info=-4000)
            raise EOFError
        self.send("RODS_VERSION", X("Version_PI", ("status", 0), ("relVersion", self.args.rel_version),
                                    ("apiVersion", "d"), ("reconnPort", 0), ("reconnAddr", ""),
                                    ("cookie", 400)))
        if use_ssl:
            self.sock = self.srv.ssl_ctx.wrap_socket(self.sock, server_side=True)
            # Encryption settings: a header whose lengths carry key size, salt
            # size and hash rounds (no body), then SHARED_SECRET + key bytes.
            self.read_header()
            self.read_msg()

    # --- APIs ----------------------------------------------------------------
    def api(self, num, msg, bs):
        if self.srv.faults.get("slow_ms"):
            # Before the catalog lock: a slow reply must not stall the
            # other connections' requests.
            time.sleep(self.srv.faults["slow_ms"] / 1000.0)
            self.slept = True
        el = parse_xml(msg) if msg.strip() else None
        if num in (703, 704, 110000):
            return self.auth(num, el)
        if not self.authed:
            return self.reply(int_info=CAT_INVALID_AUTHENTICATION)
        handler = {633: self.obj_stat, 702: self.gen_query, 681: self.coll_create, 679: self.coll_rm,
                   601: self.obj_create, 602: self.obj_open, 675: self.obj_read, 676: self.obj_write,
                   674: self.obj_lseek, 673: self.obj_close, 615: self.obj_unlink, 627: self.rename,
                   629: self.checksum, 706: self.mod_avu, 625: self.exec_rule, 606: self.put_single,
                   608: self.get_single}.get(num)
        if handler is None:
            return self.reply(int_info=SYS_UNMATCHED_API_NUM)
        self.srv.log("api %d user=%s" % (num, self.user))
        if num in (675, 608):
            return handler(el, bs)
        with self.cat.lock:
            handler(el, bs)

    def auth_ok(self, response_bytes, challenge):
        pw = self.args.passwords.get(self.user)
        if pw is None or self.srv.faults.get("refuse_password"):
            return False
        d = hashlib.md5(challenge + pw.encode().ljust(MAX_PASSWORD_LEN, b"\0")).digest()
        d = bytes(1 if c == 0 else c for c in d)
        return secrets.compare_digest(d, response_bytes)

    def auth(self, num, el):
        if num == 703:
            self.challenge = secrets.token_hex(32).encode()
            err = X("RError_PI", ("count", 1),
                    ("RErrMsg_PI", X("RErrMsg_PI", ("status", LEGACY_AUTH_DEPRECATED),
                                     ("msg", "The legacy authentication plugin interface has been deprecated. "
                                             "Please update client to not use legacy authentication plugins."))))
            return self.reply(X("authRequestOut_PI", ("challenge", base64.b64encode(self.challenge).decode())),
                              error=err)
        if num == 704:
            user = txt(el, "username").split("#")[0]
            try:
                resp = base64.b64decode(txt(el, "response"))
            except ValueError:
                resp = b""
            if self.challenge and user == self.user and self.auth_ok(resp, self.challenge):
                self.authed = True
                self.srv.log("auth ok user=%s (legacy)" % user)
                return self.reply()
            self.srv.log("auth FAILED user=%s (legacy)" % user)
            return self.reply(int_info=CAT_INVALID_AUTHENTICATION)
        # 110000: the 4.3+ authentication plugin flow, JSON in BinBytesBuf_PI.
        try:
            req = json.loads(base64.b64decode(txt(el, "buf")).rstrip(b"\0"))
        except ValueError:
            return self.reply(int_info=SYS_API_INPUT_ERR)
        op = req.get("next_operation")
        if req.get("scheme") != "native" or req.get("user_name", self.user) != self.user:
            return self.reply(int_info=CAT_INVALID_AUTHENTICATION)
        if op == "auth_agent_auth_request":
            self.challenge = secrets.token_hex(32).encode()
            req["request_result"] = self.challenge.decode()
        elif op == "auth_agent_auth_response":
            try:
                digest = base64.b64decode(req.get("digest", ""))
            except ValueError:
                digest = b""
            if not (self.challenge and req.get("request_result", "").encode() == self.challenge
                    and self.auth_ok(digest, self.challenge)):
                self.srv.log("auth FAILED user=%s (plugin)" % self.user)
                return self.reply(int_info=CAT_INVALID_AUTHENTICATION)
            self.authed = True
            self.srv.log("auth ok user=%s (plugin)" % self.user)
        else:
            return self.reply(int_info=SYS_API_INPUT_ERR)
        out = json.dumps(req, sort_keys=True, separators=(",", ":")).encode() + b"\0"
        self.reply(X("BinBytesBuf_PI", ("buflen", len(out)), ("buf", base64.b64encode(out).decode())))

    def obj_inp(self, el):
        return (txt(el, "objPath"), int(txt(el, "openFlags", "0") or 0), kvp(el) or {})

    def obj_stat(self, el, bs):
        path = txt(el, "objPath").rstrip("/") or "/"
        o = self.cat.objs.get(path)
        if o:
            return self.reply(X("RodsObjStat_PI", ("objSize", len(o.data)), ("objType", 1), ("dataMode", 420),
                                ("dataId", o.id), ("chksum", o.checksum), ("ownerName", o.owner),
                                ("ownerZone", o.zone), ("createTime", o.ctime), ("modifyTime", o.mtime)),
                              int_info=1)
        c = self.cat.colls.get(path)
        if c:
            return self.reply(X("RodsObjStat_PI", ("objSize", 0), ("objType", 2), ("dataMode", 0),
                                ("dataId", c.id), ("chksum", ""), ("ownerName", c.owner),
                                ("ownerZone", c.zone), ("createTime", c.ctime), ("modifyTime", c.mtime)),
                              int_info=2)
        self.reply(int_info=USER_FILE_DOES_NOT_EXIST)

    def gen_query_out(self, cols, rows, cont, total=0):
        res = []
        for c in cols:
            vals = [r.get(c, "") for r in rows]
            reslen = max([50] + [len(v.encode()) + 1 for v in vals])
            res.append(X("SqlResult_PI", ("attriInx", c), ("reslen", reslen), ("value", vals)))
        while len(res) < MAX_SQL_ATTR:
            res.append(X("SqlResult_PI", ("attriInx", 0), ("reslen", 0)))
        return X("GenQueryOut_PI", ("rowCnt", len(rows)), ("attriCnt", len(cols) if rows else 0),
                 ("continueInx", cont), ("totalRowCount", total), ("SqlResult_PI", res))

    def gen_query(self, el, bs):
        max_rows = int(txt(el, "maxRows", "500") or 0)
        cont = int(txt(el, "continueInx", "0") or 0)
        offset = int(txt(el, "partialStartIndex", "0") or 0)
        options = int(txt(el, "options", "0") or 0)
        if cont:
            pend = self.queries.pop(cont, None)
            if max_rows <= 0 or pend is None:
                # maxRows 0 closes the statement.
                return self.reply(self.gen_query_out([], [], 0), int_info=0 if pend else CAT_NO_ROWS_FOUND)
            cols, rows = pend
        else:
            ii = el.find("InxIvalPair_PI")
            inx = [int(e.text) for e in ii.findall("inx")]
            ival = [int(e.text) for e in ii.findall("ivalue")]
            iv = el.find("InxValPair_PI")
            conds = {}  # column -> list of alternatives lists; every entry must hold
            try:
                for i, s in zip([int(e.text) for e in iv.findall("inx")],
                                [e.text or "" for e in iv.findall("svalue")]):
                    conds.setdefault(i, []).append(parse_conditions(s))
            except ValueError:
                return self.reply(int_info=CAT_INVALID_ARGUMENT)
            # Single conditions narrow the scan; the others only name their column.
            narrow = {c: (lst[0] if len(lst) == 1 else [("like", ["%"])]) for c, lst in conds.items()}
            rows = [r for r in gen_query_rows(self.cat, inx, narrow)
                    if all(all(cond_match(r.get(c, ""), alts) for alts in lst) for c, lst in conds.items())]
            cols = inx
            counts = [c for c, v in zip(inx, ival) if v & 0x3FF == 6]
            if counts:
                if not rows:
                    return self.reply(self.gen_query_out([], [], 0), int_info=CAT_NO_ROWS_FOUND)
                r = {c: (str(len(set(x.get(c, "") for x in rows))) if c in counts else rows[0].get(c, "")) for c in cols}
                rows = [r]
            else:
                seen, uniq = set(), []
                for r in rows:
                    k = tuple(r.get(c, "") for c in cols)
                    if k not in seen:
                        seen.add(k)
                        uniq.append(r)
                uniq.sort(key=lambda r: tuple(r.get(c, "") for c in cols))
                rows = uniq[offset:]
            if max_rows <= 0:
                return self.reply(self.gen_query_out([], [], 0))
        total = len(rows) if options & 0x20 else 0
        if not rows:
            return self.reply(self.gen_query_out([], [], 0), int_info=CAT_NO_ROWS_FOUND)
        page, rest = rows[:max_rows], rows[max_rows:]
        nxt = 0
        if rest:
            nxt = self.next_q
            self.next_q += 1
            self.queries[nxt] = (cols, rest)
        self.reply(self.gen_query_out(cols, page, nxt, total))

    def coll_create(self, el, bs):
        path = txt(el, "collName").rstrip("/")
        kv = kvp(el) or {}
        if path in self.cat.colls:
            return self.reply(int_info=0 if "recursiveOpr" in kv else CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME)
        if path in self.cat.objs or not path.startswith("/" + self.args.zone + "/"):
            return self.reply(int_info=CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME if path in self.cat.objs
                              else SYS_INVALID_FILE_PATH)
        if parent_of(path) not in self.cat.colls and "recursiveOpr" not in kv:
            return self.reply(int_info=CAT_UNKNOWN_COLLECTION)
        self.cat.mkcoll_p(path, self.user)
        self.cat.colls[parent_of(path)].mtime = now_str()
        self.reply()

    def coll_rm(self, el, bs):
        path = txt(el, "collName").rstrip("/")
        kv = kvp(el) or {}
        if path not in self.cat.colls:
            return self.reply(int_info=CAT_UNKNOWN_COLLECTION)
        sub = [p for p in self.cat.colls if p.startswith(path + "/")]
        objs = [p for p in self.cat.objs if p.startswith(path + "/")]
        if (sub or objs) and "recursiveOpr" not in kv:
            return self.reply(int_info=CAT_COLLECTION_NOT_EMPTY)
        for p in objs:
            self.cat.del_obj(p)
        for p in sub + [path]:
            self.cat.colls.pop(p, None)
            self.cat.by_coll.pop(p, None)
        self.reply()

    def check_parent(self, path):
        if parent_of(path) not in self.cat.colls:
            self.reply(int_info=CAT_UNKNOWN_COLLECTION)
            return False
        return True

    def new_fd(self, o, flags):
        # Like the server's L1 descriptor table: the lowest free slot from 3.
        fd = 3
        while fd in self.fds:
            fd += 1
        self.fds[fd] = {"obj": o, "pos": 0, "flags": flags, "written": False}
        return fd

    def obj_create(self, el, bs):
        path, flags, kv = self.obj_inp(el)
        if path in self.cat.colls:
            return self.reply(int_info=CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME)
        if not self.check_parent(path):
            return
        o = self.cat.objs.get(path)
        if o and "forceFlag" not in kv:
            return self.reply(int_info=OVERWRITE_WITHOUT_FORCE_FLAG)
        if o:
            o.data = bytearray()
            o.checksum = ""
            o.mtime = now_str()
        else:
            o = self.cat.add_obj(path, self.user)
        o.data_type = kv.get("dataType", "generic")
        fd = self.new_fd(o, O_RDWR | O_CREAT)
        self.fds[fd]["written"] = True
        self.reply(int_info=fd)

    def offline(self, o):
        st = self.cat.dmf_state(o)
        return st in self.args.offline_states

    def obj_open(self, el, bs):
        path, flags, kv = self.obj_inp(el)
        o = self.cat.objs.get(path)
        if o is None:
            if not flags & O_CREAT:
                return self.reply(int_info=USER_FILE_DOES_NOT_EXIST)
            if not self.check_parent(path):
                return
            o = self.cat.add_obj(path, self.user)
        elif self.offline(o):
            # The site's policy rule refuses the open while the bytes are on tape.
            self.srv.log("open refused (DMF %s) %s" % (self.cat.dmf_state(o), path))
            return self.reply(int_info=self.srv.faults.get("offline_error", self.args.offline_error))
        fd = self.new_fd(o, flags)
        if flags & O_TRUNC and flags & O_ACCMODE:
            o.data = bytearray()
            o.checksum = ""
            self.fds[fd]["written"] = True
        self.reply(int_info=fd)

    def fd_of(self, el):
        return self.fds.get(int(txt(el, "l1descInx", "-1") or -1))

    def obj_read(self, el, bs):
        with self.cat.lock:
            f = self.fd_of(el)
            if f is None:
                return self.reply(int_info=SYS_BAD_FILE_DESCRIPTOR)
            n = int(txt(el, "len", "0") or 0)
            data = bytes(f["obj"].data[f["pos"]: f["pos"] + max(n, 0)])
            f["pos"] += len(data)
        mid = False
        if self.srv.faults.get("drop_mid_read") and len(data) > 1:
            mid = self.srv.take_mid_read_drop()
        self.reply(int_info=len(data), bs=data, partial_bs=mid)

    def obj_write(self, el, bs):
        f = self.fd_of(el)
        if f is None:
            return self.reply(int_info=SYS_BAD_FILE_DESCRIPTOR)
        o, pos = f["obj"], f["pos"]
        if len(o.data) < pos:
            o.data.extend(b"\0" * (pos - len(o.data)))
        o.data[pos: pos + len(bs)] = bs
        f["pos"] = pos + len(bs)
        f["written"] = True
        self.reply(int_info=len(bs))

    def obj_lseek(self, el, bs):
        f = self.fd_of(el)
        if f is None:
            return self.reply(int_info=SYS_BAD_FILE_DESCRIPTOR)
        off, whence = int(txt(el, "offset", "0")), int(txt(el, "whence", "0"))
        base = {0: 0, 1: f["pos"], 2: len(f["obj"].data)}.get(whence)
        if base is None or base + off < 0:
            return self.reply(int_info=-22)
        f["pos"] = base + off
        self.reply(X("fileLseekOut_PI", ("offset", f["pos"])))

    def obj_close(self, el, bs):
        fd = int(txt(el, "l1descInx", "-1") or -1)
        f = self.fds.pop(fd, None)
        if f is None:
            return self.reply(int_info=SYS_BAD_FILE_DESCRIPTOR)
        if f["written"]:
            o = f["obj"]
            o.mtime = now_str()
            o.checksum = ""
            self.cat.colls[parent_of(o.path)].mtime = o.mtime
            self.cat.after_put(o)
        self.reply()

    def obj_unlink(self, el, bs):
        path, _, _ = self.obj_inp(el)
        if path not in self.cat.objs:
            return self.reply(int_info=USER_FILE_DOES_NOT_EXIST)
        self.cat.del_obj(path)
        self.cat.colls[parent_of(path)].mtime = now_str()
        self.reply()

    def rename(self, el, bs):
        ins = el.findall("DataObjInp_PI") if el is not None else []
        if len(ins) != 2:
            return self.reply(int_info=SYS_API_INPUT_ERR)
        src, dst = txt(ins[0], "objPath").rstrip("/"), txt(ins[1], "objPath").rstrip("/")
        if dst in self.cat.objs or dst in self.cat.colls:
            return self.reply(int_info=CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME)
        if parent_of(dst) not in self.cat.colls:
            return self.reply(int_info=CAT_UNKNOWN_COLLECTION)
        if src in self.cat.objs:
            o = self.cat.del_obj(src)
            o.path = dst
            self.cat.objs[dst] = o
            self.cat.by_coll.setdefault(parent_of(dst), {})[dst.rsplit("/", 1)[1]] = o
            return self.reply()
        if src in self.cat.colls:
            if dst.startswith(src + "/"):
                return self.reply(int_info=SYS_INVALID_FILE_PATH)
            for p in sorted([p for p in self.cat.colls if p == src or p.startswith(src + "/")]):
                c = self.cat.colls.pop(p)
                c.path = dst + p[len(src):]
                self.cat.colls[c.path] = c
                self.cat.by_coll[c.path] = self.cat.by_coll.pop(p, {})
            for p in [p for p in self.cat.objs if p.startswith(src + "/")]:
                o = self.cat.objs.pop(p)
                o.path = dst + p[len(src):]
                self.cat.objs[o.path] = o
            return self.reply()
        self.reply(int_info=USER_FILE_DOES_NOT_EXIST)

    def checksum(self, el, bs):
        path, _, kv = self.obj_inp(el)
        o = self.cat.objs.get(path)
        if o is None:
            return self.reply(int_info=USER_FILE_DOES_NOT_EXIST)
        o.checksum = "sha2:" + base64.b64encode(hashlib.sha256(bytes(o.data)).digest()).decode()
        self.reply(X("STR_PI", ("myStr", o.checksum)))

    def mod_avu(self, el, bs):
        if el is None or el.find("KeyValPair_PI") is None:
            return self.reply(int_info=SYS_API_INPUT_ERR)
        a = [txt(el, "arg%d" % i) for i in range(10)]
        op, kind, path, name, value, units = a[0], a[1].lower(), a[2], a[3], a[4], a[5]
        if kind == "-d":
            tgt = self.cat.objs.get(path)
            missing = CAT_UNKNOWN_FILE
        elif kind == "-c":
            tgt = self.cat.colls.get(path.rstrip("/"))
            missing = CAT_UNKNOWN_COLLECTION
        else:
            return self.reply(int_info=CAT_INVALID_ARGUMENT)
        if tgt is None:
            return self.reply(int_info=missing)
        if op in ("add", "adda"):
            if any(x[:3] == [name, value, units] for x in tgt.avus):
                return self.reply(int_info=CATALOG_ALREADY_HAS_ITEM_BY_THAT_NAME)
            tgt.avus.append([name, value, units, self.cat.new_id()])
        elif op == "set":
            tgt.avus = [x for x in tgt.avus if x[0] != name] + [[name, value, units, self.cat.new_id()]]
        elif op in ("rm", "rmw"):
            keep = [x for x in tgt.avus if not (x[0] == name and x[1] == value and (not units or x[2] == units))]
            if len(keep) == len(tgt.avus):
                return self.reply(int_info=CAT_NO_ROWS_FOUND)
            tgt.avus = keep
        else:
            return self.reply(int_info=CAT_INVALID_ARGUMENT)
        self.reply()

    def exec_rule(self, el, bs):
        body = txt(el, "myRule")
        outdesc = txt(el, "outParamDesc")
        env = {}
        pa = el.find("MsParamArray_PI")
        if pa is not None:
            for p in pa.findall("MsParam_PI"):
                try:
                    env[txt(p, "label")] = rule_eval(txt(p.find("STR_PI"), "myStr"), {})
                except RuleSyntaxError as e:
                    # As the real server: the parameter stays unset, the rule
                    # runs anyway and the client hears status 0.
                    self.srv.log("rule input %s: syntax error (%s): left unset" % (txt(p, "label"), e))
        m = re.search(r"\{(.*)\}", body, re.S)
        if not m:
            return self.reply(int_info=RULE_FAILED_ERR)
        for stmt in [s.strip() for s in m.group(1).split(";") if s.strip()]:
            am = re.match(r"^(\*\w+)\s*=\s*(.*)$", stmt, re.S)
            cm = re.match(r"^(\w+)\s*\((.*)\)$", stmt, re.S)
            if am:
                try:
                    env[am.group(1)] = rule_eval(am.group(2), env)
                except RuleSyntaxError as e:
                    self.srv.log("rule body: syntax error (%s)" % e)
                    return self.reply(int_info=RULE_FAILED_ERR)
            elif cm:
                rc = self.microservice(cm.group(1), [x.strip() for x in cm.group(2).split(",")], env)
                if rc:
                    return self.reply(int_info=rc)
            else:
                return self.reply(int_info=RULE_FAILED_ERR)
        params = []
        for label in [x for x in outdesc.split("%") if x and x != "ruleExecOut"]:
            if label in env:
                params.append(X("MsParam_PI", ("label", label), ("type", "STR_PI"),
                                ("STR_PI", X("STR_PI", ("myStr", env[label])))))
        self.reply(X("MsParamArray_PI", ("paramLen", len(params)), ("oprType", 0), ("MsParam_PI", params)))

    def microservice(self, name, argv, env):
        """DMF microservices of the emulator. Paths are one argument holding
        one or more object paths separated by ',' '%' or newlines, so that a
        batch of recalls is one rule call."""
        arg = lambda i: rule_eval(argv[i], env) if i < len(argv) else ""
        if name in ("msiDmfStage", "dmget", "msiDmfRelease", "dmput", "msiGetDmfObject", "msiDmfState"):
            paths = split_paths(arg(0))
            self.srv.log("rule %s paths=%d" % (name, len(paths)))
            lines = []
            for p in paths:
                o = self.cat.objs.get(p)
                if o is None:
                    if name in ("msiGetDmfObject", "msiDmfState"):
                        lines.append("INV %s" % p)
                        continue
                    return USER_FILE_DOES_NOT_EXIST
                if name in ("msiDmfStage", "dmget"):
                    st = self.cat.stage(o)
                elif name in ("msiDmfRelease", "dmput"):
                    st = self.cat.release(o)
                else:
                    st = self.cat.dmf_state(o) or "REG"
                lines.append("%s %s" % (st or "REG", p))
            if len(argv) > 1 and argv[1].startswith("*"):
                env[argv[1]] = "\n".join(lines)
            return 0
        self.srv.log("rule %s" % name)
        if name == "writeLine":
            return 0
        return NO_MICROSERVICE_FOUND_ERR

    def put_single(self, el, bs):
        path, flags, kv = self.obj_inp(el)
        if not self.check_parent(path):
            return
        o = self.cat.objs.get(path)
        if o and "forceFlag" not in kv:
            return self.reply(int_info=OVERWRITE_WITHOUT_FORCE_FLAG)
        if o is None:
            o = self.cat.add_obj(path, self.user)
        o.data = bytearray(bs)
        o.mtime = now_str()
        o.checksum = ""
        if "regChksum" in kv or "verifyChksum" in kv:
            o.checksum = "sha2:" + base64.b64encode(hashlib.sha256(bs).digest()).decode()
        self.cat.after_put(o)
        self.reply()

    def get_single(self, el, bs):
        with self.cat.lock:
            path, _, _ = self.obj_inp(el)
            o = self.cat.objs.get(path)
            if o is None:
                return self.reply(int_info=USER_FILE_DOES_NOT_EXIST)
            if self.offline(o):
                return self.reply(int_info=self.srv.faults.get("offline_error", self.args.offline_error))
            data = bytes(o.data)
        out = X("PortalOprOut_PI", ("status", 0), ("l1descInx", 0), ("numThreads", 0), ("chksum", ""),
                ("PortList_PI", X("PortList_PI", ("portNum", 0), ("cookie", 0), ("sock", 0), ("windowSize", 0),
                                  ("hostAddr", ""))))
        mid = bool(self.srv.faults.get("drop_mid_read")) and self.srv.take_mid_read_drop()
        self.reply(out, int_info=len(data), bs=data, partial_bs=mid)


# ---------------------------------------------------------------- server


class Server:
    def __init__(self, args):
        self.args = args
        self.cat = Catalog(args)
        self.faults = {"drop_after": args.drop_after, "drop_mid_read": args.drop_mid_read,
                       "slow_ms": args.slow_ms, "refuse_password": args.refuse_password}
        self.msg_count = 0
        self.fault_lock = threading.Lock()
        self.ctl_mtime = None
        self.ssl_ctx = None
        self.tmpdir = tempfile.mkdtemp(prefix="irods-emu.")
        self.logf = open(args.log, "a") if args.log else None

    def log(self, line):
        if self.logf:
            self.logf.write("%s %s\n" % (time.strftime("%H:%M:%S"), line))
            self.logf.flush()

    def load_control(self):
        c = self.args.control
        if not c:
            return
        try:
            m = os.stat(c).st_mtime_ns
        except OSError:
            return
        if m == self.ctl_mtime:
            return
        self.ctl_mtime = m
        try:
            with open(c) as fh:
                spec = json.load(fh)
        except (OSError, ValueError):
            return
        self.faults.update(spec)
        if "drop_after" in spec:
            self.msg_count = 0
        self.log("control file loaded: %s" % json.dumps(spec, sort_keys=True))

    def take_mid_read_drop(self):
        """drop_mid_read true (or 1) breaks the next read reply; N > 1 the N-th."""
        with self.fault_lock:
            n = self.faults.get("drop_mid_read")
            if not n:
                return False
            if n is True or int(n) <= 1:
                self.faults["drop_mid_read"] = False
                self.log("fault: drop mid-read")
                return True
            self.faults["drop_mid_read"] = int(n) - 1
            return False

    def count_message(self):
        """Counts API requests over all connections; the N-th one set by
        drop_after is answered by closing the connection (once)."""
        with self.fault_lock:
            self.load_control()
            self.msg_count += 1
            n = self.faults.get("drop_after") or 0
            if n and self.msg_count >= n:
                self.faults["drop_after"] = 0
                self.log("fault: drop connection at message %d" % self.msg_count)
                raise Drop()

    def setup_tls(self):
        a = self.args
        if a.tls_policy == "CS_NEG_REFUSE":
            return
        cert, key = a.cert, a.key
        if not cert:
            cert, key = os.path.join(self.tmpdir, "cert.pem"), os.path.join(self.tmpdir, "key.pem")
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if r.returncode:
                sys.exit("irods_emu: openssl req failed: %s" % r.stderr.decode().strip())
        if a.cert_out:
            shutil.copyfile(cert, a.cert_out)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.ssl_ctx = ctx
        self.cert_path = cert

    def ticker(self):
        while True:
            time.sleep(0.05)
            self.cat.tick()

    def serve(self):
        a = self.args
        self.setup_tls()
        ls = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.host, a.port))
        ls.listen(64)
        port = ls.getsockname()[1]
        if a.port_file:
            tmp = a.port_file + ".tmp"
            with open(tmp, "w") as fh:
                fh.write("%d\n" % port)
            os.rename(tmp, a.port_file)
        print("irods_emu (EMULATOR) listening on %s:%d zone=%s tls=%s%s" % (
            a.host, port, a.zone, a.tls_policy, (" cert=" + self.cert_path) if self.ssl_ctx else ""), flush=True)
        threading.Thread(target=self.ticker, daemon=True).start()
        # A signal delivered to another thread does not interrupt accept():
        # wake up now and then so that the SIGTERM handler runs.
        ls.settimeout(0.2)
        while True:
            try:
                s, peer = ls.accept()
            except socket.timeout:
                continue
            s.setblocking(True)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Conn(self, s, peer).run, daemon=True).start()


def main():
    p = argparse.ArgumentParser(description="iRODS EMULATOR for tests (not iRODS): native protocol on loopback, "
                                            "in-memory catalog, DMF states on an AVU, fault injection.")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (only loopback is allowed)")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed, and written to --port-file)")
    p.add_argument("--port-file", help="write the port number here once listening")
    p.add_argument("--zone", default="tempZone")
    p.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                   help="user and password (repeatable; default rods:rods)")
    p.add_argument("--resource", default="demoResc")
    p.add_argument("--rel-version", default="rods5.0.2")
    p.add_argument("--tls", choices=["refuse", "dont_care", "require"], default="refuse",
                   help="negotiation policy: CS_NEG_REFUSE / CS_NEG_DONT_CARE / CS_NEG_REQUIRE")
    p.add_argument("--cert", help="PEM certificate (default: a throwaway self-signed one made with openssl req)")
    p.add_argument("--key", help="PEM private key for --cert")
    p.add_argument("--cert-out", help="copy the certificate in use here (for clients to trust)")
    p.add_argument("--seed-dir", help="import this directory tree into the user's home collection")
    p.add_argument("--seed-json", help="import collections/objects from this JSON file")
    p.add_argument("--seed-state", default="DUL", help="DMF state of seeded objects (default DUL)")
    p.add_argument("--dmf-attr", default="SURF-DMF", help="AVU carrying the DMF state ('' disables DMF)")
    p.add_argument("--dmf-root", action="append", default=[], dest="dmf_roots",
                   help="collection under which objects are DMF-managed (repeatable; default the zone; 'none')")
    p.add_argument("--mig-delay", type=float, default=0.3, help="seconds REG -> MIG after a put")
    p.add_argument("--dul-delay", type=float, default=0.3, help="seconds MIG -> DUL")
    p.add_argument("--stage-delay", type=float, default=1.0, help="seconds UNM -> DUL after a stage rule")
    p.add_argument("--offline-error", type=int, default=RULE_FAILED_ERR,
                   help="error for an open of an offline object (default -1101000; a SURF-like site: -1089000)")
    p.add_argument("--offline-states", default="OFL,UNM", help="DMF states whose open is refused")
    p.add_argument("--drop-after", type=int, default=0, help="close the connection on the N-th API request (once)")
    p.add_argument("--drop-mid-read", action="store_true", help="the next read reply stops half-way and the connection closes")
    p.add_argument("--slow-ms", type=int, default=0, help="delay every reply by this many milliseconds")
    p.add_argument("--refuse-password", action="store_true", help="every authentication fails with -826000")
    p.add_argument("--control", help="JSON fault file re-read when it changes: drop_after, drop_mid_read, slow_ms, "
                                     "refuse_password, offline_error")
    p.add_argument("--log", help="append a line per request and fault here (never passwords)")
    a = p.parse_args()

    try:
        if not ipaddress.ip_address(a.host).is_loopback:
            p.error("--host must be a loopback address")
    except ValueError:
        p.error("--host must be a loopback IP address")
    users = a.user or ["rods:rods"]
    a.passwords = {}
    for u in users:
        if ":" not in u:
            p.error("--user wants NAME:PASSWORD")
        n, pw = u.split(":", 1)
        a.passwords[n] = pw
    a.users = list(a.passwords)
    a.tls_policy = {"refuse": "CS_NEG_REFUSE", "dont_care": "CS_NEG_DONT_CARE", "require": "CS_NEG_REQUIRE"}[a.tls]
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")
    if not a.dmf_roots:
        a.dmf_roots = ["/" + a.zone]
    a.offline_states = [s for s in a.offline_states.split(",") if s]
    srv = Server(a)
    home = "/%s/home/%s" % (a.zone, a.users[0])
    if a.seed_dir:
        if not os.path.isdir(a.seed_dir):
            p.error("--seed-dir %s is not a directory" % a.seed_dir)
        srv.cat.seed_dir(a.seed_dir, home)
    if a.seed_json:
        try:
            srv.cat.seed_json(a.seed_json)
        except (OSError, ValueError, KeyError) as e:
            print("irods_emu: bad --seed-json %s: %s" % (a.seed_json, e), file=sys.stderr)
            sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: (shutil.rmtree(srv.tmpdir, ignore_errors=True), os._exit(0)))
    try:
        srv.serve()
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(srv.tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
