"""harness.py — start the real sealtrack binary on a free port with a fresh SQLite
file, talk to it over real sockets, read the real database. Shared by every
tests/integration/NN-*.py script (each is run by meson with the binary's path)."""
import atexit
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build/sealtrack"
VECTORS = os.environ.get("ST_VECTORS_DIR", os.path.join(os.path.dirname(__file__), "..", "vectors"))


SERVERS = []


def stop_all():
    for srv in SERVERS:
        if srv.proc and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


atexit.register(stop_all)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    stop_all()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    fail("no free port")


class Server:
    def __init__(self, *extra, db=None, port=None):
        self.dir = tempfile.mkdtemp(prefix="sealtrack-it-")
        self.db = db or os.path.join(self.dir, "test.db")
        self.port = port or free_port()
        self.extra = list(extra)
        self.logs = []
        self.proc = None
        SERVERS.append(self)
        self.start()

    def start(self):
        # ST_SERVER_WRAP runs the server under a tool, e.g. "valgrind --error-exitcode=1 --leak-check=full"
        wrap = os.environ.get("ST_SERVER_WRAP", "").split()
        args = wrap + [BIN, "serve", "--listen", "127.0.0.1", "--port", str(self.port), "--db", self.db] + self.extra
        if "--http-port" not in self.extra:  # the API only where a test asks for it (8080 may be taken)
            args += ["--http-port", "0"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, errors="backslashreplace")
        ready = threading.Event()

        def pump(proc=self.proc):
            for line in proc.stderr:
                self.logs.append(line.rstrip("\n"))
                if "event=listening" in line:
                    ready.set()
        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            fail("server did not start: " + "\n".join(self.logs))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                fail("server did not stop on SIGTERM")
            check(self.proc.returncode == 0, "server exit code %s" % self.proc.returncode)

    def alive(self):
        return self.proc.poll() is None

    def log_lines(self, needle):
        return [l for l in self.logs if needle in l]

    def wait_log(self, needle, timeout=5.0):
        end = time.time() + timeout
        while time.time() < end:
            found = self.log_lines(needle)
            if found:
                return found
            time.sleep(0.05)
        fail("no log line with %r; logs:\n%s" % (needle, "\n".join(self.logs[-30:])))

    def sql(self, query, *params):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def sim(self, *args, check_rc=True):
        r = subprocess.run([BIN, "sim", "--host", "127.0.0.1", "--port", str(self.port)] + list(args),
                           capture_output=True, text=True, timeout=240)
        if check_rc and r.returncode != 0:
            fail("sim %s failed (%d): %s\n%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        import json
        summary = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
        return r.returncode, summary, r.stderr

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


def cli(*args, stdin=None):
    return subprocess.run([BIN] + list(args), input=stdin, capture_output=True, text=True, timeout=60)


def load_vectors(name):
    rows = []
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            cols = line.rstrip("\n").split("\t")
            row = dict(zip(header, cols))
            exp = {}
            for part in row.get("expected", "").split("; "):
                if "=" in part:
                    k, v = part.split("=", 1)
                    exp[k] = v
            row["exp"] = exp
            rows.append(row)
    return rows


def wire_bytes(row):
    """The bytes a device sends for a vector row (None for downlink/encoder rows)."""
    if row["layer"] in ("downlink", "encode"):
        return None
    if row["layer"] == "unescaped":
        w = row["exp"].get("wire")
        return bytes.fromhex(w) if w else None
    if row["format"] == "hex":
        return bytes.fromhex(row["message"])
    return row["message"].encode()


def recv_until(sock, n_min, timeout=5.0):
    """Read at least n_min bytes (or until timeout)."""
    data = b""
    end = time.time() + timeout
    while len(data) < n_min and time.time() < end:
        sock.settimeout(max(0.01, end - time.time()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:  # closed by the server with our bytes unread
            break
        if not chunk:
            break
        data += chunk
    return data


def split_replies(data):
    """Cut a reply stream into JT/T 808 frames (7e…7e) and texts ((…))."""
    out, i = [], 0
    while i < len(data):
        if data[i] == 0x7E:
            j = data.index(0x7E, i + 1)
            out.append(data[i:j + 1])
            i = j + 1
        elif data[i] == 0x28:
            j = data.index(0x29, i)
            out.append(data[i:j + 1])
            i = j + 1
        else:
            fail("garbage in replies at %d: %r" % (i, data[i:i + 16]))
    return out


def jt808_unescape(frame):
    body = frame[1:-1].replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")
    return body


def jt808_normalise(frame):
    """Unescaped frame with the server serial and checksum zeroed (the server numbers its own frames)."""
    b = bytearray(jt808_unescape(frame))
    v2019 = (b[2] << 8 | b[3]) & 0x4000
    at = 15 if v2019 else 10
    if b[0:2] == b"\x44\x01":  # 0x4401 has a 1-byte serial
        b[at] = 0
    else:
        b[at:at + 2] = b"\x00\x00"
    b[-1] = 0
    return bytes(b)


def jt808_frame(msg_id, terminal, serial, body):
    """A JT/T 808 (2013) wire frame: header, body, XOR checksum, escapes."""
    head = msg_id.to_bytes(2, "big") + len(body).to_bytes(2, "big") + bytes.fromhex(terminal) + serial.to_bytes(2, "big")
    plain = head + body
    x = 0
    for b in plain:
        x ^= b
    plain += bytes([x])
    return b"\x7e" + plain.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


class Api:
    """A logged-in HTTP API caller (session cookie) of a Server started with --http-port."""

    def __init__(self, http_port, name, password):
        self.port = http_port
        self.cookie = None
        status, body, headers = self.call("POST", "/api/session", {"name": name, "password": password})
        check(status == 200, "login as %s: %s %s" % (name, status, body))
        for value in headers.get_all("Set-Cookie") or []:
            if value.startswith("st_session="):
                self.cookie = value.split(";", 1)[0].split("=", 1)[1]

    def call(self, method, path, body=None):
        """(status, parsed JSON or text, headers)."""
        import http.client
        import json
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.cookie:
            headers["Cookie"] = "st_session=" + self.cookie
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            data = r.read().decode("utf-8", "replace")
            try:
                parsed = json.loads(data) if data else None
            except ValueError:
                parsed = data
            return r.status, parsed, r.headers
        finally:
            conn.close()

    def get(self, path):
        return self.call("GET", path)[:2]

    def post(self, path, body):
        return self.call("POST", path, body)[:2]

    def patch(self, path, body):
        return self.call("PATCH", path, body)[:2]

    def delete(self, path):
        return self.call("DELETE", path)[:2]
