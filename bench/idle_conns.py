"""idle_conns.py BIN [N ...] — server memory per idle TCP connection: opens N connections
that send nothing, and reads the server's RSS (user space) and the kernel's TCP memory
(/proc/net/sockstat, pages) before and after. Prints figures; asserts nothing."""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
counts = [int(x) for x in sys.argv[2:]] or [10000]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def tcp_mem_pages():
    for line in open("/proc/net/sockstat"):
        if line.startswith("TCP:"):
            f = line.split()
            return int(f[f.index("mem") + 1])


for n in counts:
    d = tempfile.mkdtemp()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1", "--port", str(port), "--http-port", "0", "--db", d + "/b.db",
                            "--set", "log_level=warn", "--set", "max_conn_per_ip=100000",
                            "--set", "max_connections=100000"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    before, kbefore = rss_kib(srv.pid), tcp_mem_pages()
    socks = []
    try:
        # several source addresses: loopback has about 28k ephemeral ports per destination;
        # IP_BIND_ADDRESS_NO_PORT (24) lets connect() pick the port
        for i in range(n):
            c = socket.socket()
            c.setsockopt(socket.SOL_IP, 24, 1)
            c.bind(("127.0.0.%d" % (2 + i // 10000), 0))
            c.connect(("127.0.0.1", port))
            socks.append(c)
        time.sleep(1.0)
        after, kafter = rss_kib(srv.pid), tcp_mem_pages()
    finally:
        if len(socks) < n:
            srv.kill()
    print("idle TCP connections: %d: server RSS %d KiB -> %d KiB = %.0f bytes per connection "
          "(user space); kernel TCP memory %+d pages (%.0f bytes per connection, both ends)"
          % (n, before, after, (after - before) * 1024.0 / n, kafter - kbefore, (kafter - kbefore) * 4096.0 / n))
    for c in socks:
        c.close()
    srv.terminate()
    srv.wait()
