#!/usr/bin/env node
// tk103_ingest.js — TCP ingest of one TK103 stream, side by side: the npm peer gps-tracking@1.1.1
// (TK103 adapter, no storage) and `sealtrack serve` with store=sqlite (durable) and store=none.
//
//   node tk103_ingest.js SEALTRACK_BIN [--frames N] [--conns M] [--kind alarm|position|both]
//
// The same bytes go to every server. Each of M connections sends: one BP05 login (IMEI + position
// block), then N/M body frames, then one BP00 handshake (a sentinel, not counted). Body frames:
//   alarm    — BO01 alarm code + full position block: answered (AS01) by both servers, so frames
//              delivered are counted exactly from the replies, with storage on or off;
//   position — BR00 position block: the message the peer decodes as a position ('ping'); neither
//              server answers it, so it is counted by the peer's handler and by sealtrack's
//              positions table (store=none: not observable from outside, printed as n/a).
// The load client writes each connection's bytes in chunks of random size (40..800 bytes; a frame
// is ~95 bytes): a chunk holds several frames and cuts one across two writes at almost every
// boundary. The peer's side also counts the reads it got whole, coalesced and cut.
//
// Peers run as published, plus once with a 20-line framer added by this harness in front of the
// peer's per-read parser (what a user of the package has to write): the fair rate comparison.
// A peer run or the sealtrack server runs in its own process; the load client runs here. All
// share the machine's cores. One line per run; figures only, nothing asserted.
'use strict';
const net = require('net');
const path = require('path');
const fs = require('fs');
const os = require('os');
const { spawn, fork, execFileSync } = require('child_process');

// ---------------------------------------------------------------- peer server (child process)
if (process.argv[2] === '--peer-server') {
    const framer = process.argv[3] === 'framer';
    const gps = require('gps-tracking');
    const st = { events: 0, logins: 0, pings: 0, alarms: 0, reads: 0, coalesced: 0, cut: 0,
                 exceptions: 0, first: 0, last: 0 };
    // As published, a read that starts inside a frame and holds a later "(…B…" throws
    // "Device ID is longer than 12 chars!" from the socket's 'data' listener: an uncaught
    // exception that ends the Node process. Count it and keep the process alive.
    process.on('uncaughtException', () => { st.exceptions++; });
    const seen = () => { st.events++; const t = Date.now(); if (!st.first) st.first = t; st.last = t; };
    const origLog = console.log; console.log = () => {}; // the peer's start banner
    const server = gps.server({ port: 0, device_adapter: 'TK103', debug: false }, (device, conn) => {
        device.on('login_request', function () { st.logins++; seen(); this.login_authorized(true); });
        device.on('ping', () => { st.pings++; seen(); });
        device.on('alarm', () => { st.alarms++; seen(); });
        // Observe what each read holds (the peer parses one frame per read).
        conn.prependListener('data', (d) => {
            st.reads++;
            let n = 0;
            for (let i = d.indexOf(0x29); i >= 0; i = d.indexOf(0x29, i + 1)) n++;
            if (n > 1) st.coalesced++;
            if (d[0] !== 0x28 || d[d.length - 1] !== 0x29) st.cut++;
        });
        if (framer) {
            // Harness-added framer: keep the bytes of a partial frame, hand the peer's device one
            // complete "(...)" frame at a time. Replaces the server's own per-read listener.
            const listeners = conn.listeners('data');
            conn.removeListener('data', listeners[listeners.length - 1]);
            let pending = null;
            conn.on('data', (d) => {
                let buf = pending ? Buffer.concat([pending, d]) : d;
                let start = 0;
                for (;;) {
                    const end = buf.indexOf(0x29, start);
                    if (end < 0) break;
                    conn.device.emit('data', buf.subarray(start, end + 1));
                    start = end + 1;
                }
                pending = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
            });
        }
    });
    console.log = origLog;
    server.server.on('listening', () => process.send({ port: server.server.address().port }));
    process.on('message', (m) => {
        if (m === 'stats') {
            const u = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
            st.cpu_s = (Number(u[11]) + Number(u[12])) / 100;
            process.send({ stats: st });
        }
    });
    return;
}

