#!/usr/bin/env node
// Shim over the compiled code (npm ci builds it through the "prepare" script). `holdfast connect`
// (the ProxyCommand helper) loads only what it needs: no server, no ssh2, no native addon.
if (process.argv[2] === 'connect') {
  const { runConnectMain } = await import('../dist/src/cli/connect.js');
  runConnectMain(process.argv.slice(2));
} else {
  const { run } = await import('../dist/src/cli/main.js');
  run();
}
