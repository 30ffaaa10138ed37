// hello, in JavaScript: logs every lifecycle call and answers
// `invoke greet NAME…` with a greeting. The same commands as the Rust
// hello (plugins/hello), so the two can be measured side by side.

import * as tether from './tether-sdk.js';

export const lifecycle = tether.extension({
  install: () => tether.log.info('hello: install'),
  enable: () => tether.log.info('hello: enable'),
  disable: () => tether.log.info('hello: disable'),
  update: (fromVersion) => tether.log.info(`hello: update from ${fromVersion}`),
  uninstall: () => tether.log.info('hello: uninstall'),
  commands: {
    greet(args) {
      if (args.length === 0) {
        throw new tether.TetherError('invalid-argument', 'usage: greet NAME');
      }
      const name = args.join(' ');
      tether.log.info(`hello: greeting ${name}`);
      return `Hello, ${name}!`;
    },
    // One host call and nothing else: what the benchmarks measure.
    ping() {
      tether.log.trace('ping');
      return '';
    },
  },
});
