"""09 — the HTTP API end to end, against docs/api.md: the real server with its API
port, users from the CLI and the API, devices driven by the simulator, every answer
checked against the real SQLite file. Sections:
   1 health and 401 everywhere without credentials
   2 login, cookie attributes, session, logout
   3 organisations and users (system admin, org admin, 404 across organisations)
   4 API tokens (shown once, listed by prefix, Bearer, revoke, other users' tokens)
   5 devices CRUD and request validation (400 naming the field, 404/405/409/413/415)
   6 data from the simulator: state, positions (JSON/CSV/GPX/GeoJSON, pages, from/to),
     events, raw frames, reports (route, trips, stops, summary)
   7 tenant isolation (another organisation's device is 404 everywhere)
   8 live stream (Server-Sent Events): initial state, report latency, isolation
   9 retention per organisation
  10 malformed requests never get a 5xx
  11 roles: viewer and operator limits, metrics, disabled and deleted users, organisations
  12 failed-login limits (per user name, per address) — last, from other loopback addresses
Every check is soft within a section (all failures are listed, the exit code is 1).
Run: python3 tests/integration/09-api.py build/sealtrack"""
import csv
import datetime
import hashlib
import http.client
import io
import json
import math
import re
import select
import socket
import subprocess
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET

import harness
from harness import BIN, Server, cli, free_port

T_START = time.time()
GPX_NS = "{http://www.topografix.com/GPX/1/1}"
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
POS_COLUMNS = ["id", "device", "time", "recv_time", "valid", "lat", "lon", "altitude", "speed_kmh", "course",
               "satellites", "battery_pct", "protocol", "fix", "lock_state"]
REPORTS = 40  # per simulated device: 4 unlocks, 4 locks, a rope cut (k=20), low battery (k=39)

# ---- soft checks -------------------------------------------------------------------------------

CUR = {"name": "", "checks": 0, "fails": 0}
ALL_FAILS = []
SUMMARY = []


def ck(cond, msg):
    CUR["checks"] += 1
    if not cond:
        CUR["fails"] += 1
        ALL_FAILS.append("[%s] %s" % (CUR["name"], msg))
        print("FAIL [%s]: %s" % (CUR["name"], msg), file=sys.stderr, flush=True)
    return bool(cond)


def section(name, fn):
    CUR.update(name=name, checks=0, fails=0)
    t0 = time.time()
    try:
        fn()
    except Exception:  # a broken answer (KeyError, bad JSON, …) fails the section, the test goes on
        ck(False, "exception: " + traceback.format_exc().strip().replace("\n", "\n    "))
    line = "%-32s %s (%d checks, %d failed, %.1f s)" % (
        name, "ok" if CUR["fails"] == 0 else "FAILED", CUR["checks"], CUR["fails"], time.time() - t0)
    SUMMARY.append(line)
    print(line, flush=True)
    if not SRV.alive():
        ALL_FAILS.append("[%s] server died (exit %s); last logs:\n%s" % (name, SRV.proc.returncode,
                                                                        "\n".join(SRV.logs[-20:])))
        finish()


def finish():
    print("---- summary ----")
    for line in SUMMARY:
        print(line)
    print("runtime %.1f s" % (time.time() - T_START))
    if ALL_FAILS:
        print("%d failures:" % len(ALL_FAILS), file=sys.stderr)
        for f in ALL_FAILS:
            print("  " + f, file=sys.stderr)
        harness.stop_all()
        sys.exit(1)
    sys.exit(0)


# ---- HTTP --------------------------------------------------------------------------------------

