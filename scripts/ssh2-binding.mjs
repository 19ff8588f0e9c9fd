// postinstall, after patch-package. ssh2 builds its native crypto binding in its own install script,
// which npm runs before this package's postinstall, so before patches/ssh2+1.17.0.patch is applied to
// binding.cc. Build it once more from the patched source when patch-package has just rewritten
// binding.cc (newer than the built binding) or when the first build did not load:
// - every Node: the binding's objects derive from Nan::ObjectWrap, not node::ObjectWrap (since Node 24
//   its destructor can abort the process when a GC collects a cipher; see the patch);
// - Node 26: V8 14 removed Context::GetIsolate(), which the unpatched binding.cc calls, so the first
//   build fails.
// Nothing happens when the binding is already built from the patched source (a second npm install).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ssh2 = path.dirname(require.resolve('ssh2/package.json'));
const source = path.join(ssh2, 'lib/protocol/crypto/src/binding.cc');
const built = path.join(ssh2, 'lib/protocol/crypto/build/Release/sshcrypto.node');

const loads = () =>
  spawnSync(process.execPath, ['-e', "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)"], { stdio: 'ignore' }).status === 0;
const mtime = (file) => (fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0);
const patched = fs.readFileSync(source, 'utf8').includes('public Nan::ObjectWrap');

if (!loads() || (patched && mtime(source) > mtime(built))) {
  console.log("holdfast: building ssh2's native crypto binding from the patched source");
  // ssh2's install.js runs node-gyp, which npm puts on PATH for install scripts. Its compiler output
  // is shown only when the binding does not load afterwards.
  const build = spawnSync(process.execPath, ['install.js'], { cwd: ssh2, encoding: 'utf8' });
  if (!loads()) {
    process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}`);
    console.warn("holdfast: ssh2's native crypto binding is not built, so AES-GCM runs about 7x slower. Install g++, make and python3, then run: npm rebuild ssh2");
  }
}
