"""01 — end to end: the simulator drives JT709A (JT/T 808) and JT701D (JT600)
devices over TCP and UDP against the real server; every reply is checked byte
for byte by the simulator; the rows are read back from the real SQLite file."""
import json
import sys

from harness import Server, check, cli, fail

START = "2026-01-01T00:00:00Z"
START_S = 1767225600
REPORTS = 40


def expect_device_rows(srv, device, protocol, index):
    rows = srv.sql("SELECT p.fix_time, p.lat, p.lon, p.speed_kmh, p.valid, p.protocol, p.battery_pct"
                   " FROM positions p JOIN devices d ON d.id=p.device_id WHERE d.uid=? ORDER BY p.fix_time",
                   device)
    check(len(rows) == REPORTS, "%s: %d positions, want %d" % (device, len(rows), REPORTS))
    for k, (t, lat, lon, speed, valid, proto, batt) in enumerate(rows):
        check(t == START_S + 30 * k, "%s report %d: fix time %d, want %d" % (device, k, t, START_S + 30 * k))
        want_lat = 22.5 + index * 0.01 + k * 0.0005
        want_lon = 113.9 + index * 0.01 + k * 0.0005
        # JT600 carries minutes to 1e-4 (≈ 2e-6 degree); JT/T 808 1e-6 degree
        check(abs(lat - want_lat) < 3e-6 and abs(lon - want_lon) < 3e-6,
              "%s report %d: at %f,%f want %f,%f" % (device, k, lat, lon, want_lat, want_lon))
        check(abs(speed - 92.6) < 0.01, "%s report %d: speed %f" % (device, k, speed))
        check(valid == 1 and proto == protocol, "%s report %d: valid=%s protocol=%s" % (device, k, valid, proto))
    events = srv.sql("SELECT e.type, e.source, e.card, e.reason, e.time FROM events e JOIN devices d ON"
                     " d.id=e.device_id WHERE d.uid=? ORDER BY e.time, e.id", device)
    unlocks = [e for e in events if e[0] == "unlock"]
    check(len(unlocks) == REPORTS // 10, "%s: %d unlocks, want %d: %s" % (device, len(unlocks), REPORTS // 10, events))
    for e in unlocks:
        check(e[1] == "rfid" and e[2] == "%010d" % (6437000 + index), "%s: unlock %s" % (device, e))
    locks = [e for e in events if e[0] == "lock"]
    check(len(locks) == REPORTS // 10 and all(e[1] == "auto" for e in locks), "%s: locks %s" % (device, locks))
    tamper = [e for e in events if e[0] == "tamper"]
    check(len(tamper) == 1 and tamper[0][3] == "rope_cut" and tamper[0][4] == START_S + 30 * (REPORTS // 2),
          "%s: tamper %s" % (device, tamper))
    low = [e for e in events if e[0] == "low_battery"]
    check(len(low) == 1 and low[0][4] == START_S + 30 * (REPORTS - 1), "%s: low battery %s" % (device, low))
    state = srv.sql("SELECT s.fix_time, s.lock_state, s.protocol FROM device_state s JOIN devices d"
                    " ON d.id=s.device_id WHERE d.uid=?", device)
    check(state and state[0][0] == START_S + 30 * (REPORTS - 1) and state[0][2] == protocol,
          "%s: latest state %s" % (device, state))


def run(protocol, udp, devices=4):
    srv = Server()
    base = 794300000001 if protocol == "jt808" else 8000000001
    args = ["--protocol", protocol, "--devices", str(devices), "--reports", str(REPORTS), "--start", START]
    if udp:
        args.append("--udp")
    rc, summary, err = srv.sim(*args)
    owed = devices * (REPORTS + (4 if protocol == "jt808" else 1))
    check(summary["replies_ok"] == owed and summary["replies_missing"] == 0 and summary["replies_wrong"] == 0,
          "%s udp=%s: %s" % (protocol, udp, summary))
    for i in range(devices):
        ident = ("%012d" if protocol == "jt808" else "%010d") % (base + i)
        expect_device_rows(srv, ident, protocol, i)
    # the CLI reads the same rows
    out = cli("positions", "--db", srv.db, "--device", ("%012d" if protocol == "jt808" else "%010d") % base)
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    check(len(lines) == REPORTS and lines[0]["time"] == START, "positions CLI: %d lines %s" % (len(lines), lines[:1]))
    transport = srv.sql("SELECT DISTINCT transport FROM raw_frames")
    check(transport == [("udp" if udp else "tcp",)], "raw frames transport %s" % transport)
    srv.stop()
    print("%s over %s: %d devices x %d reports stored and acknowledged" % (protocol, "udp" if udp else "tcp", devices, REPORTS))


for protocol in ("jt808", "jt600"):
    for udp in (False, True):
        run(protocol, udp)

# Ingest rate of this end-to-end path (reported, not asserted: benchmarks live in bench/).
srv = Server()
rc, summary, err = srv.sim("--protocol", "jt808", "--devices", "50", "--reports", "400", "--window", "8")
print("ingest rate, 50 JT709A devices x 400 reports, window 8, TCP, synchronous=FULL: %s replies/s, "
      "p50 %.2f ms, p99 %.2f ms" % (summary["replies_per_s"], summary["latency_ms_p50"], summary["latency_ms_p99"]))
n = srv.sql("SELECT count(*) FROM positions")[0][0]
check(n == 50 * 400, "positions stored %d, want %d" % (n, 50 * 400))
srv.stop()

# The mixed mode: JT709A and JT701D devices on the one port at once, every other device.
srv = Server()
rc, summary, err = srv.sim("--protocol", "mixed", "--devices", "10", "--reports", "30", "--window", "4")
check(summary.get("protocol") == "mixed" and summary.get("replies_missing") == 0, "mixed sim: %s" % summary)
by_proto = dict(srv.sql("SELECT protocol, count(*) FROM positions GROUP BY protocol"))
check(by_proto == {"jt808": 5 * 30, "jt600": 5 * 30}, "mixed positions by protocol: %s" % by_proto)
uids = sorted(u for (u,) in srv.sql("SELECT uid FROM devices"))
check(uids == ["79430000000%d" % i for i in range(1, 6)] + ["800000000%d" % i for i in range(1, 6)],
      "mixed device ids: %s" % uids)
srv.stop()
print("mixed: 5 JT709A + 5 JT701D devices x 30 reports on one port, all stored")
sys.exit(0)
