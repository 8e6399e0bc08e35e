// Builds the real-image corpus (test/corpus/recipes/) into its cache (~/.cache/boxproxy/corpus, or
// $BOXPROXY_CORPUS_CACHE): instant when every layer is current, minutes from an empty cache. Under CI a machine
// that cannot build it fails here; elsewhere the corpus tests skip with the reason.
import { corpusProblem, ensureCorpus } from '../corpus/corpus.js';

const problem = corpusProblem();
if (problem) {
  if (process.env.CI) {
    process.stderr.write(`setup: corpus: ERROR: ${problem}\n`);
    process.exit(1);
  }
  process.stderr.write(`setup: corpus: WARNING: ${problem}; the corpus tests will be skipped\n`);
} else {
  const started = Date.now();
  try {
    const images = await ensureCorpus((line) => process.stderr.write(`setup: corpus: ${line}\n`));
    process.stderr.write(`setup: corpus of ${images.length} images ready (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  } catch (err) {
    process.stderr.write(`setup: corpus: ${process.env.CI ? 'ERROR' : 'WARNING'}: ${(err as Error).message}\n`);
    if (process.env.CI) process.exit(1);
  }
}
