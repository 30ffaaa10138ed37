// Tether's JavaScript SDK: a thin layer over the contract's imports
// (`wit/extension.wit`), as componentize-js exposes them.
//
//   import * as tether from './tether-sdk.js';
//
//   export const lifecycle = tether.extension({
//     enable() { tether.status.success('ready'); },
//     commands: {
//       greet: (args) => `hello ${tether.settings.get('name', 'world')}`,
//     },
//   });
//
// `tether-ext build` writes this file beside app.js: the SDK the tool
// carries, for the contract it was made for. Throwing
// `new tether.TetherError(code, message)` fails the call with that code.

import * as host from 'tether:extension/host@0.2.0';
import { send } from 'tether:extension/outbound-http@0.2.0';

export class TetherError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
    this.detail = message;
  }
}

// The host's failures arrive as thrown `{ code, message }` payloads.
function rethrow(e) {
  const payload = e && e.payload !== undefined ? e.payload : e;
  if (payload && typeof payload.code === 'string') {
    throw new TetherError(payload.code, payload.message);
  }
  throw e;
}

function jsonSettings(read) {
  return {
    /** The setting `key`, decoded from JSON, or `fallback`. */
    get(key, fallback = undefined) {
      const raw = read(key);
      return raw === undefined || raw === null ? fallback : JSON.parse(raw);
    },
    has(key) {
      const raw = read(key);
      return raw !== undefined && raw !== null;
    },
  };
}

export const settings = jsonSettings(host.setting);
export const protectedSettings = jsonSettings(host.protectedSetting);

/** The extension's private store: string keys to string values. */
export const kv = {
  get(key, fallback = undefined) {
    const value = host.kvGet(key);
    return value === undefined || value === null ? fallback : value;
  },
  set(key, value) {
    try {
      host.kvSet(key, String(value));
    } catch (e) {
      rethrow(e);
    }
  },
  delete(key) {
    try {
      return host.kvDelete(key);
    } catch (e) {
      return rethrow(e);
    }
  },
  keys() {
    return host.kvList();
  },
};

export const log = {
  trace: (message) => host.log('trace', String(message)),
  debug: (message) => host.log('debug', String(message)),
  info: (message) => host.log('info', String(message)),
  warn: (message) => host.log('warn', String(message)),
  error: (message) => host.log('error', String(message)),
};

export const status = {
  transitioning: (message) => host.reportStatus('transitioning', String(message)),
  success: (message) => host.reportStatus('success', String(message)),
  warning: (message) => host.reportStatus('warning', String(message)),
  error: (message) => host.reportStatus('error', String(message)),
};

class Response {
  constructor(raw) {
    this.status = raw.status;
    this.headers = Object.fromEntries(raw.headers);
    this.body = raw.body;
  }
  text() {
    return new TextDecoder().decode(this.body);
  }
  json() {
    return JSON.parse(this.text());
  }
}

/** Outbound HTTP through the host: declared and granted origins only. */
export const http = {
  request({ method = 'GET', url, headers = {}, body = undefined }) {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    try {
      return new Response(
        send({ method, url, headers: Object.entries(headers), body: bytes }),
      );
    } catch (e) {
      return rethrow(e);
    }
  },
  get(url, headers = {}) {
    return http.request({ method: 'GET', url, headers });
  },
  post(url, body, headers = {}) {
    if (typeof body !== 'string' && !(body instanceof Uint8Array)) {
      body = JSON.stringify(body);
      headers = { 'content-type': 'application/json', ...headers };
    }
    return http.request({ method: 'POST', url, headers, body });
  },
};

/** The machine this extension runs on: its registration and status. */
export function machine() {
  const m = host.machine();
  return {
    resourceId: m.resourceId,
    name: m.name,
    location: m.location,
    osType: m.osType,
    osName: m.osName,
    vmId: m.vmId,
    tenantId: m.tenantId,
    status: m.status,
  };
}

/** Reports one JSON object (at most 256 KiB) with the status. */
export function reportDocument(document) {
  try {
    host.reportDocument(JSON.stringify(document));
  } catch (e) {
    rethrow(e);
  }
}

function guard(call) {
  try {
    return call();
  } catch (e) {
    if (e instanceof TetherError) {
      throw { code: e.code, message: e.detail };
    }
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      throw e;
    }
    // A bug in the extension: fail the call and say what it was.
    throw { code: 'failed', message: String(e && e.stack ? e.stack : e) };
  }
}

/**
 * The exported lifecycle, from what the extension does: any of install,
 * enable, disable, update(fromVersion), uninstall, and `commands`, each
 * taking the arguments and returning a string or anything JSON holds.
 */
export function extension(spec) {
  const step = (name) => (...args) => guard(() => {
    if (spec[name]) spec[name](...args);
  });
  return {
    install: step('install'),
    enable: step('enable'),
    disable: step('disable'),
    update: step('update'),
    uninstall: step('uninstall'),
    invoke(command, args) {
      return guard(() => {
        const run = (spec.commands || {})[command];
        if (!run) throw new TetherError('unknown-command', `no command \`${command}\``);
        const out = run(args);
        return typeof out === 'string' ? out : JSON.stringify(out);
      });
    },
  };
}
