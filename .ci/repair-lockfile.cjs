#!/usr/bin/env node
// Usage: node .ci/repair-lockfile.cjs package-lock.json <names npm ci reports as "Missing: NAME@ from lock file">
// One-time repair: npm here cannot fetch some platform-only optional packages, so it leaves
// them out of the lockfile, and `npm ci` then refuses the lockfile. Record them (optional,
// with their os/cpu) so npm ci sees a complete lockfile and skips them on this platform.
const fs = require('fs');
const [lockPath, ...missing] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const pkgs = lock.packages;
const OS = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32'];
const CPU = { 'arm64': 'arm64', 'x64': 'x64', 'ia32': 'ia32', 'arm': 'arm', 'ppc64': 'ppc64', 's390x': 's390x', 'riscv64': 'riscv64', 'loong64': 'loong64' };
for (const name of missing) {
  let version = null, dev = false;
  for (const [path, entry] of Object.entries(pkgs)) {
    const spec = entry.optionalDependencies && entry.optionalDependencies[name];
    if (spec) { version = spec; dev = !!entry.dev; break; }
  }
  if (!version) { console.error('no parent for', name); process.exit(1); }
  const parts = name.split('/')[1].split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.map((p) => (p === 'eabi' ? null : p)).find((p) => p && CPU[p.replace(/gnueabihf|musleabihf/, '')]);
  const entry = { version, dev: dev || undefined, optional: true, os: os ? [os] : undefined, cpu: cpu ? [CPU[cpu]] : undefined };
  if (name.includes('musl')) entry.libc = ['musl'];
  else if (os === 'linux') entry.libc = ['glibc'];
  pkgs[`node_modules/${name}`] = JSON.parse(JSON.stringify(entry));
}
const sorted = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)));
lock.packages = sorted;
fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log('recorded', missing.length);
