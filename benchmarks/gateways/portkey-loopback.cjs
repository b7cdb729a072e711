// Preloaded with `node --require` before Portkey's start script, which calls
// @hono/node-server serve({fetch, port}) without a hostname and so listens on every
// interface. Fill the missing host with LOADGATE_BIND_HOST (default 127.0.0.1).
'use strict';
const net = require('node:net');
const host = process.env.LOADGATE_BIND_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args[1] === undefined || typeof args[1] === 'function')) {
    if (args[1] === undefined) args.splice(1, 1);
    args.splice(1, 0, host);
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host };
  }
  return listen.apply(this, args);
};
