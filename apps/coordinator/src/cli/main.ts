#!/usr/bin/env node
// TypeORM (migrate) and Nest (start) read decorator metadata through it.
import 'reflect-metadata';
import { runCli } from './run.js';

void runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
}).then((code) => {
  // Success ends when nothing is left to do (stdout flushed; `start` lives on with its server).
  process.exitCode = code;
  // A failure ends now, once its line is out: a coordinator that failed to start may hold
  // handles open, and the embedded Postgres's exit hook would turn the end into exit code 0.
  if (code !== 0) process.stderr.write('', () => process.exit(code));
});
