"""10 — seal operations end to end: geofences, a shipment followed from sealing to
unsealing, its custody chain verified (and broken on purpose), alert rules delivering
signed webhooks (a dead webhook retried without holding up a healthy one), a remote
unlock refused outside the authorised zone, and a command queued while the seal is
offline, delivered on reconnect and confirmed by the simulated device's answer.
The real server, the real simulator over TCP, the real SQLite file.
Run: python3 tests/integration/10-seals.py build/sealtrack"""
import hashlib
import hmac
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import harness
from harness import Api, Server, check, cli, free_port

STEP = 30                           # seconds between fixes
START = int(time.time()) - 3600     # fix time of the first report
ROUTE = [(47.0, 8.00 + i * 0.01) for i in range(21)]  # west to east, ~760 m per fix
DEV1, DEV2 = 8000000001, 8000000002
SECRET = "whsec-test-secret"
SLOW = 15 if os.environ.get("ST_SERVER_WRAP") else 1  # the server under valgrind: waits stretch


def route_arg(points):
    return ";".join("%.6f,%.6f" % p for p in points)


def sim(srv, dev, *extra):
    rc, summary, err = srv.sim("--protocol", "jt600", "--devices", "1", "--id-base", str(dev),
                               "--reports", str(len(ROUTE)), "--start", time_iso(START),
                               "--route", route_arg(ROUTE), "--step-s", str(STEP), *extra)
    return summary


def time_iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def wait_for(what, fn, timeout=10.0):
    end = time.time() + timeout * SLOW
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    check(False, "timed out waiting for " + what)


# ---- a webhook receiver on loopback that checks signatures -------------------------------------

