"""api_query.py BIN [ROWS] — HTTP API latency over a large positions table (printed, never asserted).

Builds a database with ROWS positions (default 1,000,000: 20 devices x 50,000 fixes 30 s
apart, ~17 days each, written straight into SQLite after `BIN user add` has created the
schema), starts `BIN serve` with the API on a free port, logs in once, then times each query
REPEAT times (default 30) on one keep-alive connection and prints p50 / p99 / max in ms:

  positions page     one device, one day, first page of 100 (JSON)
  positions cursor   the same day, the page after a cursor in the middle of it
  positions 30 days  one device, 30 days (the whole history), first page of 100
  positions CSV day  one device, one day (2,880 rows) as CSV
  positions GeoJSON  same as GeoJSON
  events day         the organisation's events of one day (JSON page)
  trips day          the trips report of one device for one day
  devices list       the 20 devices with their latest state
"""
import http.client
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import free_port  # noqa: E402

BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build-release/sealtrack"
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
REPEAT = int(os.environ.get("REPEAT", "30"))
DEVICES = 20
PER_DEVICE = ROWS // DEVICES
START = 1767225600  # 2026-01-01T00:00:00Z


def build(db):
    subprocess.run([BIN, "user", "add", "--db", db, "--name", "bench"], input="benchpassword\n",
                   text=True, check=True, capture_output=True)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    t0 = time.time()
    for d in range(DEVICES):
        cur = con.execute("INSERT INTO devices(uid, org_id, protocol, created_at) VALUES(?, 1, 'jt808', ?)",
                          ("79430000%04d" % d, START))
        dev = cur.lastrowid
        rows = []
        for i in range(PER_DEVICE):
            t = START + i * 30
            lat = 22.5 + (i % 2000) * 0.0005
            lon = 113.9 + (i % 2000) * 0.0005
            speed = 0.0 if (i // 120) % 4 == 3 else 60.0  # an hour moving, 20 min parked, ...
            rows.append((dev, t, t * 1000, "jt808", "0x0200", 1, lat, lon, 10.0, speed, 90.0, "gnss", 9, 80,
                         "locked", '{"serial":"%d"}' % i))
        con.executemany(
            "INSERT INTO positions(device_id, fix_time, recv_time, protocol, msg_type, valid, lat, lon,"
            " altitude, speed_kmh, course, fix, satellites, battery_pct, lock_state, attrs)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.executemany("INSERT INTO events(device_id, time, recv_time, type) VALUES(?,?,?,?)",
                        [(dev, START + i * 3600, (START + i * 3600) * 1000, "lock") for i in range(PER_DEVICE // 120)])
        last = rows[-1]
        con.execute("INSERT INTO device_state(device_id, last_seen, protocol, fix_time, valid, lat, lon,"
                    " battery_pct, lock_state) VALUES(?,?,?,?,?,?,?,?,?)",
                    (dev, last[2], "jt808", last[1], 1, last[6], last[7], 80, "locked"))
    con.commit()
    n = con.execute("SELECT count(*) FROM positions").fetchone()[0]
    con.close()
    print("database: %d positions, %d devices, built in %.1f s, %.0f MiB"
          % (n, DEVICES, time.time() - t0, os.path.getsize(db) / 1048576))


def main():
    tmp = tempfile.mkdtemp(prefix="sealtrack-bench-api-")
    db = os.path.join(tmp, "bench.db")
    build(db)
    port, hport = free_port(), free_port()
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1", "--port", str(port), "--db", db,
                             "--http-port", str(hport), "--set", "log_level=warn"],
                            stderr=subprocess.PIPE, text=True)
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    conn = None
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=30)
            conn.request("GET", "/api/health")
            conn.getresponse().read()
            break
        except OSError:
            conn = None
            time.sleep(0.1)
    conn.request("POST", "/api/session", json.dumps({"name": "bench", "password": "benchpassword"}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    hdr = {"Cookie": cookie}

    def get(path):
        conn.request("GET", path, headers=hdr)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit("%s -> %d %s" % (path, resp.status, body[:200]))
        return resp, body

    day = START + 10 * 86400
    rng = "from=%d&to=%d" % (day, day + 86399)
    _, body = get("/api/devices/7/positions?%s&limit=1000" % rng)
    middle = json.loads(body)["positions"][500]["id"]
    cases = [
        ("positions page", "/api/devices/7/positions?%s&limit=100" % rng),
        ("positions cursor", "/api/devices/7/positions?%s&limit=100&cursor=%d" % (rng, middle)),
        ("positions 30 days", "/api/devices/7/positions?from=%d&to=%d&limit=100" % (START, START + 30 * 86400)),
        ("positions CSV day", "/api/devices/7/positions?%s&format=csv&limit=100000" % rng),
        ("positions GeoJSON day", "/api/devices/7/positions?%s&format=geojson&limit=100000" % rng),
        ("events day", "/api/events?%s" % rng),
        ("trips day", "/api/devices/7/reports/trips?%s" % rng),
        ("devices list", "/api/devices"),
    ]
    print("HTTP API latency over %d positions (%d runs each, one keep-alive connection):" % (ROWS, REPEAT))
    for name, path in cases:
        times = []
        size = 0
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            _, body = get(path)
            times.append((time.perf_counter() - t0) * 1000)
            size = len(body)
        times.sort()
        print("  %-22s p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%d bytes)"
              % (name, statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))],
                 times[-1], size))
    proc.terminate()
    proc.wait(10)


if __name__ == "__main__":
    main()
