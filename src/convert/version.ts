/**
 * Version of the conversion rules. It is part of every Box (label dev.boxproxy.converter.version); bump it when
 * the same source would give different Box bytes, so a changed output always comes with a changed label.
 */
export const CONVERTER_VERSION = '0.1.0';