class Resp:
    def __init__(self, method, path, sent, status, headers, body):
        self.method, self.path, self.sent = method, path, sent
        self.status, self.headers, self.body = status, headers, body  # headers: lower-case name -> [values]
        self.json = None
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except (ValueError, UnicodeDecodeError):
            pass

    def h(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __str__(self):
        sent = ""
        if self.sent is not None:
            s = self.sent if isinstance(self.sent, str) else repr(self.sent)
            sent = " " + (s if len(s) < 160 else s[:160] + "…(%d)" % len(s))
        body = self.text
        return "%s %s%s -> %s %s" % (self.method, self.path, sent, self.status,
                                     body if len(body) < 300 else body[:300] + "…")


def request(method, path, body=None, raw=None, headers=None, source=None, timeout=10):
    """One request on its own connection. body: a JSON value; raw: bytes/str sent as is."""
    hdrs = dict(headers or {})
    data, sent = None, None
    if body is not None:
        data = json.dumps(body).encode()
        sent = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    elif raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
        sent = raw
        hdrs.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", HP, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        headers_out = {}
        for k, v in r.getheaders():
            headers_out.setdefault(k.lower(), []).append(v)
        return Resp(method, path, sent, r.status, headers_out, payload)
    finally:
        conn.close()


def raw_exchange(data, timeout=5.0, body=b"", chunk=65536):
    """Send request bytes on a raw socket; the body (if any) in chunks, stopping when the server
    answers early. Returns a Resp (status 0 when nothing came back)."""
    s = socket.create_connection(("127.0.0.1", HP), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(data)
            for i in range(0, len(body), chunk):
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
                s.sendall(body[i:i + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        end = time.time() + timeout
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not c:
                break
            got += c
            if b"\r\n\r\n" in got:
                head, rest = got.split(b"\r\n\r\n", 1)
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
    finally:
        s.close()
    first = data.split(b"\r\n", 1)[0].decode("latin-1")
    if b"\r\n\r\n" not in got:
        return Resp(first, "", None, 0, {}, got)
    head, rest = got.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = 0
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return Resp(first, "", None, status, hdrs, rest)


class Client:
    """A caller: a session cookie or a Bearer token (or nothing)."""

    def __init__(self, label, cookie=None, token=None, source=None):
        self.label, self.cookie, self.token, self.source = label, cookie, token, source
        self.user = None

    def auth_headers(self):
        h = {}
        if self.cookie:
            h["Cookie"] = "st_session=" + self.cookie
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def req(self, method, path, body=None, raw=None, headers=None):
        h = self.auth_headers()
        h.update(headers or {})
        r = request(method, path, body=body, raw=raw, headers=h, source=self.source)
        r.method = "%s(%s)" % (method, self.label)
        return r

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.req("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


def login(name, password, source=None):
    r = request("POST", "/api/session", body={"name": name, "password": password}, source=source)
    return r, session_cookie(r)


def session_cookie(r):
    for c in r.headers.get("set-cookie", []):
        first = c.split(";", 1)[0].strip()
        if first.startswith("st_session="):
            return first.split("=", 1)[1]
    return None


def ck_status(r, want, what):
    wants = want if isinstance(want, (tuple, list, set)) else (want,)
    return ck(r.status in wants, "%s: want %s, got %s" % (what, "/".join(map(str, wants)), r))


def ck_err(r, want, what, field=None):
    ok = ck_status(r, want, what)
    if r.status >= 400:
        ok &= ck(isinstance(r.json, dict) and isinstance(r.json.get("error"), str) and r.json["error"] != "",
                 "%s: error answer without a JSON {\"error\": …} body: %s" % (what, r))
        ok &= ck((r.h("content-type") or "").startswith("application/json"),
                 "%s: error Content-Type %r: %s" % (what, r.h("content-type"), r))
    if field is not None:
        got = r.json.get("field") if isinstance(r.json, dict) else None
        ok &= ck(got == field, "%s: want field %r, got %r: %s" % (what, field, got, r))
    return ok


def ok_json(r, want, what):
    """Check the status and return the JSON (an empty dict when it is not JSON)."""
    ck_status(r, want, what)
    if not ck(r.json is not None, "%s: answer is not JSON: %s" % (what, r)):
        return {}
    return r.json


def iso2s(s):
    return int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def s2iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_iso(s):
    return isinstance(s, str) and ISO_RE.match(s) is not None


def pages(client, path, key, limit, max_pages=1000):
    """Follow "next" from a JSON list; returns (rows, page count, problems)."""
    rows, n, cursor, problems = [], 0, None, []
    sep = "&" if "?" in path else "?"
    while n < max_pages:
        url = "%s%slimit=%d" % (path, sep, limit) + ("&cursor=%s" % cursor if cursor is not None else "")
        r = client.get(url)
        n += 1
        if r.status != 200 or not isinstance(r.json, dict) or key not in r.json:
            problems.append("page %d: %s" % (n, r))
            break
        page = r.json[key]
        if len(page) > limit:
            problems.append("page %d has %d rows > limit %d" % (n, len(page), limit))
        rows.extend(page)
        nxt = r.json.get("next")
        hdr = r.h("x-next-cursor")
        if nxt is None and hdr is not None:
            problems.append("page %d: next null but X-Next-Cursor %r" % (n, hdr))
        if nxt is not None and str(nxt) != str(hdr):
            problems.append("page %d: next %r but X-Next-Cursor %r" % (n, nxt, hdr))
        if nxt is None:
            break
        if nxt == cursor:
            problems.append("page %d: next cursor did not move (%r)" % (n, nxt))
            break
        cursor = nxt
    return rows, n, problems


def sid(d):
    """The device id of a stream event: "device_id" (docs/api.md); the state events' "id" is tolerated
    here so that one missing key does not hide the other checks (a separate check names it)."""
    return d.get("device_id", d.get("id"))


def sql_write(query, *params):
    import sqlite3
    con = sqlite3.connect(SRV.db, timeout=10)
    try:
        con.execute(query, params)
        con.commit()
    finally:
        con.close()


def haversine(lat1, lon1, lat2, lon2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


# ---- live stream -------------------------------------------------------------------------------

class Stream:
    """GET /api/stream on a raw socket, parsed incrementally on a thread: events = [(t, name, data)]."""

    def __init__(self, client, path="/api/stream"):
        self.events, self.lock, self.closed = [], threading.Lock(), False
        self.sock = socket.create_connection(("127.0.0.1", HP), timeout=5)
        hdrs = "".join("%s: %s\r\n" % kv for kv in client.auth_headers().items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (path, hdrs)).encode())
        buf = b""
        end = time.time() + 5
        while b"\r\n\r\n" not in buf and time.time() < end:
            c = self.sock.recv(65536)
            if not c:
                break
            buf += c
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.head_text = head.decode("latin-1")
        self.first_body = rest
        if self.status == 200:
            threading.Thread(target=self._run, daemon=True).start()
        else:
            self.sock.close()

    def _run(self):
        raw, text = self.first_body, b""
        while True:
            if self.chunked:  # take the complete chunks out of raw
                while True:
                    i = raw.find(b"\r\n")
                    if i < 0:
                        break
                    try:
                        n = int(raw[:i].split(b";")[0], 16)
                    except ValueError:
                        n = -1
                    if n < 0 or len(raw) < i + 2 + n + 2:
                        break
                    text += raw[i + 2:i + 2 + n]
                    raw = raw[i + 2 + n + 2:]
            else:
                text += raw
                raw = b""
            text = text.replace(b"\r\n", b"\n")
            while b"\n\n" in text:
                block, text = text.split(b"\n\n", 1)
                name, data = "message", []
                for line in block.decode("utf-8", "replace").split("\n"):
                    if line.startswith(":"):
                        name = "comment"
                        data.append(line[1:].strip())
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                with self.lock:
                    self.events.append((time.time(), name, "\n".join(data)))
            try:
                self.sock.settimeout(0.5)
                c = self.sock.recv(65536)
            except socket.timeout:
                if self.closed:
                    return
                continue
            except OSError:
                c = b""
            if not c:
                self.closed = True
                return
            raw += c

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def parsed(self, name=None, since=0.0):
        out = []
        for t, n, d in self.snapshot():
            if (name is None or n == name) and t >= since:
                try:
                    out.append((t, n, json.loads(d)))
                except ValueError:
                    out.append((t, n, {"_unparsed": d}))
        return out

    def wait(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.parsed():
                if pred(e):
                    return e
            time.sleep(0.01)
        return None

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---- the server --------------------------------------------------------------------------------

HP = free_port()
SRV = Server("--http-port", str(HP), "--set", "retention_interval_s=1")
S = {}  # state shared between sections
ADMIN_PW = "admin-password-1"


def wait_health():
    end = time.time() + 10
    last = None
    while time.time() < end:
        try:
            last = request("GET", "/api/health", timeout=2)
            if last.status == 200:
                return last
        except OSError as e:
            last = e
        time.sleep(0.05)
    harness.fail("GET /api/health never answered 200 on port %d: %s\nlogs:\n%s" % (HP, last, "\n".join(SRV.logs[-20:])))


wait_health()
r = cli("user", "add", "--db", SRV.db, "--name", "admin", "--role", "admin", stdin=ADMIN_PW + "\n")
harness.check(r.returncode == 0, "sealtrack user add failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))


# 1 ----------------------------------------------------------------------------------------------
def s_health_401():
    r = request("GET", "/api/health")
    j = ok_json(r, 200, "health")
    ck(j.get("status") == "ok" and isinstance(j.get("version"), str) and isinstance(j.get("uptime_s"), (int, float)),
       "health body: %s" % r)
    protected = [("GET", "/metrics"), ("GET", "/api/session"), ("DELETE", "/api/session"),
                 ("GET", "/api/tokens"), ("POST", "/api/tokens"), ("DELETE", "/api/tokens/1"),
                 ("GET", "/api/orgs"), ("POST", "/api/orgs"), ("GET", "/api/orgs/1"), ("PATCH", "/api/orgs/1"),
                 ("DELETE", "/api/orgs/1"), ("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/users/1"),
                 ("PATCH", "/api/users/1"), ("DELETE", "/api/users/1"), ("GET", "/api/devices"),
                 ("POST", "/api/devices"), ("GET", "/api/devices/1"), ("PATCH", "/api/devices/1"),
                 ("DELETE", "/api/devices/1"), ("GET", "/api/devices/1/positions"), ("GET", "/api/events"),
                 ("GET", "/api/devices/1/raw"), ("GET", "/api/devices/1/reports/route"),
                 ("GET", "/api/devices/1/reports/trips"), ("GET", "/api/devices/1/reports/stops"),
                 ("GET", "/api/devices/1/reports/summary"), ("GET", "/api/stream")]
    for method, path in protected:
        body = {"name": "x"} if method in ("POST", "PATCH") else None
        ck_err(request(method, path, body=body), 401, "%s %s without credentials" % (method, path))
    # wrong credentials of each kind
    ck_err(request("GET", "/api/devices", headers={"Authorization": "Bearer st_notatoken"}), 401, "bad Bearer token")
    ck_err(request("GET", "/api/devices", headers={"Authorization": "Basic YWRtaW46eA=="}), 401, "Basic auth")
    ck_err(request("GET", "/api/devices", headers={"Cookie": "st_session=forged"}), 401, "forged cookie")
    ck_err(request("GET", "/api/devices", headers={"Cookie": "st_session="}), 401, "empty cookie")
    # keep-alive: three requests on one connection; pipelining: two requests in one write, two answers in order
    conn = http.client.HTTPConnection("127.0.0.1", HP, timeout=5)
    try:
        for path, want in (("/api/health", 200), ("/api/devices", 401), ("/api/health", 200)):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            ck(r.status == want, "keep-alive GET %s: want %d, got %d" % (path, want, r.status))
    finally:
        conn.close()
    s = socket.create_connection(("127.0.0.1", HP), timeout=5)
    s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\nGET /api/nothing HTTP/1.1\r\nHost: x\r\n"
              b"Connection: close\r\n\r\n")
    got = b""
    while True:
        try:
            c = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not c:
            break
        got += c
    s.close()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", got)
    ck(statuses == [b"200", b"404"], "pipelined health + unknown route: answers %s" % statuses)


# 2 ----------------------------------------------------------------------------------------------
def s_login():
    r, c = login("admin", "wrong-password")
    ck_err(r, 401, "login with a wrong password")
    ck(c is None, "a failed login set a cookie: %s" % r.headers.get("set-cookie"))
    ck_err(request("POST", "/api/session", body={"name": "admin"}), 400, "login without password", "password")
    r, c1 = login("admin", ADMIN_PW)
    j = ok_json(r, 200, "login admin")
    ck(c1, "login: no st_session cookie in %s" % r.headers.get("set-cookie"))
    sc = [x for x in r.headers.get("set-cookie", []) if x.startswith("st_session=")]
    attrs = [a.strip().lower() for a in (sc[0].split(";")[1:] if sc else [])]
    ck("httponly" in attrs, "cookie without HttpOnly: %s" % sc)
    ck("samesite=strict" in attrs, "cookie without SameSite=Strict: %s" % sc)
    ck("path=/" in attrs, "cookie without Path=/: %s" % sc)
    ck("secure" not in attrs, "cookie has Secure without http_secure_cookie: %s" % sc)
    ma = [a for a in attrs if a.startswith("max-age=")]
    ck(not ma or ma[0] == "max-age=43200", "cookie Max-Age is not 12 hours: %s" % sc)
    ck(c1 and len(c1) >= 20, "session cookie value too short to be a secret: %r" % c1)
    u = j.get("user") or {}
    ck(u.get("name") == "admin" and u.get("role") == "admin" and u.get("org_id") == 1 and u.get("disabled") is False
       and is_iso(u.get("created_at")) and isinstance(u.get("id"), int), "login answer user: %s" % r)
    ck(j.get("org") == {"id": 1, "name": "default"} and j.get("system_admin") is True, "login answer org: %s" % r)
    ck("password" not in r.text and "hash" not in r.text, "login answer leaks the password/hash: %s" % r)
    S["admin_id"] = u.get("id")
    a1 = Client("admin-session1", cookie=c1)
    r = a1.get("/api/session")
    j = ok_json(r, 200, "GET /api/session with the cookie")
    ck((j.get("user") or {}).get("name") == "admin" and j.get("system_admin") is True, "GET /api/session: %s" % r)
    # a second session stays valid when the first logs out
    r, c2 = login("admin", ADMIN_PW)
    ck_status(r, 200, "second login admin")
    ck(c2 and c2 != c1, "two logins gave the same cookie")
    r = a1.delete("/api/session")
    ck_status(r, 204, "logout")
    ck_err(a1.get("/api/session"), 401, "cookie after logout")
    ck_err(a1.get("/api/devices"), 401, "cookie after logout on /api/devices")
    S["admin"] = Client("admin", cookie=c2)
    ck_status(S["admin"].get("/api/session"), 200, "the other session after logout")
    hashes = SRV.sql("SELECT password_hash FROM users WHERE name='admin'")
    ck(hashes and hashes[0][0].startswith("$argon2id$"), "admin password not stored as argon2id: %s" % hashes)
    rows = SRV.sql("SELECT hash FROM sessions")
    ck((hashlib.sha256(c2.encode()).digest(),) in rows
       and all(c2 not in (h if isinstance(h, str) else h.hex()) and c2.encode() != h for (h,) in rows),
       "the session cookie is not stored as its SHA-256 digest (and only so): %s" % rows)


# 3 ----------------------------------------------------------------------------------------------
def s_orgs_users():
    adm = S["admin"]
    j = ok_json(adm.get("/api/orgs"), 200, "list orgs (system admin)")
    orgs = j.get("orgs", [])
    ck(any(o.get("id") == 1 and o.get("name") == "default" and "retention_positions_days" in o for o in orgs),
       "org 1 'default' not listed: %s" % j)
    r = adm.post("/api/orgs", {"name": "org-b"})
    j = ok_json(r, 201, "create org B")
    ck(j.get("name") == "org-b" and isinstance(j.get("id"), int) and j.get("retention_positions_days") is None
       and j.get("retention_raw_days") is None and is_iso(j.get("created_at")), "org B answer: %s" % r)
    S["org_b"] = ob = j.get("id")
    ck_err(adm.post("/api/orgs", {"name": "org-b"}), 409, "duplicate org name")
    ck_err(adm.post("/api/orgs", {"name": 5}), 400, "org name of wrong type", "name")
    ck_err(adm.post("/api/orgs", {}), 400, "org without name", "name")
    ck_err(adm.post("/api/orgs", {"name": "org-x", "retention_positions_days": "ten"}), 400,
           "org retention of wrong type", "retention_positions_days")

    def mk_user(client, name, role, org=None, what=None):
        body = {"name": name, "password": "pw-" + name + "-123", "role": role}
        if org is not None:
            body["org_id"] = org
        r = client.post("/api/users", body)
        j = ok_json(r, 201, what or "create user " + name)
        ck(j.get("name") == name and j.get("role") == role and j.get("disabled") is False
           and isinstance(j.get("id"), int) and "password" not in r.text, "user answer: %s" % r)
        return j

    u = mk_user(adm, "admin-b", "admin", ob)
    ck(u.get("org_id") == ob, "admin-b not in org B: %s" % u)
    S["ids"] = ids = {"admin": S["admin_id"], "admin-b": u.get("id")}
    for name, role in (("operator-a", "operator"), ("viewer-a", "viewer")):
        u = mk_user(adm, name, role)
        ck(u.get("org_id") == 1, "%s not in org 1 (system admin's own): %s" % (name, u))
        ids[name] = u.get("id")
    r, c = login("admin-b", "pw-admin-b-123")
    ck_status(r, 200, "login admin-b")
    ck((r.json or {}).get("system_admin") is False and (r.json or {}).get("org", {}).get("id") == ob,
       "admin-b session: %s" % r)
    S["admin-b"] = adb = Client("admin-b", cookie=c)
    for name, role in (("operator-b", "operator"), ("viewer-b", "viewer")):
        u = mk_user(adb, name, role, what="admin-b creates " + name)
        ck(u.get("org_id") == ob, "%s created by admin-b not in org B: %s" % (name, u))
        ids[name] = u.get("id")
    for name in ("operator-a", "viewer-a", "operator-b", "viewer-b"):
        r, c = login(name, "pw-%s-123" % name)
        ck_status(r, 200, "login " + name)
        S[name] = Client(name, cookie=c)
    # duplicates and bad values
    ck_err(adm.post("/api/users", {"name": "viewer-b", "password": "whatever-1", "role": "viewer"}), 409,
           "duplicate user name (in another organisation)")
    ck_err(adm.post("/api/users", {"name": "u-bad", "password": "whatever-1", "role": "superuser"}), 400,
           "bad role", "role")
    ck_err(adm.post("/api/users", {"name": "u-bad", "role": "viewer"}), 400, "user without password", "password")
    ck_err(adm.post("/api/users", {"name": "u-bad", "password": "whatever-1", "role": "viewer", "org_id": 99999}),
           (400, 404), "user in an organisation that does not exist")
    r = adb.post("/api/users", {"name": "u-sneak", "password": "whatever-1", "role": "admin", "org_id": 1})
    ck(400 <= r.status < 500 and r.status != 409, "org admin creates a user in org 1: want 403, got %s" % r)
    ck(r.status == 403, "org admin passing org_id: want 403 (org_id is system admin only), got %s" % r)
    ck(SRV.sql("SELECT count(*) FROM users WHERE name='u-sneak'")[0][0] == 0, "u-sneak was created")
    # organisation admin B: no organisation list, nothing of org 1
    ck_err(adb.get("/api/orgs"), 403, "org admin lists orgs")
    ck_err(adb.post("/api/orgs", {"name": "org-c"}), 403, "org admin creates an org")
    ck_err(adb.get("/api/orgs/1"), 404, "org admin reads org 1")
    ck_err(adb.patch("/api/orgs/1", {"retention_raw_days": 1}), 404, "org admin patches org 1")
    j = ok_json(adb.get("/api/orgs/%s" % ob), 200, "org admin reads own org")
    ck(j.get("id") == ob and j.get("name") == "org-b", "own org: %s" % j)
    r = adb.get("/api/users")
    j = ok_json(r, 200, "org admin lists users")
    names = sorted(u.get("name") for u in j.get("users", []))
    ck(names == ["admin-b", "operator-b", "viewer-b"], "admin-b sees users %s" % names)
    r = adb.get("/api/users?org_id=1")
    ck(r.status != 200 or all(u.get("org_id") == ob for u in (r.json or {}).get("users", [])),
       "admin-b sees org 1's users with ?org_id=1: %s" % r)
    j = ok_json(adb.patch("/api/users/%s" % ids["viewer-b"], {"disabled": False}), 200, "org admin patches its user")
    ck(j.get("name") == "viewer-b" and j.get("disabled") is False, "patched user: %s" % j)
    ck_err(adb.get("/api/users/%s" % ids["admin"]), 404, "org admin reads a user of org 1")
    ck_err(adb.patch("/api/users/%s" % ids["operator-a"], {"role": "viewer"}), 404, "org admin patches a user of org 1")
    ck_err(adb.delete("/api/users/%s" % ids["viewer-a"]), 404, "org admin deletes a user of org 1")
    ck(SRV.sql("SELECT role FROM users WHERE name='operator-a'") == [("operator",)], "operator-a changed by admin-b")
    # system admin: own users by default, org B's with ?org_id
    j = ok_json(adm.get("/api/users"), 200, "system admin lists users")
    names = sorted(u.get("name") for u in j.get("users", []))
    ck(names == ["admin", "operator-a", "viewer-a"], "system admin's default user list: %s" % names)
    j = ok_json(adm.get("/api/users?org_id=%s" % ob), 200, "system admin lists org B's users")
    names = sorted(u.get("name") for u in j.get("users", []))
    ck(names == ["admin-b", "operator-b", "viewer-b"], "system admin ?org_id=B: %s" % names)
    j = ok_json(adm.get("/api/users/%s" % ids["viewer-b"]), 200, "system admin reads a user of org B")
    ck(j.get("name") == "viewer-b" and j.get("org_id") == ob, "user: %s" % j)
    j = ok_json(adm.get("/api/orgs/%s" % ob), 200, "system admin reads org B")


# 4 ----------------------------------------------------------------------------------------------
def s_tokens():
    adm, opa = S["admin"], S["operator-a"]
    r = adm.post("/api/tokens", {"name": "ci"})
    j = ok_json(r, 201, "create token")
    tok = j.get("token", "")
    ck(isinstance(tok, str) and tok.startswith("st_") and len(tok) >= 24, "token value: %s" % r)
    ck(isinstance(j.get("prefix"), str) and tok.startswith(j.get("prefix", "-")) and len(j["prefix"]) < len(tok)
       and j["prefix"].startswith("st_"), "token prefix: %s" % r)
    ck(j.get("name") == "ci" and isinstance(j.get("id"), int) and j.get("expires_at") is None
       and is_iso(j.get("created_at")), "token answer: %s" % r)
    tid = j.get("id")
    rows = SRV.sql("SELECT hash FROM api_tokens WHERE id=?", tid)
    ck(rows == [(hashlib.sha256(tok.encode()).digest(),)], "token not stored as its SHA-256 digest: %s" % rows)
    r = adm.get("/api/tokens")
    j = ok_json(r, 200, "list tokens")
    ck(tok not in r.text, "the token value appears in the list: %s" % r)
    t = [x for x in j.get("tokens", []) if x.get("id") == tid]
    ck(len(t) == 1 and "token" not in t[0] and t[0].get("prefix") and tok.startswith(t[0]["prefix"])
       and t[0].get("last_used") is None, "token in the list: %s" % r)
    bearer = Client("admin-token", token=tok)
    j = ok_json(bearer.get("/api/session"), 200, "GET /api/session with the token")
    ck((j.get("user") or {}).get("name") == "admin", "token's user: %s" % j)
    ck_status(bearer.get("/api/devices"), 200, "GET /api/devices with the token")
    j = ok_json(adm.get("/api/tokens"), 200, "list tokens after use")
    t = [x for x in j.get("tokens", []) if x.get("id") == tid]
    ck(t and is_iso(t[0].get("last_used")), "last_used not set after use: %s" % t)
    r = adm.post("/api/tokens", {"name": "short", "expires_days": 1})
    j = ok_json(r, 201, "create token with expires_days")
    exp = j.get("expires_at")
    ck(is_iso(exp) and abs(iso2s(exp) - (time.time() + 86400)) < 120, "expires_at of a 1-day token: %s" % r)
    ck_err(adm.post("/api/tokens", {"name": 5}), 400, "token name of wrong type", "name")
    ck_err(adm.post("/api/tokens", {"name": "x", "expires_days": -1}), 400, "negative expires_days", "expires_days")
    ck_err(adm.post("/api/tokens", {"name": "x", "expires_days": "soon"}), 400, "expires_days of wrong type",
           "expires_days")
    # another user's token: 404 for revocation, never listed
    j = ok_json(opa.post("/api/tokens", {"name": "ops"}), 201, "operator-a creates a token")
    otok, oid = j.get("token"), j.get("id")
    S["operator-a-token"] = otok
    ck_err(adm.delete("/api/tokens/%s" % oid), 404, "admin revokes operator-a's token")
    ck_err(S["viewer-b"].delete("/api/tokens/%s" % oid), 404, "viewer-b revokes operator-a's token")
    ck(all(x.get("id") != oid for x in ok_json(adm.get("/api/tokens"), 200, "list").get("tokens", [])),
       "admin's list shows operator-a's token")
    ck_status(Client("opa-token", token=otok).get("/api/devices"), 200, "operator-a's token after the attempts")
    # expiry: the rows say so, the next request is refused
    j = ok_json(adm.post("/api/tokens", {"name": "old"}), 201, "create a token to expire")
    sql_write("UPDATE api_tokens SET expires_at=? WHERE id=?", int(time.time()) - 5, j.get("id"))
    ck_err(Client("expired-token", token=j.get("token")).get("/api/session"), 401, "expired token")
    r, c = login("viewer-a", "pw-viewer-a-123")
    sql_write("UPDATE sessions SET expires_at=? WHERE id=(SELECT max(id) FROM sessions WHERE user_id=?)",
              int(time.time()) - 5, S["ids"]["viewer-a"])  # the session just opened, not S["viewer-a"]'s
    ck_err(Client("expired-session", cookie=c).get("/api/session"), 401, "expired session")
    ck_status(S["viewer-a"].get("/api/session"), 200, "viewer-a's other session after one expired")
    # revoke
    ck_status(adm.delete("/api/tokens/%s" % tid), 204, "revoke token")
    ck_err(bearer.get("/api/session"), 401, "revoked token")
    ck_err(bearer.get("/api/devices"), 401, "revoked token on /api/devices")
    ck(all(x.get("id") != tid for x in ok_json(adm.get("/api/tokens"), 200, "list").get("tokens", [])),
       "revoked token still listed")
    ck_err(adm.delete("/api/tokens/%s" % tid), 404, "revoke twice")
    ck_err(adm.delete("/api/tokens/999999"), 404, "revoke unknown token")


# 5 ----------------------------------------------------------------------------------------------
def s_devices():
    op, vw, adm = S["operator-a"], S["viewer-a"], S["admin"]
    full = {"uid": "CRUD-0001", "name": "Trailer 7", "model": "JT709A", "asset": "TR-7", "group": "north",
            "notes": "n1", "tz_offset_min": 60, "dialect": "standard"}
    r = op.post("/api/devices", full)
    j = ok_json(r, 201, "create device")
    for k, v in full.items():
        ck(j.get(k) == v, "created device %s=%r, want %r: %s" % (k, j.get(k), v, r))
    ck(isinstance(j.get("id"), int) and j.get("org_id") == 1 and j.get("state") is None
       and is_iso(j.get("created_at")) and "protocol" in j, "created device: %s" % r)
    did = j.get("id")
    ck_err(op.post("/api/devices", {"uid": "CRUD-0001"}), 409, "duplicate device uid")
    ck_err(S["admin-b"].post("/api/devices", {"uid": "CRUD-0001"}), 409, "duplicate device uid from org B")
    j = ok_json(vw.get("/api/devices/%s" % did), 200, "viewer gets the device")
    ck(j.get("uid") == "CRUD-0001" and j.get("name") == "Trailer 7", "GET device: %s" % j)
    j = ok_json(vw.get("/api/devices?uid=CRUD-0001"), 200, "list ?uid=")
    ck([d.get("id") for d in j.get("devices", [])] == [did] and j.get("next") is None, "list ?uid=: %s" % j)
    j = ok_json(vw.get("/api/devices?group=north"), 200, "list ?group=")
    ck(did in [d.get("id") for d in j.get("devices", [])]
       and all(d.get("group") == "north" for d in j.get("devices", [])),
       "list ?group=north: %s" % j)
    r = op.patch("/api/devices/%s" % did, {"name": "Trailer 8", "group": "south", "notes": None})
    j = ok_json(r, 200, "patch device")
    ck(j.get("name") == "Trailer 8" and j.get("group") == "south" and j.get("notes") is None
       and j.get("asset") == "TR-7" and j.get("uid") == "CRUD-0001", "patched device: %s" % r)
    j = ok_json(vw.get("/api/devices/%s" % did), 200, "get after patch")
    ck(j.get("name") == "Trailer 8" and j.get("group") == "south" and j.get("notes") is None, "GET after patch: %s" % j)
    ck_err(op.patch("/api/devices/%s" % did, {"uid": "OTHER"}), 400, "patch uid", "uid")
    ck_err(op.patch("/api/devices/%s" % did, {"org_id": S["org_b"]}), 403, "operator moves a device to org B")
    # viewer writes
    ck_err(vw.post("/api/devices", {"uid": "VIEW-1"}), 403, "viewer POST device")
    ck_err(vw.patch("/api/devices/%s" % did, {"name": "x"}), 403, "viewer PATCH device")
    ck_err(vw.delete("/api/devices/%s" % did), 403, "viewer DELETE device")
    # validation
    ck_err(op.post("/api/devices", raw='{"uid": "BAD-1",'), 400, "malformed JSON")
    ck_err(op.post("/api/devices", raw='["BAD-1"]'), 400, "array instead of object")
    ck_err(op.post("/api/devices", {"uid": "BAD-1", "name": 5}), 400, "name: 5", "name")
    ck_err(op.post("/api/devices", {"uid": 794300000999}), 400, "uid as number", "uid")
    ck_err(op.post("/api/devices", {"uid": "BAD-1", "tz_offset_min": "x"}), 400, "tz_offset_min as string",
           "tz_offset_min")
    ck_err(op.post("/api/devices", {"uid": "BAD-1", "colour": "red"}), 400, "unknown field", "colour")
    ck_err(op.post("/api/devices", {"name": "no uid"}), 400, "device without uid", "uid")
    ck_err(op.post("/api/devices", {"uid": ""}), 400, "empty uid", "uid")
    ck_err(op.post("/api/devices", {"uid": "BAD-1", "dialect": "martian"}), 400, "unknown dialect", "dialect")
    ck_err(op.patch("/api/devices/%s" % did, {"name": ["x"]}), 400, "patch name: list", "name")
    ck_err(op.patch("/api/devices/%s" % did, {"notes": 1.5}), 400, "patch notes: number", "notes")
    ck_err(op.post("/api/devices", raw="uid=BAD-1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
           415, "form body")
    ck_err(op.post("/api/devices", raw='{"uid": "BAD-1"}', headers={"Content-Type": "text/plain"}), 415,
           "JSON body as text/plain")
    j = ok_json(op.post("/api/devices", raw='{"uid": "CHARSET-1"}',
                        headers={"Content-Type": "application/json; charset=utf-8"}), 201, "JSON with charset")
    ck_status(op.delete("/api/devices/%s" % j.get("id")), 204, "delete CHARSET-1")
    ck_err(vw.get("/api/devices?limit=1001"), 400, "device list limit=1001", "limit")
    ck_err(vw.get("/api/devices?limit=0"), 400, "device list limit=0", "limit")
    ck(SRV.sql("SELECT count(*) FROM devices WHERE uid LIKE 'BAD-%'")[0][0] == 0, "a rejected device was stored")
    big = b'{"uid":"BIG-1","notes":"' + b"x" * (2 << 20) + b'"}'
    head = ("POST /api/devices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
            % ("".join("%s: %s\r\n" % kv for kv in op.auth_headers().items()), len(big))).encode()
    r = raw_exchange(head, body=big)
    ck_err(r, 413, "2 MiB body")
    # routes and methods
    ck_err(vw.get("/api/nothing"), 404, "unknown route")
    ck_err(vw.get("/api/devices/%s/nothing" % did), 404, "unknown sub-route")
    ck_err(request("GET", "/nothing"), 404, "unknown route outside /api without credentials")
    r = op.req("PUT", "/api/devices", body={"uid": "PUT-1"})
    ck_err(r, 405, "PUT /api/devices")
    allow = {a.strip() for a in (r.h("allow") or "").split(",")}
    ck({"GET", "POST"} <= allow, "405 Allow header for /api/devices: %r" % r.h("allow"))
    r = op.post("/api/devices/%s" % did, {"name": "x"})
    ck_err(r, 405, "POST /api/devices/{id}")
    allow = {a.strip() for a in (r.h("allow") or "").split(",")}
    ck({"GET", "PATCH", "DELETE"} <= allow, "405 Allow header for /api/devices/{id}: %r" % r.h("allow"))
    r = request("DELETE", "/api/health")
    ck_err(r, 405, "DELETE /api/health")
    ck("GET" in (r.h("allow") or ""), "405 Allow for /api/health: %r" % r.h("allow"))
    # list pagination
    made = []
    for i in range(5):
        j = ok_json(op.post("/api/devices", {"uid": "PAGE-%d" % i, "group": "paging"}), 201, "create PAGE-%d" % i)
        made.append(j.get("id"))
    rows, n, problems = pages(vw, "/api/devices?group=paging", "devices", 2)
    ck(not problems, "device list pages: %s" % problems)
    got = [d.get("id") for d in rows]
    ck(sorted(got) == sorted(made) and len(set(got)) == len(got) and n == 3,
       "device list ?group=paging&limit=2: ids %s in %d pages, want %s in 3" % (got, n, made))
    for d in made:
        ck_status(op.delete("/api/devices/%s" % d), 204, "delete PAGE device")
    # delete
    ck_status(op.delete("/api/devices/%s" % did), 204, "delete device")
    ck_err(vw.get("/api/devices/%s" % did), 404, "get deleted device")
    ck_err(op.delete("/api/devices/%s" % did), 404, "delete twice")
    ck_err(op.patch("/api/devices/%s" % did, {"name": "x"}), 404, "patch deleted device")
    j = ok_json(vw.get("/api/devices?uid=CRUD-0001"), 200, "list ?uid= after delete")
    ck(j.get("devices") == [], "deleted device still listed: %s" % j)
    ck(SRV.sql("SELECT count(*) FROM devices WHERE uid='CRUD-0001'")[0][0] == 0, "deleted device still in the DB")


# 6 ----------------------------------------------------------------------------------------------
def s_data():
    op, vw, adb = S["operator-a"], S["viewer-a"], S["admin-b"]
    dev = S["dev"] = {}
    for i, uid in enumerate(("794300000001", "794300000002")):
        j = ok_json(op.post("/api/devices", {"uid": uid, "name": "A%d" % (i + 1), "group": "sim"}), 201,
                    "create sim device " + uid)
        dev["A%d" % (i + 1)] = (j.get("id"), uid)
    j = ok_json(adb.post("/api/devices", {"uid": "794300000101", "name": "B1"}), 201, "admin-b creates B1")
    ck(j.get("org_id") == S["org_b"], "B1 not in org B: %s" % j)
    dev["B1"] = (j.get("id"), "794300000101")
    rc, summ, err = SRV.sim("--devices", "2", "--reports", str(REPORTS))
    ck(summ.get("replies_missing") == 0 and summ.get("replies_wrong") == 0, "sim org A: %s" % summ)
    rc, summ, err = SRV.sim("--id-base", "794300000101", "--devices", "1", "--reports", str(REPORTS))
    ck(summ.get("replies_missing") == 0 and summ.get("replies_wrong") == 0, "sim org B: %s" % summ)
    ck(SRV.sql("SELECT uid, org_id FROM devices WHERE uid LIKE '7943000001%' OR uid LIKE '79430000000%' ORDER BY uid")
       == [("794300000001", 1), ("794300000002", 1), ("794300000101", S["org_b"])],
       "sim devices' organisations: %s" % SRV.sql("SELECT uid, org_id FROM devices"))
    a1, u1 = dev["A1"]
    # latest state; the sim has disconnected
    end, j = time.time() + 3, {}
    while time.time() < end:
        j = ok_json(vw.get("/api/devices/%s" % a1), 200, "get A1")
        if (j.get("state") or {}).get("connected") is False:
            break
        time.sleep(0.1)
    st = j.get("state") or {}
    last_lat, last_lon = 22.5 + (REPORTS - 1) * 0.0005, 113.9 + (REPORTS - 1) * 0.0005
    ck(st.get("connected") is False, "A1 state.connected after the sim left: %s" % j)
    ck(abs((st.get("lat") or 0) - last_lat) < 1e-5 and abs((st.get("lon") or 0) - last_lon) < 1e-5,
       "A1 latest lat/lon %s,%s want %f,%f" % (st.get("lat"), st.get("lon"), last_lat, last_lon))
    ck(st.get("battery_pct") == 15 and st.get("lock_state") == "locked" and st.get("protocol") == "jt808"
       and st.get("transport") == "tcp" and is_iso(st.get("last_seen")) and is_iso(st.get("fix_time"))
       and st.get("valid") is True, "A1 latest state: %s" % st)
    ck(j.get("protocol") == "jt808", "A1 device protocol: %s" % j)
    db_fix = SRV.sql("SELECT fix_time FROM device_state WHERE device_id=?", a1)
    ck(db_fix and iso2s(st.get("fix_time", "1970-01-01T00:00:00Z")) == db_fix[0][0],
       "A1 state fix_time %s vs DB %s" % (st.get("fix_time"), db_fix))
    j = ok_json(vw.get("/api/devices"), 200, "viewer-a lists devices")
    listed = {d.get("uid"): d for d in j.get("devices", [])}
    ck(set(listed) == {"794300000001", "794300000002"}, "viewer-a's device list: %s" % sorted(listed))
    ck(all(d.get("state") for d in listed.values()), "listed devices without state: %s" % j)
    # positions, JSON, 7 per page
    db = SRV.sql("SELECT id, fix_time, lat, lon, valid FROM positions WHERE device_id=? ORDER BY fix_time, id", a1)
    ck(len(db) == REPORTS, "A1 has %d positions in the DB, want %d" % (len(db), REPORTS))
    rows, n, problems = pages(vw, "/api/devices/%s/positions" % a1, "positions", 7)
    ck(not problems, "positions pages: %s" % problems)
    ids = [p.get("id") for p in rows]
    ck(len(rows) == len(db), "positions via pages: %d, DB %d" % (len(rows), len(db)))
    ck(n == math.ceil(len(db) / 7) or n == math.ceil(len(db) / 7) + 1, "positions took %d pages of 7" % n)
    ck(all(a < b for a, b in zip(ids, ids[1:])), "position ids not strictly increasing: %s" % ids)
    ck(ids == [d[0] for d in db], "position ids %s differ from the DB %s" % (ids[:10], [d[0] for d in db][:10]))
    times = [iso2s(p["time"]) for p in rows]
    ck(times == [d[1] for d in db], "position times differ from the DB")
    p0 = rows[0] if rows else {}
    ck(all(k in p0 for k in ("id", "device", "time", "recv_time", "valid", "lat", "lon", "altitude", "speed_kmh",
                             "course", "satellites", "battery_pct", "protocol", "fix", "lock_state", "attrs")),
       "position row keys: %s" % sorted(p0))
    ck(p0.get("device") == u1 and p0.get("valid") is True and p0.get("protocol") == "jt808"
       and abs(p0.get("speed_kmh", 0) - 92.6) < 0.05 and p0.get("satellites") == 9 and isinstance(p0.get("attrs"), dict)
       and is_iso(p0.get("recv_time")), "first position: %s" % p0)
    # CSV (and its pages by X-Next-Cursor)
    r = vw.get("/api/devices/%s/positions?format=csv" % a1)
    ck_status(r, 200, "positions CSV")
    ck((r.h("content-type") or "").startswith("text/csv"), "CSV Content-Type %r" % r.h("content-type"))
    table = list(csv.reader(io.StringIO(r.text)))
    ck(table and table[0] == POS_COLUMNS, "CSV header %s, want %s" % (table[:1], POS_COLUMNS))
    ck(len(table) - 1 == len(db), "CSV rows %d, want %d" % (len(table) - 1, len(db)))
    if len(table) > 1 and table[0] == POS_COLUMNS:
        ck([int(x[0]) for x in table[1:]] == ids, "CSV ids differ from JSON")
        ck(all(abs(float(x[5]) - p["lat"]) < 1e-6 and abs(float(x[6]) - p["lon"]) < 1e-6
               for x, p in zip(table[1:], rows)), "CSV lat/lon differ from JSON")
    n_csv, cursor, pages_csv = 0, None, 0
    while pages_csv < 20:
        r = vw.get("/api/devices/%s/positions?format=csv&limit=7" % a1 + ("&cursor=%s" % cursor if cursor else ""))
        pages_csv += 1
        if not ck_status(r, 200, "CSV page"):
            break
        n_csv += len(list(csv.reader(io.StringIO(r.text)))) - 1
        cursor = r.h("x-next-cursor")
        if not cursor:
            break
    ck(n_csv == len(db) and pages_csv in (math.ceil(len(db) / 7), math.ceil(len(db) / 7) + 1),
       "CSV via X-Next-Cursor: %d rows in %d pages, want %d" % (n_csv, pages_csv, len(db)))
    # GPX
    r = vw.get("/api/devices/%s/positions?format=gpx" % a1)
    ck_status(r, 200, "positions GPX")
    try:
        root = ET.fromstring(r.body)
        ck(root.tag == GPX_NS + "gpx" and root.get("version") == "1.1", "GPX root %s %s" % (root.tag, root.attrib))
        pts = root.findall(".//%strkpt" % GPX_NS)
        valid = sum(1 for d in db if d[4])
        ck(len(pts) == valid, "GPX trkpt %d, want %d valid positions" % (len(pts), valid))
        ck(all(abs(float(pt.get("lat")) - d[2]) < 1e-6 and abs(float(pt.get("lon")) - d[3]) < 1e-6
               for pt, d in zip(pts, db)), "GPX lat/lon differ from the DB")
        tms = [pt.find(GPX_NS + "time") for pt in pts]
        ck(all(t is not None and iso2s(t.text) == d[1] for t, d in zip(tms, db)), "GPX times differ from the DB")
    except ET.ParseError as e:
        ck(False, "GPX does not parse (%s): %s" % (e, r))
    # GeoJSON
    r = vw.get("/api/devices/%s/positions?format=geojson" % a1)
    ck_status(r, 200, "positions GeoJSON")
    gj = r.json or {}
    feats = gj.get("features", [])
    ck(gj.get("type") == "FeatureCollection" and len(feats) == len(rows), "GeoJSON: %d features: %s" % (len(feats), r))
    ck(all(f.get("type") == "Feature" and f.get("geometry", {}).get("type") == "Point"
           and abs(f["geometry"]["coordinates"][0] - p["lon"]) < 1e-6
           and abs(f["geometry"]["coordinates"][1] - p["lat"]) < 1e-6 for f, p in zip(feats, rows)),
       "GeoJSON coordinates are not [lon, lat] of the JSON rows: %s" % feats[:1])
    # from / to
    t = [d[1] for d in db]
    frm, to = t[10] - 15, t[19] + 15
    j = ok_json(vw.get("/api/devices/%s/positions?from=%s&to=%d" % (a1, s2iso(frm), to)), 200, "positions from/to")
    got = [iso2s(p["time"]) for p in j.get("positions", [])]
    ck(got == t[10:20], "positions from %s to %d: %d rows, want 10" % (s2iso(frm), to, len(got)))
    ck_err(vw.get("/api/devices/%s/positions?from=%d&to=%d" % (a1, t[20], t[10])), 400, "to before from", "to")
    ck_err(vw.get("/api/devices/%s/positions?from=yesterday" % a1), 400, "garbage from", "from")
    ck_err(vw.get("/api/devices/%s/positions?to=2026-02-30T25:00:00Z" % a1), 400, "impossible to", "to")
    for lim in ("0", "abc", "100000", "-1", "1001"):
        ck_err(vw.get("/api/devices/%s/positions?limit=%s" % (a1, lim)), 400, "JSON limit=%s" % lim, "limit")
    ck_status(vw.get("/api/devices/%s/positions?limit=1000" % a1), 200, "JSON limit=1000")
    ck_status(vw.get("/api/devices/%s/positions?format=csv&limit=100000" % a1), 200, "CSV limit=100000")
    ck_err(vw.get("/api/devices/%s/positions?format=csv&limit=100001" % a1), 400, "CSV limit=100001", "limit")
    # events
    dbev = dict(SRV.sql("SELECT type, count(*) FROM events WHERE device_id=? GROUP BY type", a1))
    ck(dbev.get("unlock") == 4 and dbev.get("lock") == 4 and dbev.get("tamper") == 1 and dbev.get("low_battery") == 1,
       "the sim's events in the DB: %s" % dbev)
    allev, _, problems = pages(vw, "/api/events?device=%s" % a1, "events", 3)
    ck(not problems, "events pages: %s" % problems)
    ck(len(allev) == sum(dbev.values()), "events of A1: %d, DB %d" % (len(allev), sum(dbev.values())))
    evids = [e.get("id") for e in allev]
    ck(all(a < b for a, b in zip(evids, evids[1:])), "event ids not increasing: %s" % evids)
    for typ in ("unlock", "lock", "tamper", "low_battery"):
        j = ok_json(vw.get("/api/events?device=%s&type=%s" % (a1, typ)), 200, "events type=" + typ)
        evs = j.get("events", [])
        ck(len(evs) == dbev.get(typ, 0) and all(e.get("type") == typ for e in evs),
           "events type=%s: %d (%s), DB %d" % (typ, len(evs), sorted({e.get("type") for e in evs}), dbev.get(typ, 0)))
        if typ == "unlock" and evs:
            e = evs[0]
            # JT/T 808 unlock items carry no granted flag (null); never false for a done unlock
            ck(e.get("source") == "rfid" and e.get("card") == "0006437000" and e.get("granted") in (None, True)
               and e.get("device") == u1 and is_iso(e.get("time")) and e.get("lat") is not None,
               "unlock event: %s" % e)
        if typ == "tamper" and evs:
            ck(evs[0].get("reason") == "rope_cut", "tamper event: %s" % evs[0])
    j = ok_json(vw.get("/api/events?device=%s&from=%d&to=%s" % (a1, t[10] - 15, s2iso(t[19] + 15))), 200,
                "events from/to")
    want = SRV.sql("SELECT id FROM events WHERE device_id=? AND time>=? AND time<=? ORDER BY time, id",
                   a1, t[10] - 15, t[19] + 15)
    ck([e.get("id") for e in j.get("events", [])] == [w[0] for w in want],
       "events from/to: %s, want ids %s" % ([e.get("id") for e in j.get("events", [])], [w[0] for w in want]))
    ck_err(vw.get("/api/events?from=%d&to=%d" % (t[20], t[10])), 400, "events to before from", "to")
    j = ok_json(vw.get("/api/events?limit=1000"), 200, "all events of org A")
    n_org = SRV.sql("SELECT count(*) FROM events e JOIN devices d ON d.id=e.device_id WHERE d.org_id=1")[0][0]
    ck(len(j.get("events", [])) == n_org, "events of org A: %d, DB %d" % (len(j.get("events", [])), n_org))
    r = vw.get("/api/events?device=%s&format=csv" % a1)
    ck_status(r, 200, "events CSV")
    ev_csv = list(csv.DictReader(io.StringIO(r.text)))
    ck(len(ev_csv) == sum(dbev.values()) and ev_csv and "type" in ev_csv[0],
       "events CSV: %d rows, columns %s" % (len(ev_csv), list(ev_csv[0]) if ev_csv else None))
    # raw frames, newest first
    dbraw = {i: (bytes(b), st) for i, b, st in SRV.sql("SELECT id, raw, status FROM raw_frames WHERE device_id=?", a1)}
    frames, _, problems = pages(vw, "/api/devices/%s/raw" % a1, "frames", 10)
    ck(not problems, "raw pages: %s" % problems)
    fids = [f.get("id") for f in frames]
    ck(len(frames) == len(dbraw) and len(set(fids)) == len(fids), "raw frames %d, DB %d" % (len(frames), len(dbraw)))
    ck(all(a > b for a, b in zip(fids, fids[1:])), "raw frames not newest first: %s" % fids[:12])
    bad = [f for f in frames if f.get("id") not in dbraw or bytes.fromhex(f.get("hex", "zz")) != dbraw[f["id"]][0]]
    ck(not bad, "raw hex differs from the DB: %s" % bad[:2])
    n7e = sum(1 for f in frames if bytes.fromhex(f.get("hex", ""))[:1] == b"\x7e")
    ck(n7e >= REPORTS + 3, "raw frames starting with 0x7e: %d, want >= %d" % (n7e, REPORTS + 3))
    ck(frames and all(f.get("protocol") == "jt808" and f.get("transport") == "tcp" and is_iso(f.get("time"))
                      and isinstance(f.get("status"), str) for f in frames), "raw frame fields: %s" % frames[:1])
    ck(all(f.get("decoded") is None or isinstance(f.get("decoded"), (dict, list)) for f in frames)
       and any(f.get("decoded") for f in frames), "raw frames' decoded JSON: %s" % frames[:1])
    # reports
    r = vw.get("/api/devices/%s/reports/route?format=gpx" % a1)
    ck_status(r, 200, "route GPX")
    try:
        root = ET.fromstring(r.body)
        n_pts = len(root.findall(".//%strkpt" % GPX_NS)) + len(root.findall(".//%srtept" % GPX_NS))
        ck(n_pts == len(db), "route GPX points %d, want %d" % (n_pts, len(db)))
    except ET.ParseError as e:
        ck(False, "route GPX does not parse (%s): %s" % (e, r))
    r = vw.get("/api/devices/%s/reports/route?format=geojson" % a1)
    gj = ok_json(r, 200, "route GeoJSON")
    feats = gj.get("features") if gj.get("type") == "FeatureCollection" else [gj]
    coords = []
    for f in feats or []:
        g = (f or {}).get("geometry") or f or {}
        if g.get("type") == "LineString":
            coords += g.get("coordinates", [])
        elif g.get("type") == "Point":
            coords.append(g.get("coordinates"))
    ck(len(coords) == len(db) and coords and abs(coords[0][0] - db[0][3]) < 1e-6
       and abs(coords[0][1] - db[0][2]) < 1e-6,
       "route GeoJSON: %d coordinates, want %d [lon,lat]: %s" % (len(coords), len(db), r))
    r = vw.get("/api/devices/%s/reports/route?format=csv" % a1)
    ck_status(r, 200, "route CSV")
    ck(len(list(csv.reader(io.StringIO(r.text)))) - 1 == len(db), "route CSV rows: %s" % r)
    r = vw.get("/api/devices/%s/reports/trips" % a1)
    j = ok_json(r, 200, "trips")
    trips = j.get("trips", [])
    dist = sum(haversine(a[2], a[3], b[2], b[3]) for a, b in zip(db, db[1:]))
    ck(j.get("device") == u1 and len(trips) == 1, "trips of a constant 92.6 km/h drive: want 1: %s" % r)
    if trips:
        tr = trips[0]
        ck(iso2s(tr["start_time"]) == t[0] and iso2s(tr["end_time"]) == t[-1]
           and tr.get("duration_s") == t[-1] - t[0] and abs(tr.get("distance_m", 0) - dist) < 0.02 * dist
           and abs(tr.get("max_speed_kmh", 0) - 92.6) < 0.1 and abs(tr.get("start_lat", 0) - db[0][2]) < 1e-6
           and abs(tr.get("end_lon", 0) - db[-1][3]) < 1e-6,
           "trip %s; want %s..%s, %.0f m" % (tr, s2iso(t[0]), s2iso(t[-1]), dist))
    j = ok_json(vw.get("/api/devices/%s/reports/stops" % a1), 200, "stops")
    ck(j.get("device") == u1 and j.get("stops") == [], "stops of a drive without stops: %s" % j)
    slow = "stop_speed_kmh=100&min_stop_s=60&min_trip_m=100000"  # the whole drive is one stop
    j = ok_json(vw.get("/api/devices/%s/reports/stops?%s" % (a1, slow)), 200, "stops < 100 km/h")
    sp = j.get("stops", [])
    ck(len(sp) == 1 and sp[0].get("duration_s") == t[-1] - t[0], "stops with stop_speed_kmh=100: %s" % j)
    j = ok_json(vw.get("/api/devices/%s/reports/trips?%s" % (a1, slow)), 200,
                "trips < 100 km/h")
    ck(j.get("trips") == [], "trips with stop_speed_kmh=100 (all stopped): %s" % j)
    r = vw.get("/api/devices/%s/reports/trips?format=csv" % a1)
    ck_status(r, 200, "trips CSV")
    ck(len(list(csv.reader(io.StringIO(r.text)))) == 2, "trips CSV: header + 1 row: %s" % r)
    j = ok_json(vw.get("/api/devices/%s/reports/summary" % a1), 200, "summary")
    ck(j.get("device") == u1 and j.get("positions") == len(db) and is_iso(j.get("from")) and is_iso(j.get("to")),
       "summary: %s" % j)
    ck(j.get("events") == dbev, "summary events %s, DB %s" % (j.get("events"), dbev))
    ck(j.get("first_fix") and iso2s(j["first_fix"]) == t[0] and iso2s(j.get("last_fix", s2iso(0))) == t[-1],
       "summary first/last fix %s %s, want %s %s" % (j.get("first_fix"), j.get("last_fix"), s2iso(t[0]), s2iso(t[-1])))
    ck(abs(j.get("distance_m", 0) - dist) < 0.02 * dist, "summary distance %s, want %.0f" % (j.get("distance_m"), dist))
    j = ok_json(vw.get("/api/devices/%s/reports/summary?from=%d&to=%d" % (a1, frm, to)), 200, "summary from/to")
    want = dict(SRV.sql("SELECT type, count(*) FROM events WHERE device_id=? AND time>=? AND time<=? GROUP BY type",
                        a1, frm, to))
    ck(j.get("positions") == 10 and j.get("events") == want, "summary of 10 reports: %s, want events %s" % (j, want))


# 7 ----------------------------------------------------------------------------------------------
def s_isolation():
    a1, u1 = S["dev"]["A1"]
    b1, ub1 = S["dev"]["B1"]
    for who in ("viewer-b", "admin-b"):
        c = S[who]
        for m, p in (("GET", "/api/devices/%s" % a1), ("PATCH", "/api/devices/%s" % a1),
                     ("DELETE", "/api/devices/%s" % a1), ("GET", "/api/devices/%s/positions" % a1),
                     ("GET", "/api/devices/%s/positions?format=csv" % a1), ("GET", "/api/devices/%s/raw" % a1),
                     ("GET", "/api/devices/%s/reports/route" % a1), ("GET", "/api/devices/%s/reports/trips" % a1),
                     ("GET", "/api/devices/%s/reports/stops" % a1), ("GET", "/api/devices/%s/reports/summary" % a1),
                     ("GET", "/api/events?device=%s" % a1)):
            body = {"name": "stolen"} if m == "PATCH" else None
            want = 404 if who == "admin-b" or m == "GET" else (403, 404)
            ck_err(c.req(m, p, body=body), want, "%s: %s %s of org A's device" % (who, m, p))
        st = Stream(c, "/api/stream?device=%s" % a1)
        ck(st.status == 404, "%s: GET /api/stream?device=<A's device>: want 404, got %s" % (who, st.head_text))
        st.close()
    ck(SRV.sql("SELECT name FROM devices WHERE id=?", a1) == [("A1",)], "org A's device changed by org B")
    j = ok_json(S["viewer-b"].get("/api/devices"), 200, "viewer-b lists devices")
    ck([d.get("uid") for d in j.get("devices", [])] == [ub1], "viewer-b's devices: %s" % j)
    j = ok_json(S["viewer-b"].get("/api/devices?uid=%s" % u1), 200, "viewer-b lists ?uid= of A's device")
    ck(j.get("devices") == [], "viewer-b finds A's device by uid: %s" % j)
    j = ok_json(S["viewer-b"].get("/api/events?limit=1000"), 200, "viewer-b events")
    evs = j.get("events", [])
    nb = SRV.sql("SELECT count(*) FROM events WHERE device_id=?", b1)[0][0]
    ck(len(evs) == nb and all(e.get("device") == ub1 for e in evs),
       "viewer-b's events: %d (devices %s), want %d of B1"
       % (len(evs), sorted({str(e.get("device")) for e in evs}), nb))
    j = ok_json(S["viewer-b"].get("/api/events?type=unlock"), 200, "viewer-b unlock events")
    ck(all(e.get("device") == ub1 for e in j.get("events", [])),
       "viewer-b sees unlocks of others: %s" % j)
    r = S["viewer-b"].get("/api/events?format=csv&limit=1000")
    ck_status(r, 200, "viewer-b events CSV")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    ck(len(rows) == nb and all(x.get("device") == ub1 for x in rows),
       "viewer-b events CSV: %d rows" % len(rows))
    npb = SRV.sql("SELECT count(*) FROM positions WHERE device_id=?", b1)[0][0]
    r = S["viewer-b"].get("/api/devices/%s/positions?format=csv" % b1)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    ck(r.status == 200 and len(rows) == npb and all(x.get("device") == ub1 for x in rows),
       "B1 positions CSV: %d rows, want %d, devices %s" % (len(rows), npb, sorted({x.get("device") for x in rows})))
    r = S["viewer-b"].get("/api/devices/%s/positions?format=gpx" % b1)
    try:
        pts = ET.fromstring(r.body).findall(".//%strkpt" % GPX_NS)
        lat0 = 22.5  # the sim's device index 0 of its run
        ck(len(pts) == npb and all(abs(float(p.get("lat")) - (lat0 + k * 0.0005)) < 1e-5 for k, p in enumerate(pts)),
           "B1 GPX: %d points, want %d of B1's track" % (len(pts), npb))
    except ET.ParseError as e:
        ck(False, "B1 GPX does not parse (%s): %s" % (e, r))
    j = ok_json(S["viewer-b"].get("/api/devices/%s/positions?format=geojson" % b1), 200, "B1 GeoJSON")
    ck(len(j.get("features", [])) == npb, "B1 GeoJSON features %d, want %d" % (len(j.get("features", [])), npb))
    # a device that registers itself lands in organisation 1
    SRV.sim("--id-base", "794300000201", "--devices", "1", "--reports", "2")
    j = ok_json(S["viewer-a"].get("/api/devices?uid=794300000201"), 200, "viewer-a finds the auto-registered device")
    auto = j.get("devices", [])
    ck(len(auto) == 1 and auto[0].get("org_id") == 1 and auto[0].get("protocol") == "jt808",
       "auto-registered device: %s" % j)
    j = ok_json(S["viewer-b"].get("/api/devices?uid=794300000201"), 200, "viewer-b looks for it")
    ck(j.get("devices") == [], "viewer-b sees the auto-registered device: %s" % j)
    # and org A does not see B1
    for c in (S["viewer-a"], S["operator-a"]):
        ck_err(c.get("/api/devices/%s" % b1), 404, "%s reads org B's device" % c.label)
        ck_err(c.get("/api/devices/%s/positions?format=geojson" % b1), 404, "%s reads org B's positions" % c.label)


# 8 ----------------------------------------------------------------------------------------------
def s_stream():
    a1, u1 = S["dev"]["A1"]
    b1, ub1 = S["dev"]["B1"]
    sa = Stream(S["viewer-a"])
    sb = Stream(S["viewer-b"])
    try:
        ck(sa.status == 200 and sa.headers.get("content-type", "").startswith("text/event-stream"),
           "stream answer: %s" % sa.head_text)
        ck(sb.status == 200, "org B stream answer: %s" % sb.head_text)
        org_a = {i for (i,) in SRV.sql("SELECT id FROM devices WHERE org_id=1")}
        sa.wait(lambda e: len({sid(x[2]) for x in sa.parsed("state")}) >= len(org_a), 3)
        time.sleep(0.3)
        states = sa.parsed("state")
        ck(states and all("device_id" in e[2] for e in states),
           "state events without \"device_id\" (docs/api.md: {\"device_id\":3,\"uid\":…}): %s" % states[:1])
        got = [sid(e[2]) for e in states]
        ck(sorted(got, key=str) == sorted(org_a, key=str),
           "initial state events of org A: %s, want %s" % (got, sorted(org_a)))
        s1 = [e[2] for e in states if sid(e[2]) == a1]
        lat = s1 and (s1[0].get("lat") if "lat" in s1[0] else (s1[0].get("state") or {}).get("lat"))
        ck(s1 and s1[0].get("uid") == u1 and s1[0].get("name") == "A1"
           and abs((lat or 0) - (22.5 + (REPORTS - 1) * 0.0005)) < 1e-5, "A1 initial state event: %s" % s1)
        gotb = [sid(e[2]) for e in sb.parsed("state")]
        ck(gotb == [b1], "initial state events of org B: %s, want [%s]" % (gotb, b1))
        r = S["admin"].get("/metrics")
        mm = re.search(r"(?m)^sealtrack_live_subscribers(?:\{\})? (\d+)", r.text)
        ck(mm and int(mm.group(1)) >= 2,
           "sealtrack_live_subscribers with two streams open: %s" % (mm.group(0) if mm else r))
        # a short run of A1
        t0 = time.time()
        box = {}

        def run():
            box["r"] = subprocess.run([BIN, "sim", "--host", "127.0.0.1", "--port", str(SRV.port), "--id-base",
                                       u1, "--devices", "1", "--reports", "3"],
                                      capture_output=True, text=True, timeout=60)
        th = threading.Thread(target=run)
        th.start()
        first = sa.wait(lambda e: e[1] == "report" and sid(e[2]) == a1, 5)
        th.join(60)
        ck(box.get("r") is not None and box["r"].returncode == 0, "stream sim run: %s" % box.get("r"))
        ck(first is not None, "no report event of A1 within 5 s of the sim's start")
        if first:
            lat = first[0] - t0
            print("  live stream: first report event %.0f ms after the sim started" % (lat * 1000))
            ck(lat < 2.0, "first report event %.2f s after the sim started (want < 2 s)" % lat)
            ck(first[2].get("uid") == u1 and isinstance(first[2].get("report"), dict),
               "first report event: %s" % first[2])
        gone = sa.wait(lambda e: e[1] == "status" and sid(e[2]) == a1 and e[2].get("connected") is False, 3)
        ck(gone is not None, "no status connected:false event for A1 after the sim left")
        reps = [e for e in sa.parsed("report") if sid(e[2]) == a1
                and (e[2].get("report") or {}).get("lat") is not None]
        ck(len(reps) == 3, "report events of A1 with a position: %d, want 3 (one per position report)" % len(reps))
        ck(reps and abs(reps[0][2]["report"]["lat"] - 22.5) < 1e-5 and reps[0][2]["report"].get("protocol") == "jt808",
           "first position report event: %s" % (reps[0][2] if reps else None))
        time.sleep(0.3)
        leaked = [e for e in sb.snapshot() if e[1] not in ("state", "comment")]
        ck(not leaked, "org B's stream got events of another organisation: %s" % leaked[:3])
        ck(not any(u1 in d for _, _, d in sb.snapshot()), "org B's stream mentions A1's uid")
        # ?device= filter
        sf = Stream(S["viewer-a"], "/api/stream?device=%s" % S["dev"]["A2"][0])
        sf.wait(lambda e: e[1] == "state", 3)
        time.sleep(0.2)
        ck([sid(e[2]) for e in sf.parsed("state")] == [S["dev"]["A2"][0]],
           "stream ?device=A2 states: %s" % sf.parsed("state"))
        sf.close()
    finally:
        sa.close()
        sb.close()


# 9 ----------------------------------------------------------------------------------------------
def s_retention():
    ob = S["org_b"]
    j = ok_json(S["operator-a"].post("/api/devices", {"uid": "794300000003", "name": "A3"}), 201, "create A3")
    a3 = j.get("id")
    j = ok_json(S["admin-b"].post("/api/devices", {"uid": "794300000102", "name": "B2"}), 201, "create B2")
    b2 = j.get("id")
    S["dev"]["A3"], S["dev"]["B2"] = (a3, "794300000003"), (b2, "794300000102")
    for base in ("794300000102", "794300000003"):
        SRV.sim("--id-base", base, "--devices", "1", "--reports", "5", "--start", "2020-01-01T00:00:00Z")
    old = time.time() - 30 * 86400
    # an old raw frame of each (arrival time is what raw retention looks at)
    st = SRV.sql("SELECT status FROM raw_frames LIMIT 1")[0][0]
    for d, uid in ((b2, "794300000102"), (a3, "794300000003")):
        sql_write("INSERT INTO raw_frames(device_id, device_uid, recv_time, protocol, transport, peer, status, raw)"
                " VALUES(?, ?, 1577836800, 'jt808', 'tcp', '127.0.0.1:1', ?, x'7e00027e')", d, uid, st)
    con_q = "SELECT count(*) FROM positions p JOIN devices d ON d.id=p.device_id WHERE d.org_id%s AND p.fix_time%s?"

    def counts():
        return {"b_old": SRV.sql(con_q % ("=?", "<"), ob, old)[0][0],
                "b_new": SRV.sql(con_q % ("=?", ">="), ob, old)[0][0],
                "a_old": SRV.sql(con_q % ("<>?", "<"), ob, old)[0][0],
                "a_all": SRV.sql("SELECT count(*) FROM positions p JOIN devices d ON d.id=p.device_id"
                                 " WHERE d.org_id<>?", ob)[0][0],
                "b_raw_old": SRV.sql("SELECT count(*) FROM raw_frames r JOIN devices d ON d.id=r.device_id"
                                     " WHERE d.org_id=? AND r.recv_time<?", ob, old)[0][0],
                "b_raw_new": SRV.sql("SELECT count(*) FROM raw_frames r JOIN devices d ON d.id=r.device_id"
                                     " WHERE d.org_id=? AND r.recv_time>=?", ob, old)[0][0],
                "a_raw": SRV.sql("SELECT count(*) FROM raw_frames r JOIN devices d ON d.id=r.device_id"
                                 " WHERE d.org_id<>?", ob)[0][0],
                "b2_events": SRV.sql("SELECT count(*) FROM events WHERE device_id=?", b2)[0][0]}
    before = counts()
    ck(before["b_old"] == 5 and before["a_old"] == 5 and before["b_new"] == REPORTS and before["b_raw_old"] == 1
       and before["b2_events"] > 0, "retention set-up: %s" % before)
    time.sleep(1.5)  # no retention configured yet: nothing goes
    ck(counts() == before, "rows deleted without retention: %s -> %s" % (before, counts()))
    r = S["admin-b"].patch("/api/orgs/%s" % ob, {"retention_positions_days": 30, "retention_raw_days": 30})
    j = ok_json(r, 200, "admin-b sets retention")
    ck(j.get("retention_positions_days") == 30 and j.get("retention_raw_days") == 30, "retention answer: %s" % r)
    r = S["admin-b"].patch("/api/orgs/%s" % ob, {"name": "renamed"})
    ck(r.status in (400, 403) and SRV.sql("SELECT name FROM orgs WHERE id=?", ob) == [("org-b",)],
       "org admin renames the org (system admin only): %s" % r)
    ck_err(S["operator-b"].patch("/api/orgs/%s" % ob, {"retention_raw_days": 1}), 403, "operator sets retention")
    t0 = time.time()
    end = t0 + 10
    now = counts()
    while time.time() < end and (now["b_old"] or now["b_raw_old"]):
        time.sleep(0.2)
        now = counts()
    print("  retention: old rows of org B gone after %.1f s" % (time.time() - t0))
    ck(now["b_old"] == 0, "org B's positions older than 30 days still there after 10 s: %s" % now)
    ck(now["b_raw_old"] == 0, "org B's raw frames older than 30 days still there after 10 s: %s" % now)
    for k in ("b_new", "a_old", "a_all", "b_raw_new", "a_raw", "b2_events"):
        ck(now[k] == before[k], "retention touched %s: %d -> %d" % (k, before[k], now[k]))
    j = ok_json(S["viewer-b"].get("/api/devices/%s/positions?from=2019-12-31T00:00:00Z&to=2020-01-02T00:00:00Z" % b2),
                200, "B2 positions of 2020")
    ck(j.get("positions") == [], "B2's 2020 positions via the API after retention: %s" % j)
    j = ok_json(S["viewer-a"].get("/api/devices/%s/positions?from=2019-12-31T00:00:00Z&to=2020-01-02T00:00:00Z" % a3),
                200, "A3 positions of 2020")
    ck(len(j.get("positions", [])) == 5, "A3's 2020 positions after org B's retention: %s" % j)
    j = ok_json(S["viewer-a"].get("/api/devices/%s/positions" % a3), 200, "A3 positions, default range")
    ck(j.get("positions") == [], "default range (last 24 h) shows 2020 positions: %s" % str(j)[:300])
    j = ok_json(S["admin"].patch("/api/orgs/%s" % ob, {"retention_positions_days": None}), 200, "retention null")
    ck(j.get("retention_positions_days") is None and j.get("retention_raw_days") == 30, "retention null: %s" % j)
    # deleting a device deletes its positions, events and raw frames
    ck_status(S["operator-a"].delete("/api/devices/%s" % a3), 204, "delete A3 with its data")
    left = {t: SRV.sql("SELECT count(*) FROM %s WHERE device_id=?" % t, a3)[0][0]
            for t in ("positions", "events", "raw_frames", "device_state")}
    ck(not any(left.values()), "rows of the deleted device A3 remain: %s" % left)
    del S["dev"]["A3"]


# 10 ---------------------------------------------------------------------------------------------
def s_bad_input():
    op, adm = S["operator-a"], S["admin"]
    a1 = S["dev"]["A1"][0]
    ob = S["org_b"]
    cases = [  # (client, method, path, json body or raw string, expected status or None (any 4xx))
        (op, "POST", "/api/devices", "{", 400),
        (op, "POST", "/api/devices", "[]", 400),
        (op, "POST", "/api/devices", "null", 400),
        (op, "POST", "/api/devices", '"uid"', 400),
        (op, "POST", "/api/devices", "", 400),
        (op, "POST", "/api/devices", '{"uid":"N-1","tz_offset_min":1e400}', 400),
        (op, "POST", "/api/devices", '{"uid":"N-2","tz_offset_min":99999999999999999999999999}', 400),
        (op, "POST", "/api/devices", '{"uid":"N-3","tz_offset_min":1.5}', 400),
        (op, "POST", "/api/devices", '{"uid":"N-4"} trailing', 400),
        (op, "POST", "/api/devices", '{"uid":' + "[" * 5000 + "]" * 5000 + "}", 400),
        (op, "POST", "/api/devices", b'{"uid":"\xff\xfe"}', 400),
        (op, "POST", "/api/devices", '{"uid":"N-5\\ud800"}', None),
        (op, "POST", "/api/devices", '{"uid":"' + "U" * 100000 + '"}', (201, 400)),
        (op, "PATCH", "/api/devices/%s" % a1, '{"name":', 400),
        (op, "PATCH", "/api/devices/%s" % a1, "[1,2]", 400),
        (adm, "PATCH", "/api/devices/%s" % a1, '{"org_id":"x"}', 400),
        (adm, "PATCH", "/api/devices/%s" % a1, '{"org_id":999999}', (400, 404)),
        (op, "GET", "/api/devices/-1", None, (400, 404)),
        (op, "GET", "/api/devices/abc", None, (400, 404)),
        (op, "GET", "/api/devices/99999999999999999999999", None, (400, 404)),
        (op, "GET", "/api/devices/1%00", None, (400, 404)),
        (op, "GET", "/api/devices/%2e%2e/%2e%2e/metrics", None, (400, 404)),
        (op, "GET", "/api/devices?cursor=-1", None, 400),
        (op, "GET", "/api/devices?cursor=abc", None, 400),
        (op, "GET", "/api/devices?limit=99999999999999999999999", None, 400),
        (op, "GET", "/api/devices?uid=%zz", None, 400),
        (op, "GET", "/api/devices/%s/positions?format=xml" % a1, None, 400),
        (op, "GET", "/api/devices/%s/positions?cursor=-1" % a1, None, 400),
        (op, "GET", "/api/devices/%s/positions?from=99999999999999999999" % a1, None, 400),
        (op, "GET", "/api/devices/%s/positions?from=2026-13-45T99:00:00Z" % a1, None, 400),
        (op, "GET", "/api/devices/%s/raw?cursor=-1" % a1, None, 400),
        (op, "GET", "/api/devices/%s/raw?limit=0" % a1, None, 400),
        (op, "GET", "/api/devices/%s/reports/trips?stop_speed_kmh=abc" % a1, None, 400),
        (op, "GET", "/api/devices/%s/reports/trips?min_stop_s=-5" % a1, None, 400),
        (op, "GET", "/api/devices/%s/reports/summary?format=xml" % a1, None, 400),
        (op, "GET", "/api/devices/%s/reports/nope" % a1, None, 404),
        (op, "GET", "/api/events?device=abc", None, (400, 404)),
        (op, "GET", "/api/events?format=pdf", None, 400),
        (op, "GET", "/api/events?cursor=-1", None, 400),
        (op, "POST", "/api/tokens", '{"name":"t","expires_days":1e309}', 400),
        (op, "POST", "/api/tokens", '{"name":"t","expires_days":99999999999999}', 400),
        (op, "POST", "/api/tokens", "[]", 400),
        (adm, "POST", "/api/users", '{"name":"u","password":"pw-123456","role":["admin"]}', 400),
        (adm, "POST", "/api/users", '{"name":"u","password":12345678,"role":"viewer"}', 400),
        (adm, "PATCH", "/api/users/%s" % S["ids"]["viewer-a"], '{"disabled":"yes"}', 400),
        (adm, "PATCH", "/api/orgs/%s" % ob, '{"retention_positions_days":-3}', 400),
        (adm, "PATCH", "/api/orgs/%s" % ob, '{"retention_raw_days":1e99}', 400),
        (adm, "GET", "/api/users?org_id=abc", None, (400, 404)),
        (adm, "DELETE", "/api/orgs/abc", None, (400, 404)),
    ]
    t0 = time.time()
    for c, m, p, body, want in cases:
        r = c.req(m, p, raw=body) if body is not None else c.req(m, p)
        ck(0 < r.status < 500, "5xx/no answer: %s" % r)
        if want is None:
            ck(400 <= r.status < 500, "malformed: want 4xx, got %s" % r)
            want = r.status
        ck_err(r, want, "malformed")
        if r.status == 201 and isinstance(r.json, dict):
            c.delete("/api/devices/%s" % r.json.get("id"))
    ck(SRV.sql("SELECT count(*) FROM devices WHERE uid LIKE 'N-_'")[0][0] == 0,
       "malformed devices stored: %s" % SRV.sql("SELECT uid FROM devices WHERE uid LIKE 'N-%'"))
    ck(SRV.sql("SELECT name FROM devices WHERE id=?", a1) == [("A1",)], "A1 changed by malformed patches")
    # bad at the HTTP level (answered before any handler)
    auth = "".join("%s: %s\r\n" % kv for kv in op.auth_headers().items())
    raw_cases = [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /api/health HTTP/9.9\r\nHost: x\r\n\r\n", (400, 505)),
        (b"GET /api/health\r\n\r\n", 400),
        (("POST /api/devices HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: -1\r\n\r\n"
          % auth).encode(), 400),
        (("POST /api/devices HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 5\r\n"
          "Content-Length: 7\r\n\r\n{}" % auth).encode(), 400),
        (("GET /api/devices HTTP/1.1\r\nHost: x\r\n%sX-Big: %s\r\n\r\n" % (auth, "a" * 17000)).encode(), 431),
        (("GET /api/devices?%s HTTP/1.1\r\nHost: x\r\n\r\n" % ("q" * 17000)).encode(), 431),
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n", 400),
        (b"GET /api/health HTTP/1.1\r\nHost: x\x00y\r\n\r\n", 400),
    ]
    for data, want in raw_cases:
        r = raw_exchange(data, timeout=3)
        r.method = repr(data[:60])
        ck(0 < r.status < 500, "HTTP-level garbage: want 4xx, got %s" % r)
        ck_err(r, want, "HTTP-level garbage")
    print("  %d malformed requests in %.1f s" % (len(cases) + len(raw_cases), time.time() - t0))
    # API reads and a login while devices report: every answer right, every device reply in time
    statuses, lock, done = [], threading.Lock(), threading.Event()

    def reader(k):
        i = 0
        while i < 15 or not done.is_set():
            i += 1
            path = ("/api/devices/%s/positions?format=csv&limit=1000" % a1, "/api/events?limit=1000",
                    "/api/devices")[i % 3]
            r = S["viewer-a"].get(path)
            with lock:
                statuses.append((r.status, path))
        if k == 0:
            r, _ = login("viewer-a", "pw-viewer-a-123")
            with lock:
                statuses.append((r.status, "login"))
    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    t0 = time.time()
    for th in threads:
        th.start()
    rc, summ, err = SRV.sim("--id-base", "794300000301", "--devices", "5", "--reports", "60", "--interval-ms", "10")
    done.set()
    for th in threads:
        th.join(60)
    bad = [x for x in statuses if x[0] != 200]
    ck(len(statuses) >= 8 * 15 + 1 and not bad, "concurrent API answers: %d, not 200: %s" % (len(statuses), bad[:5]))
    ck(summ.get("replies_missing") == 0 and summ.get("replies_wrong") == 0, "sim during API load: %s" % summ)
    print("  %d API requests beside 5 x 60 device reports in %.1f s; device reply p99 %.1f ms"
          % (len(statuses), time.time() - t0, summ.get("latency_ms_p99", -1)))
    r = request("GET", "/api/health")
    ck_status(r, 200, "health after the malformed requests")
    ck_status(S["viewer-a"].get("/api/devices/%s" % a1), 200, "devices after the malformed requests")
    ck(SRV.alive(), "server died")
    crash = [l for l in SRV.logs if re.search(r"crash|panic|assert|sanitizer|segv", l, re.I)]
    ck(not crash, "crash lines in the log: %s" % crash[:3])
    rejected = [l for l in SRV.logs if re.search(r"(status|code)=4\d\d\b", l)]
    ck(len(rejected) >= 10, "log lines for rejected requests (status=4xx): %d; last logs: %s"
       % (len(rejected), SRV.logs[-5:]))
    ck(any("431" in l for l in rejected) and any("413" in l for l in rejected),
       "no log line for the 413/431 answers (rejected before the handler)")
    ck(not any(ADMIN_PW in l or "pw-viewer-a-123" in l for l in SRV.logs), "a password appears in the log")
    ck(not any((S["admin"].cookie or "@") in l for l in SRV.logs), "a session cookie appears in the log")


# 11 ---------------------------------------------------------------------------------------------
def s_roles():
    vw, op, adm, adb = S["viewer-a"], S["operator-a"], S["admin"], S["admin-b"]
    a1 = S["dev"]["A1"][0]
    ids = S["ids"]
    for c in (vw, op):
        ck_err(c.get("/api/users"), 403, "%s lists users" % c.label)
        ck_err(c.post("/api/users", {"name": "x-" + c.label, "password": "pw-123456", "role": "viewer"}), 403,
               "%s creates a user" % c.label)
        ck_err(c.get("/api/users/%s" % ids["viewer-a"]), 403, "%s reads a user" % c.label)
        ck_err(c.patch("/api/users/%s" % ids["viewer-a"], {"role": "admin"}), 403, "%s patches a user" % c.label)
        ck_err(c.delete("/api/users/%s" % ids["viewer-a"]), 403, "%s deletes a user" % c.label)
        ck_err(c.patch("/api/orgs/1", {"retention_raw_days": 1}), 403, "%s sets retention" % c.label)
        ck_err(c.get("/metrics"), 403, "%s reads /metrics" % c.label)
        ck_err(c.get("/api/orgs"), 403, "%s lists orgs" % c.label)
    ck_err(vw.post("/api/devices", {"uid": "V-1"}), 403, "viewer creates a device")
    ck_err(vw.patch("/api/devices/%s" % a1, {"name": "x"}), 403, "viewer patches a device")
    ck_err(vw.delete("/api/devices/%s" % a1), 403, "viewer deletes a device")
    ck(SRV.sql("SELECT role FROM users WHERE id=?", ids["viewer-a"]) == [("viewer",)], "viewer-a's role changed")
    # what a viewer may do for itself
    j = ok_json(vw.post("/api/tokens", {"name": "mine"}), 201, "viewer creates a token")
    ck_status(Client("viewer-token", token=j.get("token")).get("/api/devices"), 200, "viewer's token")
    ck_err(Client("viewer-token", token=j.get("token")).post("/api/devices", {"uid": "V-2"}), 403,
           "viewer's token writes")
    ck_status(vw.delete("/api/tokens/%s" % j.get("id")), 204, "viewer revokes its token")
    # metrics
    r = adm.get("/metrics")
    ck_status(r, 200, "admin reads /metrics")
    ck((r.h("content-type") or "").startswith("text/plain"), "metrics Content-Type %r" % r.h("content-type"))
    for name in ("sealtrack_connections", "sealtrack_frames_total", "sealtrack_queue_depth",
                 "sealtrack_commit_seconds_bucket", "sealtrack_http_requests_total", "sealtrack_live_subscribers"):
        ck(re.search(r"(?m)^%s[ {]" % name, r.text), "metric %s missing" % name)
    m = re.search(r'(?m)^sealtrack_frames_total\{[^}]*protocol="jt808"[^}]*\} (\d+)', r.text)
    ck(m and int(m.group(1)) >= 3 * (REPORTS + 4), "sealtrack_frames_total jt808: %s" % (m.group(0) if m else None))
    ck(re.search(r'(?m)^sealtrack_http_requests_total\{code="4(04|xx)"\} [1-9]', r.text),
       "no 404 / 4xx counted in sealtrack_http_requests_total")
    ck_status(adb.get("/metrics"), 200, "org admin reads /metrics")
    # disabled, password change, deletion
    users = {}
    for name in ("tmp-disabled", "tmp-pw", "tmp-del"):
        j = ok_json(adm.post("/api/users", {"name": name, "password": "pw-%s-1" % name, "role": "operator"}),
                    201, "create " + name)
        uid = j.get("id")
        r, c = login(name, "pw-%s-1" % name)
        ck_status(r, 200, "login " + name)
        t = (Client(name, cookie=c).post("/api/tokens", {"name": "t"}).json or {}).get("token")
        users[name] = (uid, Client(name, cookie=c), Client(name + "-token", token=t))
    uid, sess, tok = users["tmp-disabled"]
    j = ok_json(adm.patch("/api/users/%s" % uid, {"disabled": True}), 200, "disable a user")
    ck(j.get("disabled") is True, "disable answer: %s" % j)
    ck_err(sess.get("/api/session"), 401, "session of a disabled user")
    ck_err(tok.get("/api/devices"), 401, "token of a disabled user")
    r, c = login("tmp-disabled", "pw-tmp-disabled-1")
    ck_err(r, 401, "login of a disabled user")
    ck(c is None, "disabled user got a cookie")
    uid, sess, tok = users["tmp-pw"]
    ck_status(adm.patch("/api/users/%s" % uid, {"password": "pw-tmp-pw-2", "role": "viewer"}), 200, "change password")
    ck_err(sess.get("/api/session"), 401, "session after a password change")
    r, c = login("tmp-pw", "pw-tmp-pw-2")
    j = ok_json(r, 200, "login with the new password")
    ck((j.get("user") or {}).get("role") == "viewer", "role after patch: %s" % j)
    ck_err(Client("tmp-pw2", cookie=c).post("/api/devices", {"uid": "TMP-1"}), 403, "demoted user writes")
    ck_err(adm.patch("/api/users/%s" % uid, {"role": "god"}), 400, "patch bad role", "role")
    uid, sess, tok = users["tmp-del"]
    ck_status(adm.delete("/api/users/%s" % uid), 204, "delete a user")
    ck_err(sess.get("/api/session"), 401, "session of a deleted user")
    ck_err(tok.get("/api/devices"), 401, "token of a deleted user")
    ck_err(adm.get("/api/users/%s" % uid), 404, "get a deleted user")
    ck(SRV.sql("SELECT count(*) FROM sessions WHERE user_id=?", uid)[0][0] == 0
       and SRV.sql("SELECT count(*) FROM api_tokens WHERE user_id=?", uid)[0][0] == 0,
       "sessions/tokens of a deleted user remain in the DB")
    ck_err(adm.delete("/api/users/%s" % ids["admin"]), 409, "admin deletes itself")
    ck_err(adb.delete("/api/users/%s" % ids["admin-b"]), 409, "admin-b deletes itself")
    # organisations: delete rules, moving a device
    j = ok_json(adm.patch("/api/orgs/%s" % S["org_b"], {"name": "org-b2"}), 200, "system admin renames org B")
    ck(j.get("name") == "org-b2", "renamed org: %s" % j)
    ck_err(adm.patch("/api/orgs/%s" % S["org_b"], {"name": "default"}), 409, "rename org B to an existing name")
    ck_err(adm.delete("/api/orgs/1"), 409, "delete org 1")
    ck_err(adm.delete("/api/orgs/%s" % S["org_b"]), 409, "delete org B with devices and users")
    ck_err(adb.delete("/api/orgs/%s" % S["org_b"]), 403, "org admin deletes its org")
    j = ok_json(adm.post("/api/orgs", {"name": "org-c", "retention_positions_days": 7}), 201, "create org C")
    oc = j.get("id")
    ck(j.get("retention_positions_days") == 7, "org C retention: %s" % j)
    ck_status(adm.delete("/api/orgs/%s" % oc), 204, "delete empty org C")
    ck_err(adm.get("/api/orgs/%s" % oc), 404, "deleted org C")
    j = ok_json(op.post("/api/devices", {"uid": "MOVE-1"}), 201, "create MOVE-1")
    mv = j.get("id")
    j = ok_json(adm.patch("/api/devices/%s" % mv, {"org_id": S["org_b"]}), 200, "system admin moves a device")
    ck(j.get("org_id") == S["org_b"], "moved device: %s" % j)
    ck_err(op.get("/api/devices/%s" % mv), 404, "org A reads the moved device")
    ck_status(S["viewer-b"].get("/api/devices/%s" % mv), 200, "org B reads the moved device")
    ck_err(adb.patch("/api/devices/%s" % mv, {"org_id": 1}), 403, "org admin moves a device")


# 12 ---------------------------------------------------------------------------------------------
def s_rate_limit():
    adm = S["admin"]
    ok_json(adm.post("/api/users", {"name": "throwaway", "password": "pw-throwaway-1", "role": "viewer"}), 201,
            "create throwaway")
    # per user name: one failure from each of five addresses, then the sixth attempt (any address) is 429
    for i in range(5):
        r, _ = login("throwaway", "wrong-%d" % i, source="127.0.0.%d" % (2 + i))
        ck_err(r, 401, "wrong password #%d for throwaway from 127.0.0.%d" % (i + 1, 2 + i))
    r, _ = login("throwaway", "wrong-5", source="127.0.0.7")
    ck_err(r, 429, "6th wrong password for throwaway")
    ra = r.h("retry-after")
    ck(ra is not None and ra.isdigit() and 0 < int(ra) <= 900, "429 Retry-After %r" % ra)
    r, c = login("throwaway", "pw-throwaway-1", source="127.0.0.8")
    ck_err(r, 429, "right password for a locked-out user")
    ck(c is None, "locked-out user got a cookie")
    # per address: five failures for five names from one address, then even a right password is 429 there
    for i in range(5):
        r, _ = login("ghost-%d" % i, "wrong", source="127.0.0.9")
        ck_err(r, 401, "unknown user ghost-%d from 127.0.0.9" % i)
    r, c = login("admin", ADMIN_PW, source="127.0.0.9")
    ck_err(r, 429, "admin's right password from a locked-out address")
    ck(r.h("retry-after") is not None, "429 without Retry-After: %s" % r)
    r, c = login("admin", ADMIN_PW, source="127.0.0.10")
    ck_status(r, 200, "admin from another address")
    # a success does not reset the address counter: 4 failures, a success, 1 failure -> locked
    for i in range(4):
        ck_err(login("ghost-x%d" % i, "wrong", source="127.0.0.11")[0], 401, "ghost-x%d from 127.0.0.11" % i)
    ck_status(login("viewer-b", "pw-viewer-b-123", source="127.0.0.11")[0], 200, "a success from 127.0.0.11")
    ck_err(login("ghost-y", "wrong", source="127.0.0.11")[0], 401, "5th failure from 127.0.0.11")
    ck_err(login("viewer-b", "pw-viewer-b-123", source="127.0.0.11")[0], 429,
           "after 5 failures with a success among them (the success does not reset the address counter)")
    ck_status(adm.get("/api/session"), 200, "existing sessions keep working")


section("1 health / 401", s_health_401)
section("2 login / session", s_login)
section("3 orgs and users", s_orgs_users)
section("4 tokens", s_tokens)
section("5 devices CRUD / validation", s_devices)
section("6 data from the simulator", s_data)
section("7 tenant isolation", s_isolation)
section("8 live stream", s_stream)
section("9 retention", s_retention)
section("10 malformed requests", s_bad_input)
section("11 roles and users", s_roles)
section("12 failed-login limits", s_rate_limit)
SRV.stop()
finish()
