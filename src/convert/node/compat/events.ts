// node:events: the `events` package from npm.
import EventEmitter from 'events/events.js';

export { EventEmitter };
export const once = EventEmitter.once;
export const defaultMaxListeners = EventEmitter.defaultMaxListeners;
export default EventEmitter;
