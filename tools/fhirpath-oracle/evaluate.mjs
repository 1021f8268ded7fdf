#!/usr/bin/env node
// Evaluates every official R4 search expression on every official example with HL7's
// reference FHIRPath engine (npm fhirpath@5.2.2) and prints one JSON line per pair:
//   {"file": "...", "code": "...", "result": [...]}   or   {"file", "code", "error"}
// Usage: NODE_PATH=<dir with node_modules/fhirpath> node evaluate.mjs EXAMPLES_DIR PARAMS_JSON
// Expressions that call resolve() are skipped: the reference engine only runs it async.
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(join(process.env.NODE_PATH ?? '.', 'x.js'));
const fhirpath = require('fhirpath');
const model = require('fhirpath/fhir-context/r4');

const [examplesDir, paramsFile] = process.argv.slice(2);
const params = JSON.parse(readFileSync(paramsFile, 'utf8')).parameters.filter((p) => !p.expression.includes('resolve('));
const common = params.filter((p) => p.base.includes('Resource') || p.base.includes('DomainResource'));
const compiled = new Map();
function compile(expr) {
  if (!compiled.has(expr)) compiled.set(expr, fhirpath.compile(expr, model));
  return compiled.get(expr);
}
const files = readdirSync(examplesDir).filter((f) => f.endsWith('.json') && f !== 'package.json' && !f.startsWith('.')).sort();
const out = [];
for (const file of files) {
  const resource = JSON.parse(readFileSync(join(examplesDir, file), 'utf8'));
  const type = resource.resourceType;
  const mine = params.filter((p) => p.base.includes(type));
  for (const p of [...mine, ...common.filter((c) => !mine.some((m) => m.code === c.code))]) {
    try {
      const result = compile(p.expression)(resource);
      out.push(JSON.stringify({ file, code: p.code, result }));
    } catch (e) {
      out.push(JSON.stringify({ file, code: p.code, error: String(e.message).split('\n')[0] }));
    }
    if (out.length >= 2000) {
      process.stdout.write(out.join('\n') + '\n');
      out.length = 0;
    }
  }
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
