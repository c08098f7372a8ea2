#!/usr/bin/env node
// Contract check: does every observed HTTP exchange match the OpenAPI 3.1
// document?
//
//   node tests/contract/validate.mjs <openapi.yaml> <exchanges.jsonl>
//
// Each line of the JSONL file is one exchange:
//   {"method": "GET", "path": "/v1/players?limit=2" (as sent, percent-encoded),
//    "status": 200, "content_type": "application/json" (or null),
//    "headers": {"lower-case name": "value", ...}, "body": "response text"}
//
// For each exchange: find the operation (path templates match one non-empty
// raw segment per {param}; literal segments compare raw; HEAD uses GET's
// operation unless the path declares `head`), then the response (exact
// status, else 4XX/5XX, else default), then the media type (compared without
// parameters). JSON bodies (application/json, application/problem+json,
// any +json) are validated against the schema with ajv (JSON Schema
// 2020-12, formats checked, each schema compiled once); declared headers
// must be present when required and match their schema when present.
// Requests that match no operation are checked against the document's
// `x-unrouted-responses` (unknownPath / methodNotAllowed); a 405 must also
// list in `Allow` exactly the methods the document gives that path. Without
// that extension such an exchange fails. Bodies of HEAD and 304 responses
// must be empty and are not parsed; text/html, application/yaml and other
// non-JSON bodies are not parsed.
//
// Prints each failure with its exchange, then "N passed, M failed".
// Exit status: 0 all passed; 1 a failure or no exchanges at all; 2 the
// command could not run (usage, unreadable files, a broken document).

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

// The test tools live in tests/tools/node_modules (tests/tools/package.json).
const require = createRequire(new URL('../tools/package.json', import.meta.url));
const YAML = require('yaml');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SCHEMA_ID = 'urn:tourney-stats:contract:components';
const BODY_SHOWN = 1500; // characters of a body printed with a failure

class SpecError extends Error {}

function die(message) {
  process.stderr.write(`validate.mjs: ${message}\n`);
  process.exit(2);
}

// ---- the document ----

function loadSpec(file) {
  let doc;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    die(`${file}: ${e.message}`);
  }
  if (!doc || typeof doc !== 'object' || !/^3\.1\./.test(String(doc.openapi)))
    die(`${file}: not an OpenAPI 3.1 document`);
  if (!doc.paths || typeof doc.paths !== 'object') die(`${file}: no paths`);
  return doc;
}

function pointer(doc, ref) {
  if (!ref.startsWith('#/')) throw new SpecError(`unsupported $ref ${ref} (only local refs)`);
  let node = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node))
      throw new SpecError(`$ref ${ref} does not resolve`);
    node = node[key];
  }
  return node;
}

// Follows $ref chains of non-schema objects (responses, headers, ...).
function deref(doc, obj) {
  const seen = new Set();
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (seen.has(obj.$ref)) throw new SpecError(`$ref cycle at ${obj.$ref}`);
    seen.add(obj.$ref);
    obj = pointer(doc, obj.$ref);
  }
  return obj;
}

// A copy of a schema whose refs into components.schemas point at the
// registered components schema; any other $ref is an error.
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') {
      if (!v.startsWith('#/components/schemas/'))
        throw new SpecError(`schema $ref ${v} is not into #/components/schemas`);
      out[k] = `${SCHEMA_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`;
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

function collectExtensionKeys(node, keys) {
  if (Array.isArray(node)) node.forEach((v) => collectExtensionKeys(v, keys));
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith('x-')) keys.add(k);
      collectExtensionKeys(v, keys);
    }
}

// Digits after the decimal point of a number as JSON.parse read it; the
// shortest round-trip text never has more than the text it was read from.
function decimalPlaces(n) {
  const [mant, exp] = String(Math.abs(n)).split('e');
  const frac = (mant.split('.')[1] || '').length;
  return Math.max(0, frac - (exp ? Number(exp) : 0));
}

