"""03 — crash safety: simulated devices stream reports, the server is killed with
SIGKILL mid-stream and restarted on the same database; every report whose reply
a device received must be in the database."""
import os
import subprocess
import time

from harness import BIN, Server, check

srv = Server()
record = os.path.join(srv.dir, "acked.txt")
sim = subprocess.Popen([BIN, "sim", "--host", "127.0.0.1", "--port", str(srv.port), "--protocol", "jt808",
                        "--devices", "20", "--reports", "2000", "--window", "4", "--record", record,
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
total = srv.sql("SELECT count(*) FROM positions")[0][0]
print("killed with SIGKILL after %d acknowledged reports (%d stored, the rest were never acknowledged): none lost"
      % (len(acked), total))
# the restarted server keeps serving
rc, summary, _ = srv.sim("--protocol", "jt808", "--devices", "2", "--reports", "10", "--id-base", "794300000001")
srv.stop()
