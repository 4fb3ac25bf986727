"""06 — every protocol on the one port: each vector file (tests/vectors/<protocol>.tsv) is one
device session sent to the shared port over TCP all at once, byte by byte and in random chunks
(and its `udp` rows as datagrams). Every frame must be detected as its own protocol (zero
misdetections: the stored raw frames name only that protocol), every listed reply must come back
byte for byte and in order, and the three ways must store the same rows."""
import glob
import os
import random
import socket
import time

from harness import VECTORS, Server, check, fail, load_vectors, recv_until


def rows_of(path):
    return [r for r in load_vectors(os.path.basename(path)) if r["layer"] in ("frame", "udp", "stream")]


def data_of(row):
    return bytes.fromhex(row["message"]) if row["format"] == "hex" else row["message"].encode()


def send(sock, data, mode, rng):
    if mode == "whole":
        sock.sendall(data)
        return
    i = 0
    while i < len(data):
        n = 1 if mode == "bytes" else rng.randint(1, 61)
        sock.sendall(data[i:i + n])
        i += n


def session(srv, rows, mode, rng):
    tcp = [r for r in rows if r["layer"] != "udp"]
    data = b"".join(data_of(r) for r in tcp)
    want = [bytes.fromhex(r["exp"]["reply_hex"]) for r in tcp
            if r["exp"].get("reply_hex", "none") != "none" and r["exp"].get("reply_uses_now") != "true"]
    timed = any(r["exp"].get("reply_uses_now") == "true" for r in tcp)
    s = srv.connect()
    send(s, data, mode, rng)
    got = recv_until(s, sum(len(w) for w in want), timeout=10)
    s.close()
    return want, got, timed


def dump(srv):
    return (srv.sql("SELECT d.uid, p.fix_time, round(p.lat, 6), round(p.lon, 6), p.valid, p.protocol"
                    " FROM positions p JOIN devices d ON d.id = p.device_id ORDER BY p.id"),
            srv.sql("SELECT d.uid, e.time, e.type FROM events e JOIN devices d ON d.id = e.device_id ORDER BY e.id"),
            srv.sql("SELECT protocol, status, hex(raw) FROM raw_frames ORDER BY id"))


def expected_fixes(rows):
    """(lat, lon) the vectors expect decoded, every record of every TCP frame."""
    out = []
    for r in rows:
        e = r["exp"]
        if r["layer"] == "udp" or e.get("rc") in ("malformed", "unsupported"):
            continue
        prefixes = ["r%d." % i for i in range(int(e["records"]))] if "records" in e else [""]
        for p in prefixes:
            lat, lon = e.get(p + "lat"), e.get(p + "lon")
            if lat not in (None, "none") and lon not in (None, "none"):
                out.append((float(lat), float(lon)))
    return out


rng = random.Random(3)
files = sorted(p for p in glob.glob(os.path.join(VECTORS, "*.tsv"))
               if os.path.basename(p) not in ("jt600.tsv", "jt808.tsv"))  # those: 02-vectors-chunking
total_frames = 0
for path in files:
    proto = os.path.basename(path)[:-4]
    rows = rows_of(path)
    if not rows:
        continue
    results = {}
    for mode in ("whole", "bytes", "chunks"):
        srv = Server()
        want, got, timed = session(srv, rows, mode, rng)
        if not timed:
            check(got == b"".join(want), "%s %s: replies %s, want %s" % (proto, mode, got.hex(), b"".join(want).hex()))
        else:  # answers carrying the server's clock sit between the listed replies, which come in order
            at = 0
            for w in want:
                at = got.find(w, at)
                check(at >= 0, "%s %s: reply %s missing from %s" % (proto, mode, w.hex(), got.hex()))
                at += len(w)
        time.sleep(0.1)
        results[mode] = dump(srv)
        protos = set(r[0] for r in results[mode][2])
        check(protos == {proto}, "%s %s: frames stored as %s (misdetection, or none stored)" % (proto, mode, protos))
        srv.stop()
    for mode in ("bytes", "chunks"):
        for label, a, b in zip(("positions", "events", "raw frames"), results["whole"], results[mode]):
            diff = [(x, y) for x, y in zip(a, b) if x != y][:3]
            check(a == b, "%s: %s differ between whole and %s: %d vs %d rows, first: %s"
                  % (proto, label, mode, len(a), len(b), diff))
    udp_rows = [r for r in rows if r["layer"] == "udp"]
    if udp_rows:
        srv = Server()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(3)
        for r in udp_rows:
            u.sendto(data_of(r), ("127.0.0.1", srv.port))
            rep = r["exp"].get("reply_hex", "none")
            if rep != "none" and r["exp"].get("reply_uses_now") != "true":
                try:
                    got, _ = u.recvfrom(4096)
                except socket.timeout:
                    fail("%s udp %s: no reply" % (proto, r["vector_id"]))
                check(got.hex() == rep, "%s udp %s: reply %s, want %s" % (proto, r["vector_id"], got.hex(), rep))
        time.sleep(0.1)
        protos = set(x[0] for x in srv.sql("SELECT protocol FROM raw_frames"))
        check(protos == {proto}, "%s udp: frames stored as %s" % (proto, protos))
        srv.stop()
    pos, ev, raw = results["whole"]
    stored = [(lat, lon) for _, _, lat, lon, _, _ in pos]
    for fix in expected_fixes(rows):  # vectors round to 6 places; the dump rounds to 6 too
        match = [s for s in stored if abs(s[0] - fix[0]) < 2.1e-6 and abs(s[1] - fix[1]) < 2.1e-6]
        check(match, "%s: expected fix %s not stored; stored %s" % (proto, fix, stored[:5]))
        stored.remove(match[0])
    total_frames += len(raw)
    print("%s: %d rows (%d udp), %d frames stored, %d positions (the %d the vectors expect among them), %d events;"
          " same whole / byte by byte / chunked" % (proto, len(rows), len(udp_rows), len(raw), len(pos),
                                                     len(expected_fixes(rows)), len(ev)))
print("mixed stream: %d protocols, %d frames, zero misdetections" % (len(files), total_frames))