function makeAjv(doc) {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: true,
    allowUnionTypes: true,
  });
  addFormats(ajv);
  // OpenAPI 3.1 schema keywords that are annotations only.
  ajv.addVocabulary(['example', 'xml', 'externalDocs', 'discriminator']);
  ajv.addKeyword({
    keyword: 'x-decimal-places',
    type: 'number',
    schemaType: 'number',
    validate: function decimalPlacesOk(places, data) {
      if (decimalPlaces(data) <= places) return true;
      decimalPlacesOk.errors = [{
        keyword: 'x-decimal-places',
        message: `must have at most ${places} digits after the decimal point`,
        params: { places },
      }];
      return false;
    },
  });
  // Any other specification extension in a schema means nothing to ajv.
  const ext = new Set();
  collectExtensionKeys(doc.components?.schemas ?? {}, ext);
  collectExtensionKeys(doc.paths, ext);
  for (const k of ext) if (k !== 'x-decimal-places') ajv.addKeyword({ keyword: k });
  ajv.addSchema({ $id: SCHEMA_ID, $defs: rewriteRefs(doc.components?.schemas ?? {}) });
  return ajv;
}

// ---- compiled pieces, built once per document object ----

class Contract {
  constructor(doc) {
    this.doc = doc;
    this.ajv = makeAjv(doc);
    this.compiled = new Map(); // schema object -> validate function
    this.templates = Object.keys(doc.paths).map((tpl) => ({
      tpl,
      segs: tpl.split('/'),
      params: (tpl.match(/\{[^}]+\}/g) || []).length,
    }));
    // Literal paths win over templated ones (OpenAPI 3.1, Paths Object).
    this.templates.sort((a, b) => a.params - b.params);
    this.unrouted = doc['x-unrouted-responses'] || null;
    this.compileAll();
  }

  validator(schema, where) {
    let fn = this.compiled.get(schema);
    if (!fn) {
      try {
        fn = this.ajv.compile(rewriteRefs(schema));
      } catch (e) {
        throw new SpecError(`${where}: schema does not compile: ${e.message}`);
      }
      this.compiled.set(schema, fn);
    }
    return fn;
  }

  // Compiles every response body and header schema up front, so that a
  // broken document fails at once instead of on the first exchange that
  // happens to reach the broken part.
  compileAll() {
    const responseSets = [];
    for (const [tpl, item] of Object.entries(this.doc.paths))
      for (const m of METHODS)
        if (item[m]) responseSets.push([`${m.toUpperCase()} ${tpl}`, item[m].responses || {}]);
    if (this.unrouted)
      for (const [kind, set] of Object.entries(this.unrouted))
        responseSets.push([`x-unrouted-responses.${kind}`, set]);
    for (const [where, set] of responseSets)
      for (const [status, r] of Object.entries(set)) {
        const resp = deref(this.doc, r);
        for (const [mt, media] of Object.entries(resp.content || {}))
          if (media.schema) this.validator(media.schema, `${where} ${status} ${mt}`);
        for (const [name, h] of Object.entries(resp.headers || {})) {
          const header = deref(this.doc, h);
          if (header.schema) this.validator(header.schema, `${where} ${status} header ${name}`);
        }
      }
  }

  matchPath(rawPath) {
    const segs = rawPath.split('/');
    for (const t of this.templates) {
      if (t.segs.length !== segs.length) continue;
      const ok = t.segs.every((s, i) =>
        /^\{[^}]+\}$/.test(s) ? segs[i].length > 0 : s === segs[i]);
      if (ok) return t.tpl;
    }
    return null;
  }

  documentedMethods(tpl) {
    const item = this.doc.paths[tpl];
    const set = new Set(METHODS.filter((m) => item[m]).map((m) => m.toUpperCase()));
    if (set.has('GET')) set.add('HEAD');
    return set;
  }
}

// ---- one exchange ----

function mediaBase(ct) {
  return String(ct).split(';')[0].trim().toLowerCase();
}

function isJsonMedia(base) {
  return base === 'application/json' || base.endsWith('+json');
}

function findMedia(content, ct) {
  const base = mediaBase(ct);
  const keys = Object.keys(content);
  const exact = keys.find((k) => mediaBase(k) === base);
  if (exact) return exact;
  const range = keys.find((k) => mediaBase(k) === `${base.split('/')[0]}/*`);
  return range || keys.find((k) => mediaBase(k) === '*/*') || null;
}

function ajvErrors(errors) {
  return (errors || []).map((e) => {
    const params = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
    return `${e.instancePath || '(root)'} ${e.message}${params}`;
  });
}

