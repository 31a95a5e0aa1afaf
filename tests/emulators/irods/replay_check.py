#!/usr/bin/python3
"""Replays the client side of a recorded real-server conversation
(shared/irods-recordings/*.jsonl) against the iRODS EMULATOR and compares
each emulator reply with the recorded real reply.

usage: replay_check.py PORT RECORDING.jsonl [PASSWORD]

Requests are sent in recorded order. Replies are paired with requests in
order (the recordings sometimes log a reply before the request it answers;
pairing by position within each connection undoes that). Adapted requests:
  * 704: the MD5 response is recomputed from the emulator's challenge;
  * GenQuery conditions quoting a catalog id seen in an earlier recorded
    reply (e.g. D_COLL_ID = '10010') get the emulator's id for that entity;
  * 110000 auth_agent_auth_response: request_result and digest are replaced
    by the emulator's challenge and the digest computed from it.
Compared for every reply: header type, intInfo, bsLen, the binary stream,
presence of an error part and the element structure (tags, nesting, order)
of both the message and the error. Values are compared too, except the
normalised ones: challenge, buf (auth JSON), cookie, reslen, createTime,
modifyTime, dataId, and inside SqlResult_PI the values of the id and time
columns (500 401 402 423 508 509 419 420 603 613).
Exit 0 when every reply matches; prints one line per difference otherwise.
"""

import base64
import hashlib
import json
import re
import socket
import struct
import sys
import xml.etree.ElementTree as ET

NORMALISED_TAGS = {"challenge", "buf", "buflen", "cookie", "reslen", "createTime", "modifyTime", "dataId"}
NORMALISED_COLS = {"500", "401", "402", "423", "508", "509", "419", "420", "603", "613"}


def frame(typ, msg=b"", bs=b"", int_info=0):
    hdr = ("<MsgHeader_PI><type>%s</type><msgLen>%d</msgLen><errorLen>0</errorLen><bsLen>%d</bsLen>"
           "<intInfo>%d</intInfo></MsgHeader_PI>" % (typ, len(msg), len(bs), int_info)).encode()
    return struct.pack(">I", len(hdr)) + hdr + msg + bs


def recv_exact(s, n):
    b = bytearray()
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("connection closed")
        b += c
    return bytes(b)


def recv_msg(s):
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    h = recv_exact(s, n).decode()
    g = lambda t: re.search(r"<%s>(.*?)</%s>" % (t, t), h, re.S).group(1).strip()
    msg = recv_exact(s, int(g("msgLen")))
    err = recv_exact(s, int(g("errorLen")))
    bs = recv_exact(s, int(g("bsLen")))
    return {"type": g("type"), "intInfo": int(g("intInfo")), "msg": msg.decode(), "error": err.decode(),
            "bs": bs}


def shape(xml):
    """Flattened (path, value) list; values of normalised fields blanked."""
    if not xml.strip():
        return []
    root = ET.fromstring(xml)
    out = []

    def walk(el, path, col):
        p = path + "/" + el.tag
        if el.tag == "SqlResult_PI":
            ai = el.find("attriInx")
            col = ai.text if ai is not None else None
        kids = list(el)
        if kids:
            out.append((p, None))
            for k in kids:
                walk(k, p, col)
        else:
            v = (el.text or "").strip()
            if el.tag in NORMALISED_TAGS or (el.tag == "value" and col in NORMALISED_COLS):
                v = "*"
            out.append((p, v))

    walk(root, "", None)
    return out


def id_pairs(got_xml, want_xml):
    """(recorded id, emulator id) for the id columns of matching GenQuery replies."""
    out = []
    if "<GenQueryOut_PI>" not in got_xml or "<GenQueryOut_PI>" not in want_xml:
        return out
    g, w = ET.fromstring(got_xml), ET.fromstring(want_xml)
    for gs, ws in zip(g.findall("SqlResult_PI"), w.findall("SqlResult_PI")):
        if (gs.findtext("attriInx") or "") in ("500", "401", "402") and gs.findtext("attriInx") == ws.findtext("attriInx"):
            for gv, wv in zip(gs.findall("value"), ws.findall("value")):
                out.append((wv.text or "", gv.text or ""))
    return out


