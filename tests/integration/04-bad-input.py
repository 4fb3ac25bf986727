"""04 — bad input: each case gets a log line naming the peer (and device) and the
reason, and never disturbs another device. No input crashes the server."""
import socket
import time

from harness import Server, check, cli, jt808_frame, load_vectors, recv_until

D007 = bytes.fromhex([r for r in load_vectors("jt808.tsv") if r["vector_id"] == "JT808-D007"][0]["message"])
M01 = bytes.fromhex([r for r in load_vectors("jt600.tsv") if r["vector_id"] == "JT600-M01"][0]["message"])


def good_device_works(srv):
    s = srv.connect()
    s.sendall(D007)
    got = recv_until(s, 20)
    s.close()
    check(got[:3] == b"\x7e\x80\x01", "a normal device got no reply: %r" % got)


srv = Server("--set", "idle_timeout=2", "--set", "max_conn_per_ip=4")

# 1. bytes of no known protocol: closed, logged with peer and first bytes
s = srv.connect()
s.sendall(b"\x16\x03\x01\x02\x00\x01" + b"\xfe" * 100)  # a TLS ClientHello: not ours
check(recv_until(s, 1, 3) == b"", "unknown protocol not closed")
s.close()
line = srv.wait_log("event=protocol_unknown")[0]
check("peer=127.0.0.1:" in line and "first_bytes=160301020001" in line, line)

# 2. garbage before frames: resynchronised, the frames still answered
s = srv.connect()
s.sendall(D007)                       # detect JT/T 808 first
recv_until(s, 20)
s.sendall(b"\x00\x01garbage\xff" + D007)
got = recv_until(s, 20)
check(got[:3] == b"\x7e\x80\x01", "no reply after garbage: %r" % got)
srv.wait_log("event=garbage_skipped")
s.close()

# 3. a text over the size limit (no ')' within 4 KiB): skipped as garbage with a log line
# naming its size, the server lives on
n0 = len(srv.logs)
s = srv.connect()
s.sendall(b"(8000620011,P45," + b"9" * 6000)
deadline = time.time() + 3
skipped = []
while time.time() < deadline and not skipped:
    skipped = [l for l in srv.logs[n0:] if "event=garbage_skipped" in l
               and int(l.split("bytes=")[1].split()[0]) >= 6000]
    time.sleep(0.05)
s.close()
check(skipped, "oversized text not skipped with a log line: %s" % srv.logs[n0:])
good_device_works(srv)

# 3b. a known device that turns into a garbage stream: closed after 16 KiB without a frame
s = srv.connect()
s.sendall(D007)
recv_until(s, 20)
try:
    for _ in range(40):
        s.sendall(b"\x01\x02\x03\x04" * 256)  # 1 KiB, no byte any protocol starts with
except OSError:
    pass
check(recv_until(s, 1, 3) == b"", "garbage stream not closed")
s.close()
srv.wait_log("too much garbage without a frame")

# 4. a well-framed but malformed JT/T 808 frame: raw kept with the reason, no reply
bad = jt808_frame(0x0200, "794308010679", 1, b"\x01")  # a location body of 1 byte
s = srv.connect()
s.sendall(bad)
got = recv_until(s, 1, 1.0)
s.close()
line = srv.wait_log("event=frame_malformed")[0]
check("device=794308010679" in line and "peer=127.0.0.1" in line, line)
check(got == b"", "malformed frame was acknowledged: %r" % got)
rows = srv.sql("SELECT status FROM raw_frames WHERE status LIKE 'malformed%'")
check(rows, "malformed frame not kept raw")

# 5. unknown message type: stored raw with a log line
s = srv.connect()
s.sendall(bytes.fromhex([r for r in load_vectors("jt808.tsv") if r["vector_id"] == "JT808-D008"][0]["message"]))
time.sleep(0.3)
s.close()
srv.wait_log("event=frame_unsupported")
check(srv.sql("SELECT count(*) FROM raw_frames WHERE status LIKE 'unsupported%'")[0][0] >= 1, "unsupported frame not kept")

# 6. a client that sends nothing: closed after the idle timeout
s = srv.connect()
t0 = time.time()
check(recv_until(s, 1, 5) == b"", "idle connection not closed")
check(time.time() - t0 < 4.5, "idle timeout too slow")
s.close()
srv.wait_log("reason=\"idle timeout\"")

# 7. too many connections from one address: the extra ones are refused with a log line
socks = [srv.connect() for _ in range(6)]
time.sleep(0.3)
srv.wait_log("too many connections from this address")
for x in socks:
    x.close()
time.sleep(0.2)
good_device_works(srv)

# 8. UDP datagrams of no protocol: logged, nothing else affected
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"\x01\x02\x03hello", ("127.0.0.1", srv.port))
srv.wait_log("transport=udp")
u.sendto(M01, ("127.0.0.1", srv.port))
u.settimeout(3)
got, _ = u.recvfrom(100)
check(got == b"(P69,0,86)", "udp JT701D reply %r" % got)

# 9. truncated frames, then the connection closes: nothing stored, nothing crashes
for cut in (1, 5, 11, 40):
    s = srv.connect()
    s.sendall(D007[:cut])
    s.close()
time.sleep(0.2)
check(srv.alive(), "server died")
srv.stop()

# 10. register=known: unknown devices refused (logged once per id, raw kept, no reply)
srv = Server("--register", "known")
for _ in range(2):
    s = srv.connect()
    s.sendall(D007)
    got = recv_until(s, 1, 1.0)
    s.close()
    check(got == b"", "unknown device acknowledged: %r" % got)
time.sleep(0.2)
check(len(srv.log_lines("event=device_rejected device=794308010679")) == 1, "rejection not logged exactly once")
check(srv.sql("SELECT count(*) FROM raw_frames WHERE device_uid='794308010679' AND status LIKE 'rejected%'")[0][0] == 2,
      "rejected frames not kept raw")
r = cli("device", "add", "794308010679", "--db", srv.db, "--name", "seal 1", "--model", "JT709A")
check(r.returncode == 0, r.stderr)
good_device_works(srv)
check(srv.sql("SELECT count(*) FROM positions")[0][0] == 1, "known device's report not stored")
srv.stop()
print("bad input: 10 cases logged and contained")
