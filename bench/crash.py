"""crash.py BIN [ROUNDS] — crash safety at scale (printed figures; the smoke version is
tests/integration/03-crash-safety.py).

Per round: `BIN sim` drives DEVICES (default 1000) JT709A seals with 8 frames in flight each
against the server (sync=full) and records every report whose reply it received; after a random
0.5–3 s of full load the server gets SIGKILL, is restarted on the same database (WAL recovery),
and every acknowledged report is looked up in the positions table. Each round uses its own fix
times, so rounds do not hide each other's losses. Prints per round: acknowledged, found, lost,
recovery time (restart to listening), and the database's integrity check.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import BIN, Server  # noqa: E402

ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DEVICES = int(os.environ.get("DEVICES", "1000"))


def main():
    rnd = random.Random(7)
    srv = Server()
    total_acked = total_lost = 0
    print("crash safety: %d rounds, %d devices, window 8, sync=full, SIGKILL under load" % (ROUNDS, DEVICES))
    for rnd_no in range(ROUNDS):
        record = os.path.join(srv.dir, "acked-%d.txt" % rnd_no)
        start = "%d-01-01T00:00:00Z" % (2020 + rnd_no)  # a year apart: a round's fixes span ~35 days
        sim = subprocess.Popen([BIN, "sim", "--host", "127.0.0.1", "--port", str(srv.port), "--devices", str(DEVICES),
                                "--reports", "100000", "--window", "8", "--record", record, "--start", start,
                                "--timeout-ms", "3000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.5, 3.0) + 1.0)  # + connection set-up of the devices
        srv.kill9()
        sim.wait(60)
        t0 = time.time()
        srv.start()
        recovery = time.time() - t0
        acked = set()
        with open(record) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    acked.add((parts[0], parts[1]))
        stored = set(srv.sql("SELECT d.uid, strftime('%Y-%m-%dT%H:%M:%SZ', p.fix_time, 'unixepoch') FROM positions p"
                             " JOIN devices d ON d.id = p.device_id WHERE p.fix_time >= CAST(strftime('%s', ?) AS INTEGER)", start))
        lost = len(acked - stored)
        ok = srv.sql("PRAGMA integrity_check")[0][0]
        total_acked += len(acked)
        total_lost += lost
        print("  round %d: acknowledged %d, found %d, lost %d; restart to listening %.2f s; integrity %s"
              % (rnd_no + 1, len(acked), len(acked) - lost, lost, recovery, ok))
    srv.stop()
    print("crash safety: %d acknowledged reports, %d lost" % (total_acked, total_lost))


if __name__ == "__main__":
    main()
