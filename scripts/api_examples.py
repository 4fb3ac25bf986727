"""api_examples.py BIN > examples.md — one real request and answer per API route, as Markdown.

Starts `BIN serve` with a fresh database, creates an admin with `BIN user add`, feeds it two
simulated JT709A seals (`BIN sim`), then calls every route and prints what was sent and what came
back (long answers cut). docs/api.md's "Examples" section is this script's output, so the examples
are what the server really answers.
"""
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import Server, cli, free_port  # noqa: E402

CUT = 700


def main():
    hport = free_port()
    srv = Server("--http-port", str(hport))
    cli("user", "add", "--db", srv.db, "--name", "admin", stdin="a-long-password\n")
    conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=30)
    auth = {}
    out = []

    def call(method, path, body=None, show=True, title=None):
        headers = dict(auth)
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, data, headers)
        r = conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        if show:
            hdrs = [h for h in ("Set-Cookie", "X-Next-Cursor", "Retry-After", "Allow")
                    if r.getheader(h)]
            shown = text if len(text) <= CUT else text[:CUT] + " …(%d bytes)" % len(text)
            out.append("#### %s\n\n```\n%s %s%s\n%s\n\nHTTP %d%s\n%s\n```\n" % (
                title or ("%s %s" % (method, path.split("?")[0])), method, path,
                "  (Authorization: Bearer st_…)" if "Authorization" in auth else "",
                data or "", r.status,
                "".join("\n%s: %s" % (h, r.getheader(h)) for h in hdrs), shown.rstrip()))
        return r, text

    call("GET", "/api/health")
    r, _ = call("POST", "/api/session", {"name": "admin", "password": "a-long-password"})
    auth["Cookie"] = r.getheader("Set-Cookie").split(";")[0]
    call("GET", "/api/session")
    _, t = call("POST", "/api/tokens", {"name": "reporting", "expires_days": 90})
    token = json.loads(t)
    call("GET", "/api/tokens")
    call("POST", "/api/orgs", {"name": "acme-logistics", "retention_positions_days": 365,
                               "retention_raw_days": 30})
    call("GET", "/api/orgs")
    call("GET", "/api/orgs/1")
    call("PATCH", "/api/orgs/2", {"retention_raw_days": 14})
    call("POST", "/api/users", {"name": "dispatch", "password": "another-password", "role": "operator"})
    call("GET", "/api/users")
    call("GET", "/api/users/2")
    call("PATCH", "/api/users/2", {"role": "viewer"})
    call("POST", "/api/devices", {"uid": "794300000001", "name": "Trailer 7", "model": "JT709A",
                                  "asset": "TR-7", "group": "north", "notes": "rear door seal"})
    call("POST", "/api/devices", {"uid": "794300000002", "name": "Container 12"}, show=False)
    srv.sim("--devices", "2", "--reports", "12")
    call("GET", "/api/devices?limit=1")
    call("GET", "/api/devices/1")
    call("PATCH", "/api/devices/1", {"group": "south", "tz_offset_min": None})
    call("GET", "/api/devices/1/positions?limit=2")
    call("GET", "/api/devices/1/positions?limit=2&format=csv", title="GET /api/devices/{id}/positions (CSV)")
    call("GET", "/api/devices/1/positions?limit=2&format=gpx", title="GET /api/devices/{id}/positions (GPX)")
    call("GET", "/api/devices/1/positions?limit=1&format=geojson",
         title="GET /api/devices/{id}/positions (GeoJSON)")
    call("GET", "/api/events?device=1&type=tamper")
    call("GET", "/api/devices/1/raw?limit=1")
    call("GET", "/api/devices/1/reports/route?format=geojson")
    call("GET", "/api/devices/1/reports/trips?min_stop_s=120")
    call("GET", "/api/devices/1/reports/stops")
    call("GET", "/api/devices/1/reports/summary")
    # the stream: read the first event only
    s = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
    s.request("GET", "/api/stream?device=1", headers=dict(auth))
    r = s.getresponse()
    first = r.fp.readline().decode() + r.fp.readline().decode()
    out.append("#### GET /api/stream\n\n```\nGET /api/stream?device=1\n\nHTTP %d\nContent-Type: %s\n\n%s…\n```\n"
               % (r.status, r.getheader("Content-Type"), first[:CUT]))
    s.close()
    r, text = call("GET", "/metrics", show=False)
    out.append("#### GET /metrics\n\n```\nGET /metrics\n\nHTTP %d\n%s\n…\n```\n"
               % (r.status, "\n".join(text.splitlines()[:8])))
    saved = dict(auth)
    auth.clear()
    auth["Authorization"] = "Bearer " + token["token"]
    call("GET", "/api/devices/1/reports/summary", title="A token instead of the cookie")
    auth.clear()
    auth.update(saved)
    call("DELETE", "/api/tokens/%d" % token["id"])
    call("DELETE", "/api/users/2")
    call("DELETE", "/api/devices/2")
    call("DELETE", "/api/orgs/2")
    call("POST", "/api/devices", {"uid": "794300000001"}, title="Error: a uid that exists")
    call("POST", "/api/devices", {"uid": "x", "name": 5}, title="Error: a wrong type")
    call("GET", "/api/devices/1/positions?from=2026-02-01&to=2026-01-01", title="Error: a bad range")
    call("DELETE", "/api/session")
    print("\n".join(out))
    srv.stop()


if __name__ == "__main__":
    main()
