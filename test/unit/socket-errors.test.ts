/**
 * Issue 22: no network peer can reach an uncaught exception. An 'error' event on an emitter with no
 * listener throws, so every socket, server and ssh2 Client that holdfast creates must have an error
 * listener from the moment it exists. This sweep reads src/ and fails when a new place that creates
 * one has no listener close by (or, for an accept callback, in the first lines of its handler).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ROOT } from '../helpers/holdfast.js';

const CREATES = /\b(net\.connect|net\.createConnection|tls\.connect|new (?:net\.)?Socket|(?:net|http|https|tls)\.createServer|new Client)\(/;
const LISTENS = /\.(?:on|once|prependListener)\('(?:error|clientError)'/;
/** How far after the line that creates it the listener may be attached (same synchronous block). */
const NEAR = 40;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('every socket has its error handled from the moment it exists (src/ sweep)', function () {
  const sites: { file: string; line: number; text: string; ok: boolean }[] = [];
  for (const file of sources(path.join(ROOT, 'src'))) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      if (/^\s*(\*|\/\/)/.test(text) || !CREATES.test(text)) return;
      let ok = lines.slice(i, i + NEAR).some((l) => LISTENS.test(l));
      // An accept callback written inline: its socket listens first thing (the server's own 'error'
      // listener close by is not the socket's).
      const inline = /createServer\(.*\((\w+)\) => \{$/.exec(text);
      if (inline) ok = lines.slice(i + 1, i + 8).some((l) => l.includes(`${inline[1]}.on('error'`));
      // An accept callback handing the socket to a method: that method must listen first thing.
      const handler = /\((\w+)\) => this\.(\w+)\(\1/.exec(text);
      if (handler) {
        const at = lines.findIndex((l) => new RegExp(`^\\s*(?:private |public )?${handler[2]}\\(${handler[1]}\\b`).test(l));
        ok = at >= 0 && lines.slice(at, at + 8).some((l) => l.includes(`${handler[1]}.on('error'`));
      }
      sites.push({ file: path.relative(ROOT, file), line: i + 1, text: text.trim(), ok });
    });
  }

  it('finds the places that create sockets (the sweep itself works)', function () {
    expect(sites.map((s) => s.file)).to.include.members(['src/ingress/listen.ts', 'src/legs/tcp-upstream.ts', 'src/legs/ssh-dial.ts', 'src/daemon/admin.ts']);
  });

  it('each of them attaches an error listener at once', function () {
    expect(sites.filter((s) => !s.ok).map((s) => `${s.file}:${s.line} ${s.text}`)).to.deep.equal([]);
  });
});
