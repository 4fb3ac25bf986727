"""05 — the command line: `decode` on hex and raw input, every subcommand's --help,
bad arguments rejected with a message and exit code 2."""
import json

from harness import Server, check, cli, load_vectors


def vec(name, vid):
    return [r for r in load_vectors(name) if r["vector_id"] == vid][0]


d007 = vec("jt808.tsv", "JT808-D007")["message"]
out = cli("decode", stdin=d007 + "\n")
check(out.returncode == 0, out.stderr)
r = json.loads(out.stdout.splitlines()[0])
for k, v in {"protocol": "jt808", "device_id": "794308010679", "time": "2025-11-18T11:26:11Z",
             "lat": -25.269608, "lon": -57.602956, "speed_kmh": 1.8, "course": 0, "valid": True,
             "battery_pct": 100, "lock": "unlocked"}.items():
    check(r.get(k) == v, "decode D007: %s = %r, want %r" % (k, r.get(k), v))
check(r["fix"] in ("beidou", "gnss", "gps"), "fix %r" % r["fix"])
unlock = [e for e in r["events"] if e["type"] == "unlock"]
check(unlock and unlock[0].get("card") == "0006437449" and unlock[0].get("source") == "rfid",
      "decode D007 events %r" % r["events"])

out = cli("decode", "--tz", "480", stdin=d007)
check(json.loads(out.stdout)["time"] == "2025-11-18T03:26:11Z", "--tz 480: %s" % out.stdout)

m01 = vec("jt600.tsv", "JT600-M01")["message"]
m02 = vec("jt600.tsv", "JT600-M02")["message"]  # ASCII: decoded as raw input
out = cli("decode", "--reply", stdin=m01)
lines = [json.loads(l) for l in out.stdout.splitlines()]
check(lines[0]["protocol"] == "jt600" and lines[0]["device_id"] == "8000620011" and
      lines[0]["time"] == "2021-04-18T16:22:59Z" and abs(lines[0]["speed_kmh"] - 33.336) < 1e-9 and
      lines[0]["battery_pct"] == 40, "decode M01: %r" % lines[0])
check(lines[1] == {"reply": "(P69,0,86)".encode().hex()}, "M01 reply %r" % lines[1])
out = cli("decode", stdin=m02)
p45 = json.loads(out.stdout.splitlines()[0])
check(p45["device_id"] == "8000620011" and any(e["type"] == "unlock" and e.get("card") == "0008627839"
                                                  for e in p45["events"]), "decode M02 %r" % p45)

# a capture of several frames, raw bytes, with garbage between them
raw = bytes.fromhex(m01) + b"\r\n" + m02.encode() + b"\x00\x00" + bytes.fromhex(d007)
import subprocess, sys
from harness import BIN
p = subprocess.run([BIN, "decode", "--raw"], input=raw, capture_output=True, timeout=30)
ids = [json.loads(l)["device_id"] for l in p.stdout.decode().splitlines()]
check(ids == ["8000620011", "8000620011", "794308010679"], "raw capture decoded %r; stderr %s" % (ids, p.stderr))

out = cli("decode", stdin="zz-not-a-frame\n")
check(out.returncode == 1 and "protocol_unknown" in out.stderr, "garbage decode: %d %s" % (out.returncode, out.stderr))

for sub in (["serve"], ["sim"], ["decode"], ["positions"], ["events"], ["raw"], ["devices"], ["device"]):
    h = cli(*sub, "--help")
    check(h.returncode == 0 and "usage" in h.stdout, "%s --help: %d %s" % (sub, h.returncode, h.stderr))
check(cli("--help").returncode == 0, "sealtrack --help")
for bad in (["serve", "--port", "0"], ["serve", "--register", "sometimes"], ["serve", "--set", "nope=1"],
            ["sim", "--protocol", "gt06"], ["positions", "--since", "yesterday"], ["frobnicate"]):
    r = cli(*bad)
    check(r.returncode == 2 and r.stderr.strip(), "%s: exit %d, stderr %r" % (bad, r.returncode, r.stderr))

# positions / events / devices / raw read a database the server wrote
srv = Server()
srv.sim("--protocol", "jt600", "--devices", "1", "--reports", "12", "--start", "2026-03-01")
srv.stop()
ev = [json.loads(l) for l in cli("events", "--db", srv.db, "--type", "unlock").stdout.splitlines()]
check(len(ev) == 1 and ev[0]["card"] == "0006437000", "events --type unlock: %r" % ev)
pos = cli("positions", "--db", srv.db, "--since", "2026-03-01T00:01:00Z", "--limit", "3").stdout.splitlines()
check(len(pos) == 3 and json.loads(pos[0])["time"] == "2026-03-01T00:01:00Z", "positions --since: %r" % pos[:1])
dev = [json.loads(l) for l in cli("devices", "--db", srv.db).stdout.splitlines()]
check(len(dev) == 1 and dev[0]["device_id"] == "8000000001" and dev[0]["protocol"] == "jt600", "devices %r" % dev)
raw = [json.loads(l) for l in cli("raw", "--db", srv.db, "--limit", "1").stdout.splitlines()]
check(raw and raw[0]["hex"].startswith("28") and raw[0]["decoded"][0]["msg_type"], "raw %r" % raw)
print("cli: decode (hex, raw, tz, reply), help, argument errors, queries")
