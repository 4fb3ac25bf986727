"""abuse.py BIN [CASE ...] — a normal device's reply latency while the server is abused.

For each case a fresh server (`BIN serve`, fresh SQLite file, free port, sync=full) is started;
`BIN sim --devices 20 --reports 200 --window 1` is run RUNS times without abuse (baseline), then the
abuse starts, and once it is in place `sim` runs RUNS times again. Cases (each alone, then all):

  slowloris   200 connections, each sends one byte of a valid JT/T 808 frame per second
  idle        10,000 connections that send nothing (source addresses 127.0.0.2.., max_conn_per_ip raised)
  garbage     4 connections writing random bytes as fast as they can: 2 from the first byte (closed
              as no known protocol, they reconnect), 2 after one valid JT/T 808 heartbeat (the
              server is then resynchronising inside a detected protocol)
  oversized   2 connections sending 6 KiB frames without an end again and again (reconnecting)
  nonreader   1 device sending JT/T 808 heartbeats as fast as it can, never reading its replies
              (reconnecting when disconnected)
  api         4 HTTP API clients asking back to back for the heaviest answers (CSV export of
              every stored position of a device, its trips report, the events of all devices,
              the device list), and 1 client sending wrong passwords as fast as it can (argon2id
              until the failed-login limit answers 429)
  all         everything above at once

Per case: baseline and under-abuse p50/p99 (median over the runs; the worst p99 too), the ratio,
the server's log lines by event and conn_closed by reason, its CPU seconds during the abuse and
its RSS (current and peak) from /proc. Prints figures; asserts nothing.
Environment: RUNS (default 5), SETTLE (seconds of abuse before measuring, default 2).
"""
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

BIN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build-release/sealtrack"
CASES = sys.argv[2:] or ["slowloris", "idle", "garbage", "oversized", "nonreader", "api", "all"]
RUNS = int(os.environ.get("RUNS", "5"))
SETTLE = float(os.environ.get("SETTLE", "2"))
HZ = os.sysconf("SC_CLK_TCK")

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# The integration tests' helpers: one frame builder, one vector reader, one free-port finder.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import free_port, jt808_frame, load_vectors  # noqa: E402

D007 = bytes.fromhex([r for r in load_vectors("jt808.tsv") if r["vector_id"] == "JT808-D007"][0]["message"])


# ---- abusers (each runs in its own process until `stop` is set) ---------------------------

