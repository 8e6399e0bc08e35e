import { pino, type Logger } from 'pino';

export type { Logger };

// Anything that could carry a secret is redacted at the logger, so a mistaken
// log call cannot leak upstream credentials or client tokens.
const REDACT = [
  'password',
  '*.password',
  'upstreams[*].password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'token',
  '*.token',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'boxproxy' }, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? process.stdout,
  );
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
