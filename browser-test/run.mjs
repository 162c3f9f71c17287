// Browser interoperability check: headless Chromium plays a Clear Key protected fragmented MP4
// (www/index.html, MSE + EME with the browser's own `org.w3.clearkey` CDM) and gets its
// license from OUR license server, which also serves the page and the media (same origin, on
// http://127.0.0.1: a secure context, as EME requires).
//
// Passes when the video's currentTime passes MIN_TIME, frames were decoded, and the server's
// /metrics counts at least one temporary license request. Prints one summary line; exits 1
// with a reason on any failure. The server, the browser and the temporary files are always
// cleaned up.
//
// Environment: LICENSE_SERVER_BIN (default <repo>/target/release/license-server), CHROMIUM
// (default /usr/bin/chromium), TIMEOUT_MS (default 60000). Media: out/video.mp4 and
// out/video-cbcs.mp4 from make-media.sh.
//
// tee-cdm mode (TEE_CDM_LIB=/abs/path/libtee_cdm_chromium.so): Chromium loads OUR library CDM
// (--enable-features=ExternalClearKeyForTesting --clear-key-cdm-path-for-testing=…) and the
// page asks for key system `org.chromium.externalclearkey`, which that flag gives to it.
// Besides playback it then asserts that our CDM decrypted samples: the CDM writes its counters
// to the file named by TEE_CDM_STATS (set here, inherited by Chromium's CDM process).
// SCHEME=cenc|cbcs picks the media. WRONG_KEY=1 is the negative control: the license server
// holds a wrong key for the KID, and the run passes only if playback FAILS its assertions
// (within NEGATIVE_TIMEOUT_MS, default 15000).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

// TEST-ONLY key pair, public in this repository; must match make-media.sh.
const KID = '0123456789abcdef0123456789abcdef';
const KEY = '2b7e151628aed2a6abf7158809cf4f3c';

const MIN_TIME = 1.0;
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || 60000);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const serverBin = process.env.LICENSE_SERVER_BIN || join(repo, 'target/release/license-server');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const teeCdmLib = process.env.TEE_CDM_LIB || '';
const scheme = process.env.SCHEME || 'cenc';
const wrongKey = process.env.WRONG_KEY === '1';
const mediaName = { cenc: 'video.mp4', cbcs: 'video-cbcs.mp4' }[scheme];
const media = join(here, 'out', mediaName || 'video.mp4');
// TEST-ONLY: not the key of KID (the negative control's license).
const WRONG = '00112233445566778899aabbccddeeff';
const label = teeCdmLib ? `tee-cdm ${scheme}${wrongKey ? ' wrong-key' : ''}` : 'browser-test';

class Failure extends Error {}

let server = null;
let serverOutput = '';
let context = null;
const scratch = mkdtempSync(join(tmpdir(), 'tee-cdm-browser-'));
const statsFile = join(scratch, 'tee-cdm-stats.txt');

async function cleanup() {
  if (context) await context.close().catch(() => {});
  context = null;
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((res) => server.once('exit', res));
    server.kill('SIGTERM');
    const timer = setTimeout(() => server.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(scratch, { recursive: true, force: true });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup().finally(() => process.exit(1));
  });
}