class Receiver(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ts = self.headers.get("X-Sealtrack-Timestamp", "")
        want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, self.headers.get("X-Sealtrack-Signature", ""))
        Receiver.got.append((time.time(), ok, json.loads(body)))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    hp = free_port()
    srv = Server("--http-port", str(hp))
    r = cli("user", "add", "--name", "admin", "--db", srv.db, stdin="admin-password-1\n")
    check(r.returncode == 0, "user add: " + r.stderr)
    api = Api(hp, "admin", "admin-password-1")

    # ---- geofences, and the 4xx answers of bad ones ----
    def fence(body):
        st, js = api.post("/api/geofences", body)
        check(st == 201, "create geofence %s: %s %s" % (body["name"], st, js))
        return js["id"]

    depot = fence({"name": "Depot", "kind": "control_point", "shape": "circle", "center": [47.0, 8.0],
                   "radius_m": 1000})
    border = fence({"name": "Border", "kind": "forbidden", "shape": "polygon", "dwell_s": 60,
                    "points": [[46.99, 8.075], [46.99, 8.125], [47.01, 8.125], [47.01, 8.075]]})
    port = fence({"name": "Port", "kind": "allowed", "shape": "circle", "center": [47.0, 8.2],
                  "radius_m": 1000})
    corridor = fence({"name": "Road", "kind": "allowed", "shape": "corridor", "width_m": 500,
                      "points": [[47.0, 7.99], [47.0, 8.21]]})
    bad = [
        ({"name": "x", "kind": "allowed", "shape": "polygon",
          "points": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "points"),           # a bow tie
        ({"name": "x", "kind": "allowed", "shape": "corridor", "width_m": 10, "points": [[0, 0]]}, "points"),
        ({"name": "x", "kind": "allowed", "shape": "circle", "center": [0, 0], "radius_m": 0}, "radius_m"),
        ({"name": "x", "kind": "allowed", "shape": "polygon",
          "points": [[0, 0], [0, 60], [1, 60]]}, "points"),                 # huge
        ({"name": "x", "kind": "allowed", "shape": "circle", "center": [0, 0], "radius_m": 5,
          "devices": [999999]}, "devices"),
        ({"name": "x", "kind": "nowhere", "shape": "circle", "center": [0, 0], "radius_m": 5}, "kind"),
    ]
    for body, field in bad:
        st, js = api.post("/api/geofences", body)
        check(st == 400 and isinstance(js, dict) and js.get("field") == field,
              "bad geofence %s: want 400 naming %s, got %s %s" % (body, field, st, js))

    # ---- webhooks and rules: one healthy receiver, one dead port ----
    Receiver.got = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    st, good = api.post("/api/webhooks", {"name": "ops", "url": "http://127.0.0.1:%d/hook" % httpd.server_port,
                                          "secret": SECRET})
    check(st == 201, "webhook: %s %s" % (st, good))
    st, dead = api.post("/api/webhooks", {"name": "dead", "url": "http://127.0.0.1:%d/hook" % free_port(),
                                          "secret": SECRET})
    check(st == 201, "dead webhook: %s %s" % (st, dead))
    types = ["geofence_enter", "geofence_exit", "tamper", "unlock_outside_zone", "unknown_card", "unlock"]
    for hook in (dead, good):  # the dead one first: its deliveries are older
        st, js = api.post("/api/alert-rules", {"name": "to " + hook["name"], "types": types,
                                               "webhook_id": hook["id"]})
        check(st == 201, "rule: %s %s" % (st, js))

    # ---- devices and a shipment sealed at the depot, to be unlocked at the port ----
    ids = {}
    for uid in (DEV1, DEV2):
        st, js = api.post("/api/devices", {"uid": str(uid), "name": "seal %d" % uid, "model": "JT701D"})
        check(st == 201, "device: %s %s" % (st, js))
        ids[uid] = js["id"]
    st, ship = api.post("/api/shipments", {"reference": "PO-1", "device_id": ids[DEV1], "origin": "Depot",
                                           "destination": "Port", "corridor_fence_id": corridor,
                                           "unlock_zones": [port]})
    check(st == 201 and ship["status"] == "open", "shipment: %s %s" % (st, ship))
    st, ship2 = api.post("/api/shipments", {"reference": "PO-2", "device_id": ids[DEV2], "unlock_zones": [depot]})
    check(st == 201, "shipment 2: %s %s" % (st, ship2))
    st, js = api.post("/api/shipments", {"reference": "PO-3", "device_id": ids[DEV1]})
    check(st == 409, "a second open shipment for one seal: want 409, got %s %s" % (st, js))

    # ---- the live stream: alerts arrive there too ----
    stream_alerts = []

    def listen():
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", hp, timeout=60 * SLOW)
        conn.request("GET", "/api/stream", headers={"Cookie": "st_session=" + api.cookie})
        r = conn.getresponse()
        event = None
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "alert":
                stream_alerts.append(json.loads(line[6:]))
    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.3 * SLOW)

    # ---- the journey: sealed (auto-lock) at the depot, through the border, to the port ----
    sim(srv, DEV1, "--events", "0:lock")
    sim(srv, DEV2, "--events", "0:lock", "--late", "5-14")

    def fence_events(dev):
        rows = srv.sql("SELECT e.fence_id, e.type, p.fix_time FROM events e JOIN positions p"
                       " ON p.id = e.position_id WHERE e.device_id = ? AND e.source = 'server'"
                       " ORDER BY p.fix_time, e.fence_id, e.type", ids[dev])
        return [(f, t, (ft - START) // STEP) for f, t, ft in rows]

    want = sorted([(depot, "geofence_enter", 0), (corridor, "geofence_enter", 0), (depot, "geofence_exit", 2),
                   (border, "geofence_enter", 10), (border, "geofence_exit", 15), (port, "geofence_enter", 19)],
                  key=lambda e: (e[2], e[0], e[1]))
    got1 = fence_events(DEV1)
    check(got1 == want, "in-order geofence events at the right fixes (dwell 60 s on Border):\n want %s\n got  %s"
          % (want, got1))
    got2 = fence_events(DEV2)
    check(got2 == want, "late history gives the same events as in order:\n want %s\n got  %s" % (want, got2))
    late = srv.sql("SELECT count(*) FROM events WHERE device_id = ? AND source = 'server'"
                   " AND json_extract(detail, '$.late') = 1", ids[DEV2])[0][0]
    check(late == 2, "the Border events of the late history are marked late: %d" % late)

    st, seal = api.get("/api/devices/%d/seal" % ids[DEV1])
    check(st == 200 and seal["state"] == "sealed", "seal state after the auto-lock: %s %s" % (st, seal))

    wait_for("alerts on the live stream", lambda: len(stream_alerts) >= 12, 10)
    check(all(a.get("rule", {}).get("name") and a.get("device_id") in ids.values() for a in stream_alerts),
          "stream alerts name their rule and device: %s" % stream_alerts[:2])

    # ---- webhooks: the healthy receiver gets signed alerts while the dead one is retried ----
    wait_for("signed alerts at the healthy webhook", lambda: len(Receiver.got) >= 6, 15)
    check(all(ok for _, ok, _ in Receiver.got), "every delivery carried a valid signature")
    kinds = sorted(p["alert"]["type"] for _, _, p in Receiver.got)
    check(kinds.count("geofence_enter") >= 4, "geofence enters delivered: %s" % kinds)

    def dead_retried():
        rows = srv.sql("SELECT max(attempts), min(state), max(last_error IS NOT NULL) FROM webhook_deliveries"
                       " WHERE webhook_id = ?", dead["id"])
        return rows[0][0] and rows[0][0] >= 2 and rows[0][1] == "pending" and rows[0][2]
    wait_for("the dead webhook's deliveries retried", dead_retried, 15)
    st, log = api.get("/api/webhooks/%d/deliveries" % dead["id"])
    check(st == 200, "delivery log: %s %s" % (st, log))

    # ---- remote unlock: refused outside the authorised zone (seal 2's zone is the depot) ----
    st, js = api.post("/api/devices/%d/commands" % ids[DEV2], {"type": "unlock", "password": "888888"})
    check(st == 403 and "outside" in js.get("error", ""), "unlock outside the zone: want 403, got %s %s" % (st, js))
    refused = srv.sql("SELECT kind, actor, source FROM custody_log WHERE shipment_id = ? AND kind = 'unlock_refused'",
                      ship2["id"])
    check(len(refused) == 1 and refused[0][2] == "api", "the refusal is in the custody chain: %s" % refused)
    st, js = api.post("/api/devices/%d/commands" % ids[DEV1], {"type": "lock"})
    check(st == 400 and "rope" in js.get("error", ""), "no remote lock: %s %s" % (st, js))
    st, js = api.post("/api/devices/%d/commands" % 999999, {"type": "reboot"})
    check(st == 404, "command to an unknown device: %s %s" % (st, js))

    # ---- an on-site RFID unlock of seal 2 at the port: outside its zone, with an unknown card ----
    for body, field in (({"unlock_zones": [999999]}, "unlock_zones"), ({"cards": [{"card": ""}]}, "cards"),
                        ({"cards": "0001"}, "cards"), ({"reference": "X"}, "reference")):
        st, js = api.patch("/api/shipments/%d" % ship2["id"], body)
        check(st == 400 and js.get("field") == field, "bad shipment change %s: %s %s" % (body, st, js))
    st, js = api.patch("/api/shipments/%d" % ship2["id"], {"cards": [{"card": "0000000001", "holder": "Ann"}]})
    check(st == 200 and js["cards"] == [{"card": "0000000001", "holder": "Ann"}], "cards set: %s %s" % (st, js))
    srv.sim("--protocol", "jt600", "--devices", "1", "--id-base", str(DEV2), "--reports", "2",
            "--route", route_arg([ROUTE[-1]] * 2), "--step-s", str(STEP), "--events", "1:unlock_rfid:6437449")
    entry = srv.sql("SELECT detail FROM custody_log WHERE shipment_id = ? AND kind = 'unsealed'", ship2["id"])
    check(len(entry) == 1 and json.loads(entry[0][0]).get("authorised_zone", 1) is None
          and json.loads(entry[0][0]).get("card_authorised") is False,
          "the unsealing is recorded as outside the zone with an unknown card: %s" % entry)
    st, al = api.get("/api/alerts?device_id=%d" % ids[DEV2])
    got_types = {a["type"] for a in al["alerts"]}
    check({"unlock_outside_zone", "unknown_card", "unlock"} <= got_types, "alerts of the unlock: %s" % got_types)
    st, viol = api.get("/api/reports/violations?from=%s" % time_iso(START - 86400))
    check(st == 200 and any(v["shipment_id"] == ship2["id"] and v["kind"] == "unsealed" for v in viol["violations"])
          and any(v["kind"] == "unlock_refused" for v in viol["violations"]),
          "violations report: %s %s" % (st, viol))
    st, seals = api.get("/api/reports/seals?from=%s" % time_iso(START - 86400))
    row = [d for d in seals["devices"] if d["device_id"] == ids[DEV2]]
    check(st == 200 and row and row[0]["unlocks"] >= 1 and row[0]["locks"] == 1 and row[0]["seal_state"] == "unsealed",
          "seal report: %s %s" % (st, row))

    # ---- a command queued while the seal is offline, delivered on reconnect, confirmed ----
    st, cmd = api.post("/api/devices/%d/commands" % ids[DEV1], {"type": "unlock", "password": "888888",
                                                                 "ttl_s": 600})
    check(st == 201 and cmd["state"] == "queued", "unlock queued while offline: %s %s" % (st, cmd))
    at_port = [ROUTE[-1]] * 3
    srv.sim("--protocol", "jt600", "--devices", "1", "--id-base", str(DEV1), "--reports", "3",
            "--route", route_arg(at_port), "--step-s", str(STEP), "--hold-ms", str(3000 * SLOW))
    st, got = api.get("/api/commands/%d" % cmd["id"])
    check(st == 200 and got["state"] == "confirmed", "the unlock was confirmed by the device: %s %s" % (st, got))
    check("888888" not in json.dumps(got), "the password is never shown back")
    st, seal = api.get("/api/devices/%d/seal" % ids[DEV1])
    check(st == 200 and seal["state"] == "unsealed", "seal state after the remote unlock: %s %s" % (st, seal))

    # ---- a silent seal: one device_offline alert, on the stream too ----
    st, js = api.post("/api/alert-rules", {"name": "silent", "types": ["device_offline"], "offline_minutes": 1,
                                           "device_id": ids[DEV2]})
    check(st == 201, "offline rule: %s %s" % (st, js))
    con = sqlite3.connect(srv.db, timeout=10)
    con.execute("UPDATE device_state SET last_seen = ? WHERE device_id = ?", ((int(time.time()) - 120) * 1000, ids[DEV2]))
    con.commit()
    con.close()
    wait_for("a device_offline alert on the stream",
             lambda: any(a["type"] == "device_offline" and a["device_id"] == ids[DEV2] for a in stream_alerts), 15)
    check(srv.sql("SELECT count(*) FROM alerts WHERE type = 'device_offline'")[0][0] == 1, "one alert per silence")

    # ---- the shipment from sealing to unsealing, closed; its chain verified ----
    st, js = api.patch("/api/shipments/%d" % ship["id"], {"status": "closed"})
    check(st == 200 and js["status"] == "closed", "close the shipment: %s %s" % (st, js))
    st, chain = api.get("/api/shipments/%d/custody" % ship["id"])
    check(st == 200, "custody: %s %s" % (st, chain))
    kinds = [e["kind"] for e in chain["entries"]]
    for k in ("shipment_opened", "sealed", "command_sent", "command_confirmed", "unsealed", "shipment_closed"):
        check(k in kinds, "custody has %s: %s" % (k, kinds))
    check(kinds[0] == "shipment_opened" and kinds[-1] == "shipment_closed", "chain order: %s" % kinds)
    check(kinds.index("sealed") < kinds.index("command_sent") < kinds.index("command_confirmed"),
          "sealed, then the command sent, then confirmed: %s" % kinds)
    st, ver = api.get("/api/shipments/%d/custody/verify" % ship["id"])
    check(st == 200 and ver["ok"] is True and ver["entries"] == len(kinds), "verify: %s %s" % (st, ver))
    st, report = api.get("/api/shipments/%d/report" % ship["id"])
    check(st == 200 and len(report["timeline"]) == len(kinds), "shipment report: %s %s" % (st, report))

    # the export verifies offline with the standalone script
    st, export = api.get("/api/shipments/%d/custody?format=export" % ship["id"])
    check(st == 200, "export: %s" % st)
    path = os.path.join(srv.dir, "export.json")
    with open(path, "w") as f:
        json.dump(export, f)
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "custody_verify.py")
    r = subprocess.run([sys.executable, script, path], capture_output=True, text=True)
    check(r.returncode == 0, "offline verification of the export: %s %s" % (r.stdout, r.stderr))

    # editing one custody row (around the append-only trigger) is named by verify
    row = srv.sql("SELECT id, seq FROM custody_log WHERE shipment_id = ? ORDER BY seq LIMIT 1 OFFSET 2",
                  ship["id"])[0]
    con = sqlite3.connect(srv.db, timeout=10)
    con.execute("DROP TRIGGER custody_log_no_update")
    con.execute("UPDATE custody_log SET actor = 'mallory' WHERE id = ?", (row[0],))
    con.commit()
    con.close()
    st, ver = api.get("/api/shipments/%d/custody/verify" % ship["id"])
    check(st == 200 and ver["ok"] is False and ver["broken"]["id"] == row[0] and ver["broken"]["seq"] == row[1],
          "verify names exactly the edited row %s: %s" % (row, ver))
    r = subprocess.run([sys.executable, script, path], capture_output=True, text=True)
    check(r.returncode == 0, "the earlier export still verifies (it predates the edit)")

    httpd.shutdown()
    srv.stop()
    check(not srv.log_lines("level=error"), "no error lines: %s" % srv.log_lines("level=error"))
    print("10-seals: ok")


if __name__ == "__main__":
    try:
        main()
    finally:
        harness.stop_all()