def connect(port, src=None, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT: connect() picks the port
        s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def slowloris(port, ready, stop, stats, n=200):
    socks = [connect(port) for _ in range(n)]
    pos = [0] * n  # every connection starts a frame; their bytes are staggered in time
    ready.set()
    closed = 0
    while not stop.is_set():
        t0 = time.time()
        for i, s in enumerate(socks):
            if s is None:
                continue
            try:
                s.send(D007[pos[i]:pos[i] + 1])
                pos[i] = (pos[i] + 1) % len(D007)
            except OSError:
                s.close()
                socks[i] = None
                closed += 1
            # spread the bytes over the second
            time.sleep(max(0.0, t0 + (i + 1) / n - time.time()))
    stats["slowloris_closed_by_server"] = closed


def idle(port, ready, stop, stats, n=10000):
    socks = []
    for i in range(n):
        socks.append(connect(port, src="127.0.0.%d" % (2 + i // 5000)))
    ready.set()
    stop.wait()
    stats["idle_open"] = len(socks)
    for s in socks:
        s.close()


def garbage(port, ready, stop, stats, n=4):
    procs = []
    for k in range(n):
        p = mp.Process(target=garbage_one, args=(port, stop, k % 2 == 1, stats, k))
        p.start()
        procs.append(p)
    ready.set()
    for p in procs:
        p.join()


def garbage_one(port, stop, after_frame, stats, k):
    rnd = random.Random(k)
    chunk = rnd.randbytes(65536)
    conns = sent = 0
    hb = jt808_frame(0x0002, "7943999900%02d" % k, 1, b"")
    while not stop.is_set():
        s = None
        try:
            s = connect(port)
            conns += 1
            if after_frame:
                s.sendall(hb)
            while not stop.is_set():
                off = rnd.randrange(0, 32768)
                sent += s.send(chunk[off:off + 32768])
        except OSError:
            pass
        finally:
            if s:
                s.close()
    stats["garbage%d_%s" % (k, "after_frame" if after_frame else "fresh")] = "%d connections, %d MiB sent" % (conns, sent >> 20)


def oversized(port, ready, stop, stats, n=2):
    procs = [mp.Process(target=oversized_one, args=(port, stop, stats, k)) for k in range(n)]
    for p in procs:
        p.start()
    ready.set()
    for p in procs:
        p.join()


def oversized_one(port, stop, stats, k):
    # a JT/T 808 start flag and 6 KiB without an end flag, then the same as a JT600 text
    frames = [b"\x7e\x02\x00" + b"\x11" * 6144, b"(8000620011,P45," + b"9" * 6144]
    conns = 0
    while not stop.is_set():
        s = None
        try:
            s = connect(port)
            conns += 1
            while not stop.is_set():
                s.sendall(frames[conns % 2])
        except OSError:
            pass
        finally:
            if s:
                s.close()
    stats["oversized%d" % k] = "%d connections" % conns


def nonreader(port, ready, stop, stats):
    frames = b"".join(jt808_frame(0x0002, "794399990001", i, b"") for i in range(1, 1001))
    conns = sent = 0
    ready.set()
    while not stop.is_set():
        s = None
        try:
            s = connect(port, rcvbuf=4096)
            conns += 1
            while not stop.is_set():
                sent += s.send(frames)
        except OSError:
            pass
        finally:
            if s:
                s.close()
    stats["nonreader"] = "%d connections, %d heartbeats sent" % (conns, sent * 1000 // len(frames))


API_PASSWORD = "abuse-password"


def api_get_loop(hport, stop, stats, k, paths):
    conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=60)
    conn.request("POST", "/api/session", json.dumps({"name": "abuse", "password": API_PASSWORD}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    cookie = {"Cookie": r.getheader("Set-Cookie").split(";")[0]}
    n = size = 0
    codes = Counter()
    while not stop.is_set():
        conn.request("GET", paths[n % len(paths)], headers=cookie)
        r = conn.getresponse()
        size += len(r.read())
        codes[r.status] += 1
        n += 1
    stats["api%d" % k] = "%d requests, %.0f MiB, %s" % (n, size / 1048576.0, dict(codes))


def api_bad_logins(hport, stop, stats):
    conn = http.client.HTTPConnection("127.0.0.1", hport, timeout=60)
    codes = Counter()
    while not stop.is_set():
        conn.request("POST", "/api/session", json.dumps({"name": "abuse", "password": "wrong"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        codes[r.status] += 1
    stats["api_bad_logins"] = dict(codes)


def api(port, ready, stop, stats, hport=None):
    paths = ["/api/devices/1/positions?format=csv&limit=100000&from=0",
             "/api/devices/2/reports/trips?from=0", "/api/events?from=0&limit=1000", "/api/devices"]
    procs = [mp.Process(target=api_get_loop, args=(hport, stop, stats, k, paths[k:] + paths[:k]))
             for k in range(4)]
    procs.append(mp.Process(target=api_bad_logins, args=(hport, stop, stats)))
    for p in procs:
        p.start()
    ready.set()
    for p in procs:
        p.join()


ABUSERS = {"slowloris": slowloris, "idle": idle, "garbage": garbage, "oversized": oversized,
           "nonreader": nonreader, "api": api}


# ---- the server and the normal device ------------------------------------------------------

def proc_stat(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    cpu = (int(f[11]) + int(f[12])) / HZ
    st = {}
    for line in open("/proc/%d/status" % pid):
        k, v = line.split(":", 1)
        st[k] = v.strip()
    return cpu, int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0])


def sim(port):
    r = subprocess.run([BIN, "sim", "--port", str(port), "--devices", "20", "--reports", "200", "--window", "1"],
                       capture_output=True, text=True, timeout=300)
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    s = json.loads(last)
    s["rc"] = r.returncode
    return s


def measure(port):
    runs = [sim(port) for _ in range(RUNS)]
    ok = all(r["rc"] == 0 for r in runs)
    p50 = statistics.median(r.get("latency_ms_p50", float("nan")) for r in runs)
    p99 = statistics.median(r.get("latency_ms_p99", float("nan")) for r in runs)
    worst = max(r.get("latency_ms_p99", float("nan")) for r in runs)
    missing = sum(r.get("replies_missing", 0) + r.get("replies_wrong", 0) for r in runs)
    return p50, p99, worst, ok, missing


def run_case(case):
    d = tempfile.mkdtemp(prefix="sealtrack-abuse-")
    port, hport = free_port(), free_port()
    log_path = os.path.join(d, "server.log")
    log = open(log_path, "w")
    subprocess.run([BIN, "user", "add", "--db", d + "/abuse.db", "--name", "abuse"], input=API_PASSWORD + "\n",
                   text=True, check=True, capture_output=True)
    srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1", "--port", str(port), "--http-port", str(hport),
                            "--db", d + "/abuse.db", "--set", "max_conn_per_ip=100000"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(100):
            if "event=listening" in open(log_path).read():
                break
            time.sleep(0.05)
        sim(port)  # warm-up: registers the devices, warms the caches
        base = measure(port)
        names = list(ABUSERS) if case == "all" else [case]
        mgr = mp.Manager()
        stats = mgr.dict()
        stop = mp.Event()
        procs = []
        cpu0, _, _ = proc_stat(srv.pid)
        t0 = time.time()
        for name in names:
            ready = mp.Event()
            p = mp.Process(target=ABUSERS[name], args=(port, ready, stop, stats),
                           kwargs={"hport": hport} if name == "api" else {})
            p.start()
            procs.append(p)
            if not ready.wait(120):
                print("  %s did not get ready" % name)
        time.sleep(SETTLE)
        cpu1, rss1, _ = proc_stat(srv.pid)
        t1 = time.time()
        under = measure(port)
        cpu2, rss2, hwm = proc_stat(srv.pid)
        t2 = time.time()
        stop.set()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
        alive = srv.poll() is None
        stats = dict(stats)
        mgr.shutdown()
        srv.terminate()
        rc = srv.wait(30)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        log.close()
    events, reasons = Counter(), Counter()
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.search(r"event=(\w+)", line)
            if m:
                events[m.group(1)] += 1
            m = re.search(r'event=conn_(?:closed|refused) .*reason="([^"]*)"', line)
            if m:
                reasons[m.group(1)] += 1
    log_mib = os.path.getsize(log_path) / 1048576.0
    shutil.rmtree(d, ignore_errors=True)

    print("== %s (%s)" % (case, ", ".join(names)))
    print("  baseline     p50 %6.2f ms  p99 %6.2f ms  (worst p99 %.2f)%s" %
          (base[0], base[1], base[2], "" if base[3] else "  SIM FAILED, %d replies missing" % base[4]))
    print("  under abuse  p50 %6.2f ms  p99 %6.2f ms  (worst p99 %.2f)%s" %
          (under[0], under[1], under[2], "" if under[3] else "  SIM FAILED, %d replies missing" % under[4]))
    print("  ratio        p50 x%.2f  p99 x%.2f  -> 2x goal %s" %
          (under[0] / base[0], under[1] / base[1],
           "holds" if under[0] <= 2 * base[0] and under[1] <= 2 * base[1] else "MISSED"))
    print("  server       CPU %.2f s over %.1f s of abuse (%.0f%% of a core; %.0f%% while measuring); "
          "RSS %d KiB before measuring, %d KiB after, peak %d KiB; alive %s, exit %s"
          % (cpu2 - cpu0, t2 - t0, 100 * (cpu2 - cpu0) / (t2 - t0), 100 * (cpu2 - cpu1) / (t2 - t1),
             rss1, rss2, hwm, alive, rc))
    print("  log          %.1f MiB; events %s" % (log_mib, dict(events.most_common())))
    print("  conn closed/refused by reason %s" % dict(reasons.most_common()))
    if stats:
        print("  abusers      %s" % stats)
    sys.stdout.flush()


if __name__ == "__main__":
    print("machine: %d cores; sim --devices 20 --reports 200 --window 1, %d runs per measurement, "
          "medians; sync=full" % (os.cpu_count(), RUNS))
    for c in CASES:
        run_case(c)