function checkHeaders(c, resp, ex, where, problems) {
  for (const [name, h] of Object.entries(resp.headers || {})) {
    const lname = name.toLowerCase();
    if (lname === 'content-type') continue; // ignored by OpenAPI
    const header = deref(c.doc, h);
    const value = ex.headers[lname];
    if (value === undefined) {
      if (header.required) problems.push(`missing header ${name} (required by ${where})`);
      continue;
    }
    if (!header.schema) continue;
    const validate = c.validator(header.schema, `${where} header ${name}`);
    let data = value;
    const type = header.schema.type;
    if (type === 'integer' || type === 'number') {
      if (!/^-?[0-9]+(\.[0-9]+)?$/.test(value)) {
        problems.push(`header ${name}: ${JSON.stringify(value)} is not a number`);
        continue;
      }
      data = Number(value);
    }
    if (!validate(data))
      for (const e of ajvErrors(validate.errors))
        problems.push(`header ${name}: ${JSON.stringify(value)}: ${e}`);
  }
}

function checkResponse(c, resp, ex, where, problems) {
  checkHeaders(c, resp, ex, where, problems);
  const content = resp.content || {};
  const noBody = ex.method === 'HEAD' || ex.status === 304;
  if (Object.keys(content).length === 0) {
    if (ex.body !== '') problems.push(`${where} documents no body, but one was sent`);
    return;
  }
  if (!ex.content_type) {
    problems.push(`${where} documents a body (${Object.keys(content).join(', ')}) but no Content-Type was sent`);
    return;
  }
  const key = findMedia(content, ex.content_type);
  if (!key) {
    problems.push(`media type ${ex.content_type} is not documented for ${where} (documented: ${Object.keys(content).join(', ')})`);
    return;
  }
  if (noBody) {
    if (ex.body !== '') problems.push(`a ${ex.method === 'HEAD' ? 'HEAD' : '304'} response must have no body`);
    return;
  }
  const base = mediaBase(ex.content_type);
  if (!isJsonMedia(base)) return; // text/html, application/yaml, ...: not parsed
  let data;
  try {
    data = JSON.parse(ex.body);
  } catch (e) {
    problems.push(`body is not JSON (${e.message})`);
    return;
  }
  const schema = content[key].schema;
  if (!schema) return;
  const validate = c.validator(schema, `${where} ${key}`);
  if (!validate(data))
    for (const e of ajvErrors(validate.errors)) problems.push(`body ${e}`);
}

function pickResponse(c, responses, status) {
  const key = [String(status), `${Math.floor(status / 100)}XX`, 'default'].find((k) => k in responses);
  return key ? { key, resp: deref(c.doc, responses[key]) } : null;
}