// ---------------------------------------------------------------- frames
function pad(n, w) { return String(n).padStart(w, '0'); }
// Fixed-width position block (docs/protocols/tk103.md): date A lat N lon E speed time course io L odo.
function block(i) {
    const s = i % 86400;
    const hh = pad(Math.floor(s / 3600), 2), mm = pad(Math.floor(s / 60) % 60, 2), ss = pad(s % 60, 2);
    const lat = (2555.3531 + (i % 1000) / 10000).toFixed(4).padStart(9, '0');
    const lon = (2855.3329 + (i % 997) / 10000).toFixed(4).padStart(10, '0');
    const odo = (0x9AA3 + i).toString(16).toUpperCase().padStart(8, '0');
    return `261124A${lat}S${lon}E004.7${hh}${mm}${ss}276.1701000000L${odo}`;
}
function buildStreams(kind, frames, conns) {
    const per = Math.floor(frames / conns);
    const streams = [];
    for (let c = 0; c < conns; c++) {
        const id = '0880' + pad(c, 8), imei = '35418' + pad(c, 10);
        const parts = [`(${id}BP05${imei}${block(c * per)})`];
        for (let k = 0; k < per; k++) {
            const b = block(c * per + k + 1);
            parts.push(kind === 'alarm' ? `(${id}BO012${b})` : `(${id}BR00${b})`);
        }
        parts.push(`(${id}BP00HSO)`);
        streams.push({ id, buf: Buffer.from(parts.join(''), 'latin1'), counted: per + 1 });
    }
    return streams;
}

// ---------------------------------------------------------------- load client
let seed = 12345;
function rnd(lo, hi) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return lo + (seed % (hi - lo + 1)); }

// Send every stream on its own connection and count the replies. `done` resolves when every
// connection got its sentinel reply, at the deadline, or when stop() is called.
function load(port, streams, deadlineMs) {
    const r = { t0: Date.now(), replies: 0, ap05: 0, as01: 0, hso: 0, writes: 0, done: 0, lastReply: 0, errors: 0 };
    let finished = false, resolveDone;
    const done = new Promise((res) => { resolveDone = res; });
    const socks = [];
    const stop = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        socks.forEach((s) => s.destroy());
        resolveDone(r);
    };
    const timer = setTimeout(stop, deadlineMs);
    for (const st of streams) {
        const s = net.connect(port, '127.0.0.1');
        socks.push(s);
        s.setNoDelay(true);
        let tail = '', off = 0;
        s.on('data', (d) => {
            const text = tail + d.toString('latin1');
            let start = 0;
            for (;;) {
                const e = text.indexOf(')', start);
                if (e < 0) break;
                const f = text.slice(start, e + 1);
                start = e + 1;
                r.replies++;
                r.lastReply = Date.now();
                if (f.includes('AP05')) r.ap05++;
                else if (f.includes('AS01')) r.as01++;
                else if (f.includes('AP01HSO')) { r.hso++; if (++r.done === streams.length) stop(); }
            }
            tail = text.slice(start);
        });
        s.on('error', () => { r.errors++; });
        const pump = () => {
            let burst = 0;
            while (off < st.buf.length) {
                const n = Math.min(rnd(40, 800), st.buf.length - off);
                const ok = s.write(st.buf.subarray(off, off + n));
                off += n;
                r.writes++;
                if (!ok) { s.once('drain', pump); return; }
                if (++burst === 16) { setImmediate(pump); return; } // interleave the connections
            }
        };
        s.on('connect', pump);
    }
    return { r, done, stop };
}

