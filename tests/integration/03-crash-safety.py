"""03 — crash safety: simulated devices stream reports, the server is killed with
SIGKILL mid-stream and restarted on the same database; every report whose reply
a device received must be in the database. Each device is the seal of an open
shipment, so the kill also lands among custody-chain writes: every chain must still
verify (scripts/custody_verify.py's rules) and every stored lock, unlock and tamper
event must have its custody entry."""
import importlib.util
import os
import sqlite3
import subprocess
import time

from harness import BIN, Server, check

srv = Server()
DEVICES = 20
con = sqlite3.connect(srv.db, timeout=10)
for i in range(DEVICES):
    con.execute("INSERT INTO devices(uid, created_at) VALUES(?, 0)", (str(794300000001 + i),))
    con.execute("INSERT INTO shipments(org_id, reference, device_id, status, created_at)"
                " VALUES(1, ?, last_insert_rowid(), 'open', 0)", ("PO-%d" % i,))
con.commit()
con.close()
record = os.path.join(srv.dir, "acked.txt")
sim = subprocess.Popen([BIN, "sim", "--host", "127.0.0.1", "--port", str(srv.port), "--protocol", "jt808",
                        "--devices", str(DEVICES), "--reports", "2000", "--window", "4", "--record", record,
                        "--start", "2026-02-01T00:00:00Z", "--timeout-ms", "2000"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
# kill once enough has been acknowledged that the kill lands mid-stream
deadline = time.time() + 30
while time.time() < deadline:
    if os.path.exists(record) and os.path.getsize(record) > 200 * 40:
        break
    time.sleep(0.02)
srv.kill9()
out, err = sim.communicate(timeout=60)
check(sim.returncode != 0, "the simulator should notice the server died")

srv.start()  # same port, same database: recovery from the WAL
acked = [l.split() for l in open(record) if l.strip()]
check(len(acked) > 100, "only %d reports acknowledged before the kill" % len(acked))
stored = set(srv.sql("SELECT d.uid, strftime('%Y-%m-%dT%H:%M:%SZ', p.fix_time, 'unixepoch') FROM positions p"
                     " JOIN devices d ON d.id = p.device_id"))
missing = [a for a in acked if (a[0], a[1]) not in stored]
check(not missing, "%d of %d acknowledged reports lost, e.g. %s" % (len(missing), len(acked), missing[:5]))
events = set(srv.sql("SELECT d.uid, strftime('%Y-%m-%dT%H:%M:%SZ', e.time, 'unixepoch'), e.type FROM events e"
                     " JOIN devices d ON d.id = e.device_id"))
lost_events = [a for a in acked if a[2] != "position" and (a[0], a[1], a[2]) not in events]
check(not lost_events, "acknowledged events lost: %s" % lost_events[:5])

# custody: every chain whole, every seal event with its entry (written in the same transaction)
spec = importlib.util.spec_from_file_location(
    "custody_verify", os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "custody_verify.py"))
verifier = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verifier)
entries_total = 0
for sid, ref, head_seq, head_hash in srv.sql("SELECT id, reference, custody_seq, custody_head FROM shipments"):
    rows = srv.sql("SELECT id, seq, time, recorded_at, kind, actor, source, device_id, lat, lon, event_id,"
                   " command_id, detail, prev_hash, hash FROM custody_log WHERE shipment_id = ? ORDER BY seq", sid)
    entries = [{"id": r[0], "seq": r[1], "time": r[2], "recorded_at": r[3], "kind": r[4], "actor": r[5],
                "source": r[6], "device_id": r[7], "lat": None if r[8] is None else round(r[8] * 1e7),
                "lon": None if r[9] is None else round(r[9] * 1e7), "event_id": r[10], "command_id": r[11],
                "detail": r[12], "prev_hash": r[13], "hash": r[14], "shipment_id": sid} for r in rows]
    doc = {"format": verifier.FORMAT, "algorithm": "sha256", "shipment_id": sid, "reference": ref,
           "head": {"seq": head_seq, "hash": head_hash or verifier.GENESIS}, "entries": entries}
    broken, n, _ = verifier.verify(doc)
    check(broken is None, "shipment %s: custody chain broken after the kill: %s" % (ref, broken))
    entries_total += n
orphans = srv.sql("SELECT count(*) FROM events e WHERE e.type IN ('lock', 'unlock', 'tamper')"
                  " AND NOT EXISTS (SELECT 1 FROM custody_log c WHERE c.event_id = e.id)")[0][0]
check(orphans == 0, "%d seal events without their custody entry" % orphans)
check(entries_total > 20, "custody entries written before the kill: %d" % entries_total)
print("custody: %d chains, %d entries, all verify; no seal event without its entry" % (DEVICES, entries_total))
total = srv.sql("SELECT count(*) FROM positions")[0][0]
print("killed with SIGKILL after %d acknowledged reports (%d stored, the rest were never acknowledged): none lost"
      % (len(acked), total))
# the restarted server keeps serving
rc, summary, _ = srv.sim("--protocol", "jt808", "--devices", "2", "--reports", "10", "--id-base", "794300000001")
srv.stop()