function checkUnrouted(c, ex, kind, tpl, problems) {
  const set = c.unrouted && c.unrouted[kind];
  const what = kind === 'unknownPath'
    ? 'no path in the document matches'
    : `${ex.method} is not documented for ${tpl}`;
  if (!set) {
    problems.push(`${what} (and the document has no x-unrouted-responses.${kind})`);
    return;
  }
  const picked = pickResponse(c, set, ex.status);
  if (!picked) {
    problems.push(`${what}, and status ${ex.status} is not an x-unrouted-responses.${kind} answer (${Object.keys(set).join(', ')})`);
    return;
  }
  checkResponse(c, picked.resp, ex, `x-unrouted-responses.${kind}.${picked.key}`, problems);
  if (kind === 'methodNotAllowed' && ex.status === 405) {
    const want = c.documentedMethods(tpl);
    const allow = ex.headers.allow;
    if (allow !== undefined) {
      const got = new Set(allow.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
      const same = got.size === want.size && [...want].every((m) => got.has(m));
      if (!same)
        problems.push(`Allow: ${allow} differs from the methods documented for ${tpl} (${[...want].join(', ')})`);
    }
  }
}

function shapeProblems(ex) {
  const p = [];
  if (typeof ex.method !== 'string' || !/^[^\s]+$/.test(ex.method)) p.push('"method" is not a method name');
  if (typeof ex.path !== 'string' || !ex.path.startsWith('/')) p.push('"path" does not start with /');
  if (!Number.isInteger(ex.status) || ex.status < 100 || ex.status > 599) p.push('"status" is not an HTTP status');
  if (ex.content_type !== undefined && ex.content_type !== null && typeof ex.content_type !== 'string')
    p.push('"content_type" is not a string or null');
  if (ex.headers !== undefined && (ex.headers === null || typeof ex.headers !== 'object' || Array.isArray(ex.headers)))
    p.push('"headers" is not an object');
  if (ex.body !== undefined && typeof ex.body !== 'string') p.push('"body" is not a string');
  return p;
}

function checkExchange(c, raw) {
  const problems = shapeProblems(raw);
  if (problems.length) return problems;
  const headers = {};
  for (const [k, v] of Object.entries(raw.headers || {})) headers[k.toLowerCase()] = String(v);
  const ex = {
    method: raw.method.toUpperCase(),
    path: raw.path,
    status: raw.status,
    content_type: raw.content_type ?? headers['content-type'] ?? null,
    headers,
    body: raw.body ?? '',
  };
  const rawPath = ex.path.split(/[?#]/)[0];
  const tpl = c.matchPath(rawPath);
  if (!tpl) {
    checkUnrouted(c, ex, 'unknownPath', null, problems);
    return problems;
  }
  const item = c.doc.paths[tpl];
  const m = ex.method.toLowerCase();
  const op = item[m] || (m === 'head' ? item.get : undefined);
  if (!op) {
    checkUnrouted(c, ex, 'methodNotAllowed', tpl, problems);
    return problems;
  }
  const where = `${ex.method} ${tpl}`;
  const picked = pickResponse(c, op.responses || {}, ex.status);
  if (!picked) {
    problems.push(`status ${ex.status} is not documented for ${where} (documented: ${Object.keys(op.responses || {}).join(', ')})`);
    return problems;
  }
  checkResponse(c, picked.resp, ex, `${where} ${picked.key}`, problems);
  return problems;
}

function showExchange(raw) {
  const shown = { ...raw };
  if (typeof shown.body === 'string' && shown.body.length > BODY_SHOWN)
    shown.body = `${shown.body.slice(0, BODY_SHOWN)}... (${raw.body.length} characters)`;
  if (typeof shown.path === 'string' && shown.path.length > BODY_SHOWN)
    shown.path = `${shown.path.slice(0, BODY_SHOWN)}... (${raw.path.length} characters)`;
  return JSON.stringify(shown);
}

// ---- main ----

function main(argv) {
  if (argv.length !== 2) die('usage: node validate.mjs <openapi.yaml> <exchanges.jsonl>');
  const [specFile, exchangesFile] = argv;
  const doc = loadSpec(specFile);
  let contract;
  try {
    contract = new Contract(doc);
  } catch (e) {
    die(`${specFile}: ${e.message}`);
  }
  let text;
  try {
    text = readFileSync(exchangesFile, 'utf8');
  } catch (e) {
    die(`${exchangesFile}: ${e.message}`);
  }

  let passed = 0;
  let failed = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    let raw;
    let problems;
    try {
      raw = JSON.parse(line);
      problems = raw && typeof raw === 'object' && !Array.isArray(raw)
        ? checkExchange(contract, raw)
        : ['the line is not a JSON object'];
    } catch (e) {
      if (!(e instanceof SpecError) && !(e instanceof SyntaxError)) throw e;
      problems = [e instanceof SyntaxError ? `the line is not JSON (${e.message})` : e.message];
    }
    if (problems.length === 0) {
      passed++;
      continue;
    }
    failed++;
    const head = raw && typeof raw === 'object'
      ? `${raw.method} ${String(raw.path).slice(0, 200)} -> ${raw.status}` : '(unreadable)';
    process.stdout.write(`FAIL ${exchangesFile}:${i + 1}: ${head}\n`);
    for (const p of problems) process.stdout.write(`  - ${p}\n`);
    process.stdout.write(`  exchange: ${raw !== undefined ? showExchange(raw) : line.slice(0, BODY_SHOWN)}\n`);
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  if (passed + failed === 0) process.stdout.write('no exchanges: nothing was checked\n');
  process.exit(failed > 0 || passed + failed === 0 ? 1 : 0);
}

main(process.argv.slice(2));
