#!/usr/bin/env node
// decode.js — decode-only frames/s on one core: npm `gt06` on GT06 frames and
// `complete-teltonika-parser` on Teltonika Codec 8 frames, against sealtrack's
// `decode_bench <protocol> <hex>` (frame + decode + reply, release build) on the same frames.
//
//   node decode.js BUILD_DIR [--seconds S]
//
// Frames: every frame-layer row of tests/vectors/gt06.tsv / teltonika.tsv that the peer parses
// (the peer's own supported message types: gt06 0x01 login, 0x12 location, 0x13 status, 0x16
// alarm; the Teltonika parser's Codec 8 rows). Rows the peer throws on are listed, not timed.
// Peer inputs are what its API takes: a Buffer for gt06 (one parser object reused, its message
// buffer cleared each time, as its README does), a hex string for complete-teltonika-parser
// (prepared once outside the timed loop, in the peer's favour). Figures only, nothing asserted.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const Gt06 = require('gt06');
const { ProtocolParser } = require('complete-teltonika-parser');

const root = path.join(__dirname, '..', '..');
const args = process.argv.slice(2);
const build = args[0] && !args[0].startsWith('--') ? args[0] : 'build-release';
const si = args.indexOf('--seconds');
const seconds = si >= 0 ? Number(args[si + 1]) : 1;
const bench = path.resolve(root, build, 'decode_bench');

function rows(file) {
    const lines = fs.readFileSync(path.join(root, 'tests/vectors', file), 'utf8').trim().split('\n');
    const head = lines.shift().split('\t');
    return lines.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [head[i], v])))
        .filter((r) => r.layer === 'frame' && r.format === 'hex');
}

// Run fn repeatedly for about `seconds`; frames/s of the best of 3 rounds (after a warm-up).
function rate(fn) {
    for (let i = 0; i < 20000; i++) fn();
    let best = 0;
    for (let round = 0; round < 3; round++) {
        let n = 0;
        const t0 = process.hrtime.bigint();
        const end = t0 + BigInt(Math.round(seconds * 1e9 / 3));
        let t = t0;
        while (t < end) {
            for (let i = 0; i < 1000; i++) fn();
            n += 1000;
            t = process.hrtime.bigint();
        }
        best = Math.max(best, n / (Number(t - t0) / 1e9));
    }
    return best;
}

function sealtrack(proto, hex) {
    try {
        const out = execFileSync(bench, [proto, hex], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        const m = out.match(/([0-9]+) frames\/s/);
        return m ? Number(m[1]) : NaN;
    } catch { return NaN; }
}

const peers = [
    { file: 'gt06.tsv', proto: 'gt06', peer: 'gt06@' + require('gt06/package.json').version,
      prepare: (hex) => {
          const buf = Buffer.from(hex, 'hex');
          const g = new Gt06();
          return () => { g.parse(buf); g.clearMsgBuffer(); };
      } },
    { file: 'teltonika.tsv', proto: 'teltonika',
      peer: 'complete-teltonika-parser@' + require('complete-teltonika-parser/package.json').version,
      only: (hex) => hex.length > 18 && hex.slice(16, 18) === '08', // Codec 8
      prepare: (hex) => {
          const s = hex.toLowerCase();
          return () => {
              const p = new ProtocolParser(s);
              if (!p.Content) throw new Error('not parsed');
          };
      } },
];

const hm = (a) => a.length / a.reduce((x, y) => x + 1 / y, 0);
for (const P of peers) {
    const peerRates = [], stRates = [], skipped = [];
    for (const r of rows(P.file)) {
        const hex = r.message;
        if (P.only && !P.only(hex)) continue;
        let fn;
        try { fn = P.prepare(hex); fn(); } catch (e) { skipped.push(r.vector_id); continue; }
        const st = sealtrack(P.proto, hex);
        if (!isFinite(st)) { skipped.push(r.vector_id + '(sealtrack)'); continue; }
        const pr = rate(fn);
        peerRates.push(pr); stRates.push(st);
        console.log(`decode ${P.proto} ${r.vector_id} ${hex.length / 2} B | ${P.peer} ${pr.toFixed(0)} frames/s | ` +
            `sealtrack ${st} frames/s | ratio ${(st / pr).toFixed(2)}`);
    }
    if (peerRates.length) {
        const a = hm(peerRates), b = hm(stRates);
        console.log(`decode ${P.proto} ALL ${peerRates.length} frames (harmonic mean) | ${P.peer} ${a.toFixed(0)} frames/s | ` +
            `sealtrack ${b.toFixed(0)} frames/s | ratio ${(b / a).toFixed(2)}` +
            (skipped.length ? ` | not parsed by the peer: ${skipped.join(' ')}` : ''));
    }
}