// Starts `license-server serve` and resolves with the address from its
// `listening on 127.0.0.1:PORT` line (stdout or stderr).
function startServer(db, staticDir) {
  return new Promise((res, rej) => {
    server = spawn(serverBin, ['serve', '--addr', '127.0.0.1:0', '--db', db, '--static', staticDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    const timer = setTimeout(() => rej(new Failure(`license-server printed no "listening on" line in 20 s:\n${serverOutput}`)), 20000);
    const onData = (chunk) => {
      // Colour codes stripped, in case a log formatter adds them.
      serverOutput += chunk.toString().replace(/\x1b\[[0-9;]*m/g, '');
      const m = serverOutput.match(/listening on\b[^\n]*?(127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.once('error', (e) => { clearTimeout(timer); rej(new Failure(`cannot start ${serverBin}: ${e.message}`)); });
    server.once('exit', (code, signal) => {
      clearTimeout(timer);
      rej(new Failure(`license-server exited early (${signal || code}):\n${serverOutput}`));
    });
  });
}

// The value of license_requests_total{type="temporary"} in Prometheus text, or 0 if absent.
function temporaryLicenseRequests(metrics) {
  for (const line of metrics.split('\n')) {
    const m = line.match(/^license_requests_total\{([^}]*)\}\s+([0-9.eE+-]+)/);
    if (m && /(^|,)\s*type="temporary"/.test(m[1])) return Number(m[2]);
  }
  return 0;
}

// The counters our CDM wrote (`key value` lines), or {} if it wrote none.
function readStats(path) {
  const stats = {};
  if (!existsSync(path)) return stats;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) stats[line.slice(0, i)] = line.slice(i + 1);
  }
  return stats;
}

async function main() {
  if (!mediaName) throw new Failure(`SCHEME=${scheme}: cenc or cbcs`);
  if (teeCdmLib && !existsSync(teeCdmLib)) throw new Failure(`${teeCdmLib} not found (cargo build --release -p chromium-cdm)`);
  if (!existsSync(serverBin)) throw new Failure(`${serverBin} not found (cargo build --release -p license-server, or set LICENSE_SERVER_BIN)`);
  if (!existsSync(chromiumBin)) throw new Failure(`${chromiumBin} not found (apt-get install chromium, or set CHROMIUM)`);
  if (!existsSync(media)) throw new Failure(`${media} not found (run make-media.sh)`);

  // The page and the media side by side: the server serves them at /.
  const staticDir = join(scratch, 'www');
  cpSync(join(here, 'www'), staticDir, { recursive: true });
  copyFileSync(media, join(staticDir, mediaName));

  const db = join(scratch, 'licenses.db');
  const imp = spawnSync(serverBin, ['import', '--db', db, `${KID}:${wrongKey ? WRONG : KEY}`], { encoding: 'utf8' });
  if (imp.error || imp.status !== 0) {
    throw new Failure(`license-server import failed (${imp.error ? imp.error.message : `exit ${imp.status}`}):\n${imp.stdout}${imp.stderr}`);
  }

  const addr = await startServer(db, staticDir);
  const base = `http://${addr}`;

  // Playwright gives the browser --user-data-dir itself (a fresh directory under scratch).
  // --no-sandbox also lifts the sandbox of the utility process our CDM runs in, which would
  // otherwise forbid it to start its secure-world-host process (and to write TEE_CDM_STATS).
  const extraArgs = teeCdmLib
    ? ['--enable-features=ExternalClearKeyForTesting', `--clear-key-cdm-path-for-testing=${resolve(teeCdmLib)}`]
    : [];
  context = await chromium.launchPersistentContext(join(scratch, 'profile'), {
    executablePath: chromiumBin,
    headless: true,
    env: { ...process.env, TEE_CDM_STATS: statsFile },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      ...extraArgs,
    ],
  });
  const browserVersion = context.browser() ? context.browser().version() : 'chromium';
  const page = context.pages()[0] || (await context.newPage());
  const consoleLines = [];
  page.on('console', (msg) => consoleLines.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));

  const query = teeCdmLib ? `?keySystem=org.chromium.externalclearkey&media=${mediaName}` : `?media=${mediaName}`;
  await page.goto(`${base}/index.html${query}`);
  const timeout = wrongKey ? Number(process.env.NEGATIVE_TIMEOUT_MS || 15000) : TIMEOUT_MS;
  let outcome;
  try {
    const handle = await page.waitForFunction(
      (minTime) => {
        const r = window.result;
        if (!r) return false;
        if (r.error) return r;
        return r.currentTime > minTime && r.frames > 0 ? r : false;
      },
      MIN_TIME,
      { timeout, polling: 100 },
    );
    outcome = await handle.jsonValue();
  } catch (e) {
    const r = await page.evaluate(() => window.result).catch(() => null);
    throw new Failure(`playback did not reach ${MIN_TIME} s within ${timeout} ms (${e.message.split('\n')[0]}); page state:\n` +
      `${JSON.stringify(r, null, 2)}\n${consoleLines.join('\n')}`);
  }
  if (outcome.error) {
    throw new Failure(`page reported an error: ${outcome.error}\n${outcome.log.join('\n')}\n${consoleLines.join('\n')}`);
  }

  const resp = await fetch(`${base}/metrics`);
  if (!resp.ok) throw new Failure(`GET /metrics: ${resp.status}`);
  const metrics = await resp.text();
  const requests = temporaryLicenseRequests(metrics);
  if (!(requests >= 1)) {
    throw new Failure(`license server counted no temporary license request; /metrics:\n${metrics}`);
  }

  let cdmSummary = '';
  if (teeCdmLib) {
    const stats = readStats(statsFile);
    const decrypted = Number(stats.decrypted_samples || 0);
    if (!(decrypted > 0)) {
      throw new Failure(`our CDM decrypted no sample; its counters: ${JSON.stringify(stats)}`);
    }
    cdmSummary = `, tee-cdm decrypted_samples=${decrypted} failed_samples=${stats.failed_samples}, ` +
      `secure world: ${stats.transport}, CreateCdmInstance asked for interface ${stats.interface_versions_asked}`;
  }
  console.log(
    `${label}: PASS ${browserVersion}: currentTime=${outcome.currentTime.toFixed(2)} s, ` +
    `frames=${outcome.frames}, key ${outcome.keyStatuses.join(' ')}, ` +
    `license_requests_total{type="temporary"}=${requests}${cdmSummary}`,
  );
}

let status = 0;
try {
  await main();
  if (wrongKey) {
    status = 1;
    console.error(`${label}: FAIL: the negative control played with a wrong key`);
  }
} catch (e) {
  // The negative control passes only when playback failed WITH our CDM in use (it counted
  // samples): a CDM that never loaded must not count as a pass.
  const stats = readStats(statsFile);
  const used = Number(stats.decrypted_samples || 0) + Number(stats.failed_samples || 0) > 0;
  if (wrongKey && e instanceof Failure && used) {
    console.log(`${label}: PASS (negative control): playback failed as it must, after our CDM ` +
      `handled ${stats.decrypted_samples} samples (counters ${JSON.stringify(stats)}): ${e.message.split('\n')[0]}`);
  } else {
    status = 1;
    const why = wrongKey && !used ? ' (negative control: our CDM handled no sample)' : '';
    console.error(`${label}: FAIL${why}: ${e instanceof Failure ? e.message : e.stack}`);
    if (server && serverOutput) {
      console.error(`--- license-server output (last 40 lines) ---\n${serverOutput.trimEnd().split('\n').slice(-40).join('\n')}`);
    }
  }
} finally {
  await cleanup();
}
process.exit(status);
