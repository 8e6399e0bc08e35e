// Node.js shapes of the real-image corpus (issue #13): Debian's nodejs with an app and npm packages in its own
// layer, as `COPY` + `npm ci` would lay it out. Each app prints what its Box must print too
// (test/corpus/nodejs.test.ts).
import type { Recipe } from '../recipe.js';

/** A CLI like many on npm: commander for options, js-yaml and lodash for the data, chalk (no colour off a TTY). */
const INVENTORY_APP = `#!/usr/bin/env node
'use strict';
const fs = require('fs');
const path = require('node:path');
const os = require('os');
const { Command } = require('commander');
const yaml = require('js-yaml');
const _ = require('lodash');
const chalk = require('chalk');

const program = new Command();
program
  .name('inventory')
  .option('-f, --format <format>', 'text or json', 'text')
  .option('-o, --out <dir>', 'where the report goes', os.tmpdir())
  .argument('[file]', 'inventory file', path.join(__dirname, 'inventory.yaml'));
program.parse(process.argv);
const opts = program.opts();
const file = program.args[0] || path.join(__dirname, 'inventory.yaml');
const doc = yaml.load(fs.readFileSync(file, 'utf8'));
const byKind = _.mapValues(_.groupBy(doc.items, 'kind'), (items) => _.sumBy(items, 'count'));
const report = path.join(opts.out, 'report.json');
fs.mkdirSync(opts.out, { recursive: true });
fs.writeFileSync(report, JSON.stringify({ name: doc.name, byKind }, null, 2));
if (opts.format === 'json') {
  process.stdout.write(fs.readFileSync(report, 'utf8') + '\\n');
} else {
  console.log(chalk.bold(\`\${doc.name}: \${_.size(doc.items)} items\`));
  for (const [kind, count] of Object.entries(byKind).sort()) console.log(\`  \${_.padEnd(kind, 8)} \${_.padStart(String(count), 4)}\`);
}
console.log('args:', process.argv.slice(2).join(' ') || '(none)', 'cwd:', process.cwd(), 'script:', path.relative(process.cwd(), __filename));
fs.promises.stat(report).then((st) => {
  console.log('report bytes:', st.size, 'exists:', fs.existsSync(report));
  process.exitCode = doc.items.length > 3 ? 2 : 0;
});
`;

const INVENTORY = `name: corpus
items:
  - {name: bolt, kind: metal, count: 12}
  - {name: nut, kind: metal, count: 30}
  - {name: plank, kind: wood, count: 4}
  - {name: rope, kind: fibre, count: 2}
`;

/** An ES module CLI: front matter with `yaml`, Markdown with `marked` (ESM only), top-level await, import.meta. */
const RENDER_APP = `import { readFile, writeFile, readdir } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import process from 'node:process';
import { parse } from 'yaml';
import { marked } from 'marked';

const here = dirname(fileURLToPath(import.meta.url));
const docs = join(here, 'docs');
const names = (await readdir(docs)).filter((n) => n.endsWith('.md')).sort();
let total = 0;
for (const name of names) {
  const text = await readFile(join(docs, name), 'utf8');
  const [, front, body] = /^---\\n([\\s\\S]*?)\\n---\\n([\\s\\S]*)$/.exec(text) ?? [null, '', text];
  const meta = parse(front) ?? {};
  const html = marked.parse(body);
  total += html.length;
  console.log(\`\${basename(name, '.md')}: \${meta.title} [\${(meta.tags ?? []).join(', ')}]\`);
  console.log(html.trim());
}
await writeFile(join(process.env.TMPDIR ?? '/tmp', 'rendered.txt'), String(total));
console.log('rendered', names.length, 'documents,', total, 'bytes of HTML; node', process.version.split('.')[0], 'args', JSON.stringify(process.argv.slice(2)));
process.exitCode = names.length === 2 ? 0 : 1;
`;

export const NODEJS_RECIPES: readonly Recipe[] = [
  {
    name: 'nodejs-debian',
    description: "Debian's nodejs (bookworm: Node 18) with a CLI app and its npm packages in /app, CMD [\"node\", \"/app/inventory.js\"]",
    suite: 'bookworm',
    packages: ['nodejs'],
    files: {
      '/app/inventory.js': INVENTORY_APP,
      '/app/inventory.yaml': INVENTORY,
      '/app/package.json': JSON.stringify({ name: 'inventory', version: '1.0.0', private: true, main: 'inventory.js' }, null, 2) + '\n',
    },
    npm: { dir: '/app', packages: ['commander@12.1.0', 'js-yaml@4.1.0', 'lodash@4.17.21', 'chalk@4.1.2'] },
    config: { Cmd: ['node', '/app/inventory.js'], WorkingDir: '/app' },
  },
  {
    name: 'nodejs-esm',
    description: "Debian's nodejs (trixie: Node 20) with an ES module app (top-level await, import.meta) and ESM-only npm packages",
    suite: 'trixie',
    packages: ['nodejs'],
    files: {
      '/srv/render.mjs': RENDER_APP,
      '/srv/package.json': JSON.stringify({ name: 'render', version: '1.0.0', private: true, type: 'module' }, null, 2) + '\n',
      '/srv/docs/a.md': '---\ntitle: First\ntags: [intro, boxes]\n---\n# Hello\n\nSome *text* and `code`.\n',
      '/srv/docs/b.md': '---\ntitle: Second\n---\n- one\n- two\n\n[link](https://example.org)\n',
    },
    npm: { dir: '/srv', packages: ['yaml@2.4.5', 'marked@12.0.2'] },
    config: { Entrypoint: ['node', '/srv/render.mjs'], WorkingDir: '/srv' },
  },
  {
    name: 'nodejs-server',
    description: 'an HTTP service on node:http in its own code (a Box has no sockets: refused, naming them)',
    suite: 'bookworm',
    packages: ['nodejs'],
    files: {
      '/srv/server.js': `const http = require('http');
if (process.argv[2] === '--check') {
  console.log('config ok');
} else {
  http.createServer((req, res) => res.end('hello')).listen(8080);
}
`,
    },
    config: { Cmd: ['node', '/srv/server.js', '--check'], WorkingDir: '/srv' },
  },
];
