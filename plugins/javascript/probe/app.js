// probe, in JavaScript: checks that HTTP endpoints answer. On its
// schedule (extension.toml) it probes the URLs of its `targets` setting;
// `invoke probe URL…` probes those instead. Each target's status code and
// time go into the document the cloud sees; the status says how many are
// up, and names the ones down with how many probes in a row they failed
// (kept in the key-value store). Only origins the manifest declares and
// the operator allows are reached: the others are reported down, with the
// host's reason.

import * as tether from './tether-sdk.js';

function probeOne(url) {
  const started = Date.now();
  try {
    const response = tether.http.get(url);
    return {
      url,
      up: response.status >= 200 && response.status < 400,
      status: response.status,
      ms: Date.now() - started,
      bytes: response.body.length,
    };
  } catch (e) {
    return { url, up: false, error: e.code ? `${e.code}: ${e.detail}` : String(e), ms: Date.now() - started };
  }
}

function probe(args) {
  const targets = args.length ? args : tether.settings.get('targets', []);
  if (!Array.isArray(targets) || targets.length === 0) {
    throw new tether.TetherError('invalid-argument', 'give URLs, or the `targets` setting (a list of URLs)');
  }
  const results = targets.map(probeOne);
  for (const r of results) {
    const key = `down:${r.url}`;
    if (r.up) {
      tether.kv.delete(key);
    } else {
      r.downInARow = Number(tether.kv.get(key, '0')) + 1;
      tether.kv.set(key, String(r.downInARow));
    }
  }
  const down = results.filter((r) => !r.up);
  const summary = `${results.length - down.length}/${results.length} up`;
  if (down.length) {
    tether.status.warning(`${summary}; down: ${down.map((r) => `${r.url} (${r.downInARow}x)`).join(', ')}`);
  } else {
    tether.status.success(summary);
  }
  const document = { time: new Date().toISOString(), results };
  tether.reportDocument(document);
  return document;
}

export const lifecycle = tether.extension({
  commands: { probe },
});
