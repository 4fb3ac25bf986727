"""seal_ingest.py — what seal operations cost ingestion end to end: the same simulated load
(JT709A over TCP, sync=full) against an empty database and against one holding 10,000
geofences (circles and polygons over the simulator's area) and 10 alert rules with a
webhook. Prints reports/s, p99 and server CPU per frame for both. Asserts nothing.
usage: python3 bench/seal_ingest.py build-release/sealtrack [devices] [reports] [window]"""
import json
import math
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
DEVICES, REPORTS, WINDOW = (int(a) for a in (sys.argv[2:5] + ["200", "300", "8"][len(sys.argv[2:5]):]))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sim_area(db):
    """Where the simulator drives: one short run, its positions' extent."""
    rows = sqlite3.connect(db).execute("SELECT min(lat), max(lat), min(lon), max(lon) FROM positions").fetchone()
    return rows


def fill(db, area):
    lat0, lat1, lon0, lon1 = area
    pad = 0.5  # fences over the drive and its surroundings
    rnd = random.Random(5)
    con = sqlite3.connect(db)
    now = int(time.time())
    for i in range(10000):
        lat = rnd.uniform(lat0 - pad, lat1 + pad)
        lon = rnd.uniform(lon0 - pad, lon1 + pad)
        if i % 2:
            con.execute("INSERT INTO geofences(org_id, name, kind, shape, points, radius_m, created_at, updated_at)"
                        " VALUES(1, ?, 'allowed', 'circle', ?, ?, ?, ?)",
                        ("c%d" % i, json.dumps([[lat, lon]]), rnd.uniform(50, 2000), now, now))
        else:
            r = rnd.uniform(0.001, 0.01)
            pts = [[lat + r * math.sin(a * math.pi / 3), lon + r * math.cos(a * math.pi / 3)] for a in range(6)]
            con.execute("INSERT INTO geofences(org_id, name, kind, shape, points, created_at, updated_at)"
                        " VALUES(1, ?, 'forbidden', 'polygon', ?, ?, ?)", ("p%d" % i, json.dumps(pts), now, now))
    con.execute("INSERT INTO webhooks(id, org_id, name, url, secret, enabled, created_at)"
                " VALUES(1, 1, 'off', 'http://127.0.0.1:9/', 'secret-secret-secret', 0, ?)", (now,))
    for i in range(10):
        con.execute("INSERT INTO alert_rules(org_id, name, types, webhook_id, speed_kmh, created_at)"
                    " VALUES(1, ?, '[\"geofence_enter\",\"geofence_exit\",\"tamper\",\"overspeed\"]', 1, 200, ?)",
                    ("r%d" % i, now))
    con.commit()
    con.close()


def run(db, label):
    port = free_port()
    srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1", "--port", str(port), "--http-port", "0",
                            "--db", db, "--set", "log_level=warn"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    out = subprocess.run([BIN, "sim", "--port", str(port), "--devices", str(DEVICES), "--reports", str(REPORTS),
                          "--window", str(WINDOW), "--timeout-ms", "30000"], capture_output=True, text=True).stdout
    with open("/proc/%d/stat" % srv.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    srv.terminate()
    srv.wait()
    s = json.loads(out.strip().splitlines()[-1])
    events = sqlite3.connect(db).execute("SELECT count(*) FROM events WHERE source = 'server'").fetchone()[0]
    print("%s: %d reports/s, p99 %.1f ms, server CPU %.1f us per frame, %d geofence events, replies missing %d"
          % (label, s["replies_per_s"], s["latency_ms_p99"], cpu * 1e6 / max(1, s["frames_sent"]), events,
             s["replies_missing"] + s["replies_wrong"]))


def main():
    d = tempfile.mkdtemp()
    probe = os.path.join(d, "probe.db")
    port = free_port()
    srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1", "--port", str(port), "--http-port", "0",
                            "--db", probe], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run([BIN, "sim", "--port", str(port), "--devices", str(DEVICES), "--reports", "20"],
                   capture_output=True)
    srv.terminate()
    srv.wait()
    area = sim_area(probe)
    for name, fences in (("empty", False), ("fences", True)):
        db = os.path.join(d, name + ".db")
        subprocess.run([BIN, "user", "add", "--name", "x", "--db", db], input="password-123\n",
                       capture_output=True, text=True)  # creates and migrates the database
        if fences:
            fill(db, area)
        run(db, "seal ingest, %s, %d devices x %d reports, window %d" %
            ("10,000 geofences + 10 alert rules" if fences else "no geofences or rules", DEVICES, REPORTS, WINDOW))
    subprocess.run(["rm", "-rf", d])


main()
