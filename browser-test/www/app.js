// Plays video.mp4 (fragmented MP4, `cenc` scheme, common-system pssh) through Media Source
// Extensions and Encrypted Media Extensions with the browser's own `org.w3.clearkey` CDM; the
// license comes from our license server at /clearkey/license (same origin).
//
// Query parameters (run.mjs's tee-cdm mode): `keySystem` (default `org.w3.clearkey`; our
// library CDM is loaded as `org.chromium.externalclearkey`) and `media` (default
// `video.mp4`; e.g. `video-cbcs.mp4`).
//
// Progress is published on `window.result` for the driver (run.mjs):
//   { state, currentTime, frames, licenseRequests, keyStatuses, error, log }
// `error` is set (and stays set) on the first failure.
'use strict';

// Must match the encoded video (make-media.sh: H.264 Main profile, level 3.0).
const MIME = 'video/mp4; codecs="avc1.4d401e"';
const params = new URLSearchParams(location.search);
const KEY_SYSTEM = params.get('keySystem') || 'org.w3.clearkey';
const MEDIA_URL = params.get('media') || 'video.mp4';
const LICENSE_URL = '/clearkey/license';

const video = document.getElementById('video');
const result = {
  state: 'starting',
  currentTime: 0,
  frames: 0,
  licenseRequests: 0,
  keyStatuses: [],
  error: null,
  log: [],
};
window.result = result;

function log(msg) {
  const line = `${(performance.now() / 1000).toFixed(3)} ${msg}`;
  result.log.push(line);
  document.getElementById('log').textContent += line + '\n';
}

function fail(where, err) {
  const msg = `${where}: ${err && err.name ? err.name + ': ' : ''}${err && err.message ? err.message : err}`;
  if (!result.error) result.error = msg;
  result.state = 'failed';
  log('ERROR ' + msg);
  document.getElementById('status').textContent = 'FAILED: ' + msg;
}

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function sample() {
  result.currentTime = video.currentTime;
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
  result.frames = q ? q.totalVideoFrames : 0;
  if (!result.error) {
    document.getElementById('status').textContent =
      `${result.state}: t=${result.currentTime.toFixed(2)} s, frames=${result.frames}, ` +
      `license requests=${result.licenseRequests}`;
  }
}
setInterval(sample, 100);

// The session's "message" carries the Clear Key license request (EME §9.1.3: JSON
// {"kids": [...], "type": "temporary"}); the server answers a JWK Set (EME §9.1.4), which
// goes to update() as is.
async function onMessage(event) {
  const session = event.target;
  try {
    log(`message: ${event.messageType}, ${event.message.byteLength} bytes`);
    result.licenseRequests += 1;
    const resp = await fetch(LICENSE_URL, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: event.message,
    });
    if (!resp.ok) {
      throw new Error(`license server answered ${resp.status} ${resp.statusText}: ${await resp.text()}`);
    }
    const license = await resp.arrayBuffer();
    log(`license: ${license.byteLength} bytes`);
    await session.update(license);
    log('session.update resolved');
  } catch (e) {
    fail('license', e);
  }
}

function onKeyStatusesChange(event) {
  const statuses = [];
  event.target.keyStatuses.forEach((status, kid) => statuses.push(`${hex(kid)}=${status}`));
  result.keyStatuses = statuses;
  log('keystatuseschange: ' + statuses.join(', '));
}

// "encrypted" event: the media element found a pssh in the init segment; its init data
// (initDataType "cenc": the pssh boxes) starts a temporary session.
const seenInitData = new Set();
async function onEncrypted(event) {
  try {
    const key = event.initDataType + ':' + hex(event.initData);
    log(`encrypted: initDataType=${event.initDataType}, ${event.initData.byteLength} bytes`);
    if (seenInitData.has(key)) return; // same pssh seen again: one session is enough
    seenInitData.add(key);
    const session = video.mediaKeys.createSession('temporary');
    session.addEventListener('message', onMessage);
    session.addEventListener('keystatuseschange', onKeyStatusesChange);
    await session.generateRequest(event.initDataType, event.initData);
    log('generateRequest resolved');
  } catch (e) {
    fail('encrypted', e);
  }
}

function appendOnce(sourceBuffer, data) {
  return new Promise((resolve, reject) => {
    sourceBuffer.addEventListener('updateend', () => resolve(), { once: true });
    sourceBuffer.addEventListener('error', () => reject(new Error('SourceBuffer error')), { once: true });
    sourceBuffer.appendBuffer(data);
  });
}

async function main() {
  if (!window.isSecureContext) throw new Error('not a secure context (EME needs one)');
  if (!window.MediaSource || !MediaSource.isTypeSupported(MIME)) {
    throw new Error(`MSE does not support ${MIME}`);
  }

  // MediaKeys are attached before any media arrives, so the "encrypted" event can start a
  // session at once and the decoder waits for the key rather than failing.
  const access = await navigator.requestMediaKeySystemAccess(KEY_SYSTEM, [{
    initDataTypes: ['cenc'],
    videoCapabilities: [{ contentType: MIME }],
  }]);
  log(`requestMediaKeySystemAccess: ${access.keySystem}`);
  const mediaKeys = await access.createMediaKeys();
  await video.setMediaKeys(mediaKeys);
  log('setMediaKeys resolved');

  video.addEventListener('encrypted', onEncrypted);
  video.addEventListener('waitingforkey', () => log('waitingforkey'));
  video.addEventListener('playing', () => { result.state = 'playing'; log('playing'); });
  video.addEventListener('error', () => {
    const e = video.error;
    fail('video', new Error(e ? `MediaError ${e.code}: ${e.message}` : 'unknown media error'));
  });

  const mediaSource = new MediaSource();
  const opened = new Promise((resolve) =>
    mediaSource.addEventListener('sourceopen', resolve, { once: true }));
  video.src = URL.createObjectURL(mediaSource);
  await opened;
  const sourceBuffer = mediaSource.addSourceBuffer(MIME);

  const resp = await fetch(MEDIA_URL);
  if (!resp.ok) throw new Error(`GET ${MEDIA_URL}: ${resp.status}`);
  const data = await resp.arrayBuffer();
  log(`media: ${data.byteLength} bytes`);
  await appendOnce(sourceBuffer, data);
  mediaSource.endOfStream();
  log(`appended; buffered ${sourceBuffer.buffered.length ? sourceBuffer.buffered.end(0).toFixed(2) : 0} s`);

  result.state = 'loaded';
  await video.play();
  log('play() resolved');
}

main().catch((e) => fail('setup', e));
