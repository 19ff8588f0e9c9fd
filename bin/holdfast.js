#!/usr/bin/env node
// Shim over the compiled code (npm ci builds it through the "prepare" script).
import { run } from '../dist/src/cli/main.js';

run();
