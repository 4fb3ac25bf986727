"""08 — abuse, small scale (bench/abuse.py is the measured version): while `sim` runs a few
normal devices, slowloris sockets, idle sockets, a garbage flood, oversized frames and a device
that never reads its replies all hit the server at once. Asserts behaviour only, no timing: the
normal devices get every reply, each abuse is logged and contained, idle and slow sockets are
closed by the idle timeout, and the server stops cleanly."""
import random
import socket
import subprocess
import threading
import time

from harness import BIN, Server, check, jt808_frame, load_vectors

D007 = bytes.fromhex([r for r in load_vectors("jt808.tsv") if r["vector_id"] == "JT808-D007"][0]["message"])

srv = Server("--set", "idle_timeout=2")
stop = threading.Event()
errors = []


def connect(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", srv.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_server(s, timeout):
    """True when the server closes `s` (EOF or reset) within timeout seconds."""
    end = time.time() + timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def guarded(fn):
    def run(*a):
        try:
            fn(*a)
        except Exception as e:  # a thread's failure is reported by the main thread
            errors.append("%s: %r" % (fn.__name__, e))
    return run


# normal devices, running through the abuses
sim_result = {}


def normal_devices():
    r = subprocess.run([BIN, "sim", "--host", "127.0.0.1", "--port", str(srv.port), "--devices", "5",
                        "--reports", "200", "--interval-ms", "25"], capture_output=True, text=True, timeout=120)
    sim_result.update(rc=r.returncode, out=r.stdout, err=r.stderr)


slow_closed = []


@guarded
def slowloris(n=5, seconds=3):
    socks = [connect() for _ in range(n)]
    for i in range(seconds):
        for s in socks:
            s.send(D007[i:i + 1])
        time.sleep(1)
    slow_closed.extend(closed_by_server(s, 6) for s in socks)


idle_closed = []


@guarded
def idle(n=200):
    socks = [connect() for _ in range(n)]
    time.sleep(2)
    idle_closed.extend(closed_by_server(s, 4) for s in socks)


@guarded
def garbage(after_frame, seconds=2):
    rnd = random.Random(after_frame)
    end = time.time() + seconds
    while time.time() < end:
        s = connect()
        try:
            # a TLS-like start: no protocol of ours; or a valid heartbeat, then resynchronisation
            s.sendall(jt808_frame(0x0002, "794399990011", 1, b"") if after_frame else b"\x16\x03\x01")
            while time.time() < end:
                s.sendall(rnd.randbytes(4096))
        except OSError:
            pass
        s.close()


oversized_binary_closed = []


@guarded
def oversized(kind, times=3):
    # kind 1: a JT600 text without its ')' (skipped as garbage); kind 0: bytes that start
    # like JT/T 808 but never end (no protocol: the connection is closed)
    frame = b"(8000620011,P45," + b"9" * 6000 if kind else b"\x7e\x02\x00" + b"\x11" * 6000
    for _ in range(times):
        s = connect()
        try:
            s.sendall(frame)
            closed = closed_by_server(s, 2)
        except OSError:
            closed = True
        if not kind:
            oversized_binary_closed.append(closed)
        s.close()


nonreader_closed = []


@guarded
def nonreader(seconds=15):
    # a small receive buffer: the server's 64 KiB of unsent replies plus the kernel's buffers
    # fill sooner
    s = connect(rcvbuf=4096)
    frames = b"".join(jt808_frame(0x0002, "794399990021", i, b"") for i in range(1, 501))
    end = time.time() + seconds
    s.settimeout(1)
    try:
        while time.time() < end and not srv.log_lines("peer does not read its replies"):
            try:
                s.send(frames)
            except socket.timeout:
                pass
    except OSError:
        pass  # reset by the server
    wait = time.time() + 5  # the log line may trail the reset
    while time.time() < wait and not srv.log_lines("peer does not read its replies"):
        time.sleep(0.05)
    nonreader_closed.append(bool(srv.log_lines("peer does not read its replies")))
    s.close()


threads = [threading.Thread(target=normal_devices), threading.Thread(target=slowloris),
           threading.Thread(target=idle), threading.Thread(target=garbage, args=(False,)),
           threading.Thread(target=garbage, args=(True,)), threading.Thread(target=oversized, args=(0,)),
           threading.Thread(target=oversized, args=(1,)), threading.Thread(target=nonreader)]
t0 = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join(60)
check(not errors, "abuser failed: %s" % errors)

check(sim_result.get("rc") == 0, "normal devices missed replies under abuse (sim exit %s): %s\n%s\nserver:\n%s"
      % (sim_result.get("rc"), sim_result.get("out"), sim_result.get("err"),
         "\n".join(l for l in srv.logs if "garbage_skipped" not in l and "idle timeout" not in l)[-6000:]))
check(srv.alive(), "server died")
check(srv.log_lines("event=protocol_unknown"), "garbage from the first byte not logged as protocol_unknown")
check(srv.log_lines("event=garbage_skipped"), "garbage after a frame not logged as garbage_skipped")
check(oversized_binary_closed == [True] * 3, "oversized binary connections not closed: %s"
      % oversized_binary_closed)
text_len = len(b"(8000620011,P45,") + 6000  # the whole text, no device named yet
check([l for l in srv.log_lines("event=garbage_skipped") if "device=- " in l
       and 6000 <= int(l.split("bytes=")[1].split()[0]) <= text_len],
      "oversized texts not skipped as garbage with their size logged")
check(nonreader_closed == [True], "the device that does not read its replies was not disconnected: %s"
      % srv.log_lines("device=7943999900"))
check(all(slow_closed) and len(slow_closed) == 5, "slowloris sockets not closed: %s" % slow_closed)
check(all(idle_closed) and len(idle_closed) == 200, "idle sockets not closed: %d of 200" % sum(idle_closed))
check(len(srv.log_lines('reason="idle timeout"')) >= 205, "idle timeouts not logged")
check(not [l for l in srv.logs if "\\x" in l], "bytes from devices logged unescaped")
srv.stop()
print("abuse: normal devices answered in full; slowloris, idle, garbage, oversized and non-reading "
      "peers logged and closed (%.1f s)" % (time.time() - t0))
