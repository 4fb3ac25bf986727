"""07 — a JT/T 808 device configured with another vendor's dialect is read with that
vendor's meanings: alarm bit 16 is Jointech's "back cover opened" (tamper) but reserved in
the standard; the same frame from two devices gives two readings."""
import os
import struct
import tempfile

from harness import Server, check, cli, jt808_frame, recv_until


def location(alarm):
    body = struct.pack(">IIIIHHH", alarm, 0x00000002, 22500000, 113900000, 10, 360, 90)
    body += bytes.fromhex("260101120000")  # BCD time 2026-01-01 12:00:00
    return body


db = os.path.join(tempfile.mkdtemp(), "d.db")
r = cli("device", "add", "000000000002", "--dialect", "standard", "--db", db)
check(r.returncode == 0, r.stderr)
bad = cli("device", "add", "000000000003", "--dialect", "martian", "--db", db)
check(bad.returncode == 2 and "martian" in bad.stderr, "unknown dialect accepted: %r" % bad.stderr)
srv = Server(db=db)
for dev in ("000000000001", "000000000002"):
    s = srv.connect()
    s.sendall(jt808_frame(0x0200, dev, 1, location(1 << 16)))
    check(recv_until(s, 20)[:3] == b"\x7e\x80\x01", "%s: no reply" % dev)
    s.close()
ev = dict(srv.sql("SELECT d.uid, e.type || ':' || coalesce(e.reason, '') FROM events e JOIN devices d ON d.id = e.device_id"))
check(ev.get("000000000001") == "tamper:back_cover_open", "jointech reading: %r" % ev)
check(ev.get("000000000002", "").startswith("alarm:"), "standard reading: %r" % ev)
# Over UDP each datagram stands alone: the standard device's datagram must not make the next
# device's (from the same address, unconfigured) read as standard too.
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
for dev in ("000000000002", "000000000004"):
    u.sendto(jt808_frame(0x0200, dev, 2, location(1 << 16)), ("127.0.0.1", srv.port))
    check(u.recv(100)[:3] == b"\x7e\x80\x01", "%s over UDP: no reply" % dev)
u.close()
ev4 = srv.sql("SELECT e.type || ':' || coalesce(e.reason, '') FROM events e JOIN devices d ON d.id = e.device_id"
              " WHERE d.uid = '000000000004'")
check(ev4 == [("tamper:back_cover_open",)], "unconfigured device after a standard one over UDP: %r" % ev4)
srv.stop()
print("dialects: Jointech device -> %s, standard device -> %s" % (ev["000000000001"], ev["000000000002"]))
