import os from 'node:os';
import { expect } from 'chai';
import { stateDir } from '../../src/config/paths.js';
import { TEST_HOME } from '../helpers/isolate.js';

describe('tests leave the real home alone', function () {
  it('HOME and holdfast\'s state directory point into the run\'s temporary folder', function () {
    expect(TEST_HOME).to.match(/holdfast-test-home-/);
    expect(os.homedir()).to.equal(TEST_HOME);
    expect(stateDir().startsWith(TEST_HOME)).to.equal(true);
  });
});