def md5_response(challenge, password):
    d = hashlib.md5(challenge + password.encode().ljust(50, b"\0")).digest()
    return base64.b64encode(bytes(1 if c == 0 else c for c in d)).decode()


def main():
    port, rec = int(sys.argv[1]), sys.argv[2]
    password = sys.argv[3] if len(sys.argv) > 3 else "rods"
    lines = [json.loads(line) for line in open(rec)]
    # Split into connections at each RODS_CONNECT.
    conns, cur = [], None
    for m in lines:
        if m["dir"] == "c2s" and m["type"] == "RODS_CONNECT":
            cur = []
            conns.append(cur)
        cur.append(m)
    diffs, compared = [], 0
    for ci, conv in enumerate(conns):
        reqs = [m for m in conv if m["dir"] == "c2s"]
        replies = [m for m in conv if m["dir"] == "s2c"]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        challenge = None
        ids = {}  # recorded catalog id -> the emulator's id for the same entity
        ri = 0
        for qi, q in enumerate(reqs):
            msg = q["msg"]
            # Requests that quote an id learned from an earlier reply get ours.
            msg = re.sub(r"= '(\d+)'", lambda m: "= '%s'" % ids.get(m.group(1), m.group(1)), msg)
            if q["type"] == "RODS_API_REQ" and q["intInfo"] == 704:
                msg = re.sub(r"<response>.*?</response>", "<response>%s</response>" % md5_response(challenge, password), msg)
            if q["type"] == "RODS_API_REQ" and q["intInfo"] == 110000:
                j = json.loads(base64.b64decode(re.search(r"<buf>(.*?)</buf>", msg).group(1)))
                if j.get("next_operation") == "auth_agent_auth_response":
                    j["request_result"] = challenge.decode()
                    j["digest"] = md5_response(challenge, password)
                b = json.dumps(j).encode()
                msg = "<BinBytesBuf_PI><buflen>%d</buflen><buf>%s</buf></BinBytesBuf_PI>" % (
                    len(b), base64.b64encode(b).decode())
            bs = base64.b64decode(q.get("bs_b64") or "")
            s.sendall(frame(q["type"], msg.encode(), bs, q["intInfo"]))
            if q["type"] == "RODS_DISCONNECT":
                break
            want = replies[ri]
            ri += 1
            got = recv_msg(s)
            compared += 1
            where = "conn %d request %d (%s %s)" % (ci, qi, q["type"], q["intInfo"])
            if got["type"] == "RODS_API_REPLY" and "<challenge>" in got["msg"]:
                challenge = base64.b64decode(re.search(r"<challenge>(.*?)</challenge>", got["msg"]).group(1))
            if "<buf>" in got["msg"]:
                j = json.loads(base64.b64decode(re.search(r"<buf>(.*?)</buf>", got["msg"]).group(1)).rstrip(b"\0"))
                if "request_result" in j:
                    challenge = j["request_result"].encode()
            ids.update(id_pairs(got["msg"], want["msg"]))
            for f in ("type", "intInfo"):
                if got[f] != want[f]:
                    diffs.append("%s: %s %r, recorded %r" % (where, f, got[f], want[f]))
            wbs = base64.b64decode(want.get("bs_b64") or "")
            if got["bs"] != wbs:
                diffs.append("%s: binary stream differs (%d vs %d bytes)" % (where, len(got["bs"]), len(wbs)))
            for part in ("msg", "error"):
                a, b = shape(got[part]), shape(want.get(part) or "")
                if a != b:
                    extra = [x for x in a if x not in b][:3]
                    missing = [x for x in b if x not in a][:3]
                    diffs.append("%s: %s differs: emulator-only %s, recorded-only %s" % (where, part, extra, missing))
        s.close()
    for d in diffs:
        print("DIFF " + d)
    print("replay %s: %d replies compared, %d differences" % (rec.rsplit("/", 1)[-1], compared, len(diffs)))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
