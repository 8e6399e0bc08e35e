// node:util/types.
import util from './util.js';
export default util.types;