function cpuSeconds(pid) {
    const u = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const hz = Number(execFileSync('getconf', ['CLK_TCK']).toString());
    return (Number(u[11]) + Number(u[12])) / hz;
}
function freePort() {
    return new Promise((res) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
async function waitPort(port) {
    for (let i = 0; i < 100; i++) {
        const ok = await new Promise((res) => { const s = net.connect(port, '127.0.0.1'); s.on('connect', () => { s.destroy(); res(true); }); s.on('error', () => res(false)); });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('server did not start');
}

const fmt = (v, d = 0) => (typeof v === 'number' && isFinite(v) ? v.toFixed(d) : 'n/a');
function line(o) {
    return `tk103 ${o.kind} | ${o.who} | conns=${o.conns} sent=${o.sent} delivered=${fmt(o.delivered)} ` +
        `lost=${fmt(o.lost)} s=${fmt(o.secs, 3)} frames/s=${fmt(o.rate)} server_cpu_s=${fmt(o.cpu, 2)}` +
        (o.extra ? ' ' + o.extra : '');
}

async function runPeer(kind, streams, sent, conns, framer) {
    const child = fork(__filename, ['--peer-server', framer ? 'framer' : 'asis'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const port = await new Promise((res) => child.once('message', (m) => res(m.port)));
    const stats = () => new Promise((res) => { child.once('message', (m) => res(m.stats)); child.send('stats'); });
    const client = load(port, streams, 600000);
    // Stop when every counted frame arrived, or when the peer's counter has not moved for 2 s
    // (the time figure ends at the peer's last event, not at this wait).
    let st, prev = -1, still = 0;
    for (;;) {
        await new Promise((r) => setTimeout(r, 250));
        st = await stats();
        if (st.logins + st.pings + st.alarms >= sent) break;
        if (st.events === prev) { if (++still >= 8) break; } else { still = 0; prev = st.events; }
    }
    client.stop();
    child.kill();
    const delivered = st.logins + st.pings + st.alarms;
    const secs = ((st.last || Date.now()) - client.r.t0) / 1000;
    return { kind, who: framer ? 'gps-tracking@1.1.1 + harness framer' : 'gps-tracking@1.1.1 as published',
        conns, sent, delivered, lost: sent - delivered, secs, rate: delivered / secs, cpu: st.cpu_s,
        extra: `peer_reads=${st.reads} coalesced_reads=${st.coalesced} cut_reads=${st.cut} uncaught_exceptions=${st.exceptions}` };
}

async function runSealtrack(bin, store, kind, streams, sent, conns) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-peers-'));
    const db = path.join(dir, 'bench.db');
    const port = await freePort();
    const srv = spawn(bin, ['serve', '--listen', '127.0.0.1', '--port', String(port), '--http-port', '0', '--db', db,
        '--set', `store=${store}`, '--set', 'log_level=warn'],
        { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'server.log'), 'w')] });
    await waitPort(port);
    const client = load(port, streams, 120000);
    const r = await client.done;
    const cpu = cpuSeconds(srv.pid);
    srv.kill('SIGTERM');
    await new Promise((res) => srv.once('exit', res));
    const all = r.done === streams.length;
    const secs = ((all ? r.lastReply : Date.now()) - r.t0) / 1000;
    let delivered = NaN, counted;
    if (kind === 'alarm') { delivered = r.ap05 + r.as01; counted = 'replies'; }
    let rows = NaN;
    if (store === 'sqlite') {
        rows = Number(execFileSync('python3', ['-c',
            'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from positions").fetchone()[0])', db]).toString());
        if (kind === 'position') { delivered = rows; counted = 'positions_table'; }
    }
    if (!counted) counted = 'none(BR00_unanswered_and_not_stored;frames/s=sent/s_to_last_sentinel_reply)';
    const log = fs.readFileSync(path.join(dir, 'server.log'), 'utf8').split('\n').filter((l) => l && !l.includes('event=store_none'));
    fs.rmSync(dir, { recursive: true, force: true });
    return { kind, who: `sealtrack store=${store}`, conns, sent, delivered, lost: sent - delivered, secs,
        rate: (isFinite(delivered) ? delivered : (all ? sent : NaN)) / secs, cpu,
        extra: `counted_by=${counted}` + (store === 'sqlite' ? ` positions_rows=${rows}` : '') +
            ` sentinel_replies=${r.hso}/${streams.length} server_warnings=${log.length}` };
}

async function main() {
    const args = process.argv.slice(2);
    const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
    const bin = args[0];
    const frames = Number(opt('--frames', 200000)), conns = Number(opt('--conns', 100));
    const kinds = opt('--kind', 'both') === 'both' ? ['alarm', 'position'] : [opt('--kind')];
    if (!bin || bin.startsWith('--') || !fs.existsSync(bin)) {
        console.error('usage: tk103_ingest.js SEALTRACK_BIN [--frames N] [--conns M] [--kind alarm|position|both]');
        process.exit(2);
    }
    for (const kind of kinds) {
        const streams = buildStreams(kind, frames, conns);
        const sent = streams.reduce((a, s) => a + s.counted, 0);
        const asis = await runPeer(kind, streams, sent, conns, false);
        console.log(line(asis));
        const framed = await runPeer(kind, streams, sent, conns, true);
        console.log(line(framed));
        for (const store of ['sqlite', 'none']) {
            const o = await runSealtrack(bin, store, kind, streams, sent, conns);
            o.extra += ` ratio_vs_peer_framer=${fmt(o.rate / framed.rate, 2)} ratio_vs_peer_as_published=${fmt(o.rate / asis.rate, 2)}`;
            console.log(line(o));
        }
    }
}
main().catch((e) => { console.error(e); process.exit(1); });
