// Mocha's settings. HOLDFAST_TESTS picks the files: "all" (npm test, the default), "unit"
// (npm run test:unit) or "smoke" (npm run test:smoke: the unit tests and the integration files
// closest to the Node runtime: native crypto, cluster upgrades, TCP options, node:crypto
// certificate checks; .ci/run uses it on Node 22). Files named on the command line are added to
// these, so run a single file with: npx mocha --no-config --require dist/test/helpers/isolate.js FILE
const unit = ['dist/test/unit/**/*.test.js'];
const sets = {
  all: [...unit, 'dist/test/integration/**/*.test.js'],
  unit,
  smoke: [
    ...unit,
    ...['jump', 'compat', 'gateway', 'keepalive-loopback', 'certificates', 'upgrade', 'serve'].map(
      (name) => `dist/test/integration/${name}.test.js`,
    ),
  ],
};
const set = process.env.HOLDFAST_TESTS || 'all';
if (!sets[set]) throw new Error(`HOLDFAST_TESTS=${set}: use one of ${Object.keys(sets).join(', ')}`);

module.exports = {
  spec: sets[set],
  // Files run in 4 worker processes: most of the suite waits on timers and peers.
  parallel: true,
  jobs: 4,
  timeout: 60000,
  slow: 5000,
  reporter: 'spec',
  exit: false,
  require: ['dist/test/helpers/isolate.js'],
};
