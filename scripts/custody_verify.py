#!/usr/bin/env python3
"""Check a shipment's custody export offline (docs/seals.md, "Chain of custody").

    custody_verify.py export.json

The export is GET /api/shipments/{id}/custody?format=export. Every entry's hash is
re-computed from its fields with this file's own implementation of the canonical
encoding, and the chain is checked link by link with the server's rules: seq runs
1, 2, 3 ... without gap, each prev_hash is the previous entry's stored hash (64 zeros
for seq 1), each hash is the SHA-256 of the entry's canonical bytes, and the last entry
is the shipment's head. Exit 0 and "ok: N entries, head <hash>" when whole; exit 1
naming the first broken entry; exit 2 when the file is not a custody export.
Python standard library only.
"""
import hashlib
import json
import sys

FORMAT = "sealtrack-custody-export/1"
GENESIS = "0" * 64
# The canonical keys in their fixed order; the kind of each value.
FIELDS = [("actor", str), ("command_id", int), ("detail", str), ("device_id", int),
          ("event_id", int), ("kind", str), ("lat", int), ("lon", int), ("prev_hash", str),
          ("recorded_at", int), ("seq", int), ("shipment_id", int), ("source", str),
          ("time", int)]
REQUIRED = {"kind", "prev_hash", "recorded_at", "seq", "shipment_id", "time"}


class NotAnExport(Exception):
    pass


def canon_str(s):
    """Only '"', '\\' and U+0000..U+001F are escaped (controls always as \\u00xx)."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical(entry):
    """The canonical bytes of an export entry, or None and the reason when a field cannot
    have been hashed (a missing seq, a number where text belongs ...)."""
    parts = []
    for key, kind in FIELDS:
        v = entry.get(key)
        if v is None:
            if key in REQUIRED:
                return None, "%s is missing" % key
            text = "null"
        elif kind is int and isinstance(v, int) and not isinstance(v, bool):
            text = str(v)
        elif kind is str and isinstance(v, str):
            text = canon_str(v)
        else:
            return None, "%s is not %s" % (key, "an integer" if kind is int else "a string")
        parts.append('"%s":%s' % (key, text))
    try:
        return ("{" + ",".join(parts) + "}").encode("utf-8"), None
    except UnicodeEncodeError:  # a lone surrogate escape: no UTF-8 text hashes to it
        return None, "text that is not UTF-8"


def verify(doc):
    """(None, entries, head) when whole, else ((id or None, seq, reason), entries, None)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise NotAnExport("not a %s file" % FORMAT)
    if doc.get("algorithm") != "sha256":
        raise NotAnExport("unknown algorithm %r" % doc.get("algorithm"))
    head = doc.get("head")
    entries = doc.get("entries")
    if not isinstance(head, dict) or not isinstance(entries, list):
        raise NotAnExport("no head or entries")
    head_seq, head_hash = head.get("seq"), head.get("hash")
    if not isinstance(head_seq, int) or not isinstance(head_hash, str):
        raise NotAnExport("the head has no seq or hash")
    prev = GENESIS
    computed = GENESIS
    last_id = None
    for want, e in enumerate(entries, 1):
        if not isinstance(e, dict):
            raise NotAnExport("entry %d is not an object" % want)
        eid, seq = e.get("id"), e.get("seq")
        if seq != want:
            return (eid, want, "entry seq %d missing" % want), len(entries), None
        if seq > head_seq:
            return ((eid, seq, "entry seq %d is beyond the shipment's head seq %d"
                     % (seq, head_seq)), len(entries), None)
        if e.get("prev_hash") != prev:
            reason = ("prev_hash is not the genesis value" if seq == 1
                      else "prev_hash does not match entry seq %d" % (seq - 1))
            return (eid, seq, reason), len(entries), None
        canon, why = canonical(e)
        if canon is None:
            return (eid, seq, why), len(entries), None
        computed = hashlib.sha256(canon).hexdigest()
        if e.get("hash") != computed:
            return (eid, seq, "hash does not match the entry's content"), len(entries), None
        prev = e["hash"]
        last_id = eid
    n = len(entries)
    if n < head_seq:
        return ((None, n + 1, "chain ends at seq %d but the shipment's head is seq %d"
                 % (n, head_seq)), n, None)
    if computed != head_hash:
        return ((last_id, n, "the shipment's head hash is not that of entry seq %d" % n),
                n, None)
    return None, n, computed


def main(argv):
    if len(argv) != 2:
        print("usage: custody_verify.py export.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
        broken, n, head = verify(doc)
    except (OSError, ValueError, NotAnExport) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if broken is None:
        print("ok: %d entries, head %s" % (n, head))
        return 0
    eid, seq, reason = broken
    where = "entry id %s seq %d" % (eid, seq) if eid is not None else "seq %d" % seq
    print("broken: %s: %s (%d entries)" % (where, reason, n))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
