// Offline checks of deploy/cloudformation.yaml, without AWS:
//   - YAML with CloudFormation's short-form intrinsics (!Ref, !GetAtt, !Sub,
//     !If, ...), read into their long form;
//   - every resource type, property and nested property type known to the
//     published CloudFormation resource specification (npm
//     @aws-cdk/cfnspec, spec/specification.json), required properties
//     present, values of the right shape;
//   - every Ref, GetAtt (attribute included), ${} of a Sub, Fn::If
//     condition, Condition and DependsOn resolves; a resource that exists
//     only under a condition is used only under that condition;
//   - the task role allows exactly the DynamoDB actions the server's code
//     calls (read from store/*.c and aws/*.c, so the two cannot drift), on
//     exactly the stack's two tables;
//   - what must agree with the code: the drain (deregistration delay and
//     StopTimeout against TS_SHUTDOWN_GRACE_MS), the environment variables
//     (known to server/config.c), the Pipe's batch size (1).
//
//   node tests/deploy/check-template.mjs [template]          check it
//   node tests/deploy/check-template.mjs --selftest [tmpl]   show that each
//       check fails on a template with one planted mistake
// The last line is "N passed, M failed".
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tools = createRequire(join(root, 'tests', 'tools', 'package.json'));
const YAML = tools('yaml');
const spec = JSON.parse(readFileSync(
  tools.resolve('@aws-cdk/cfnspec/spec/specification.json'), 'utf8'));

const PSEUDO = new Set(['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue',
  'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix']);
const TOP = new Set(['AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters',
  'Rules', 'Mappings', 'Conditions', 'Transform', 'Resources', 'Outputs']);
const RESOURCE_KEYS = new Set(['Type', 'Properties', 'DependsOn', 'Condition', 'DeletionPolicy',
  'UpdateReplacePolicy', 'Metadata', 'CreationPolicy', 'UpdatePolicy']);
const PARAM_TYPES = /^(String|Number|List<Number>|CommaDelimitedList|AWS::EC2::[A-Za-z]+::[A-Za-z]+|List<AWS::EC2::[A-Za-z]+::[A-Za-z]+>|AWS::SSM::Parameter::.+)$/;
const FNS = ['Base64', 'Cidr', 'FindInMap', 'GetAtt', 'GetAZs', 'ImportValue', 'Join', 'Select',
  'Split', 'Sub', 'Transform', 'If', 'Equals', 'Not', 'And', 'Or', 'ToJsonString', 'Length'];

// ---- YAML with short-form intrinsics, into plain JS in long form ----
function toJS(node) {
  if (node === null || node === undefined) return null;
  let v;
  if (YAML.isMap(node)) {
    v = {};
    for (const pair of node.items) v[String(toJS(pair.key))] = toJS(pair.value);
  } else if (YAML.isSeq(node)) {
    v = node.items.map(toJS);
  } else if (YAML.isScalar(node)) {
    v = node.value;
  } else if (YAML.isAlias(node)) {
    throw new Error('YAML aliases are not allowed in CloudFormation templates');
  } else {
    v = node;
  }
  const tag = node.tag;
  if (!tag || !tag.startsWith('!')) return v;
  const name = tag.slice(1);
  if (name === 'Ref') return { Ref: v };
  if (name === 'Condition') return { Condition: v };
  if (!FNS.includes(name)) throw new Error(`unknown tag ${tag}`);
  if (name === 'GetAtt' && typeof v === 'string') {
    const dot = v.indexOf('.');
    return { 'Fn::GetAtt': [v.slice(0, dot), v.slice(dot + 1)] };
  }
  return { [`Fn::${name}`]: v };
}

export function parseTemplate(text) {
  const doc = YAML.parseDocument(text, { uniqueKeys: true });
  const errs = doc.errors.map((e) => `YAML: ${e.message}`);
  // Unresolved-tag warnings are expected: the tags are read by toJS.
  if (errs.length) return { errs };
  return { tpl: toJS(doc.contents), errs: [] };
}

// ---- the checks ----
const isIntrinsic = (v) => v && typeof v === 'object' && !Array.isArray(v) &&
  Object.keys(v).length === 1 && (Object.keys(v)[0] === 'Ref' || Object.keys(v)[0].startsWith('Fn::'));

function checkValue(errs, where, value, prop, resType) {
  if (isIntrinsic(value)) return; // resolved at deploy time; references checked below
  if (prop.PrimitiveType) return checkPrimitive(errs, where, value, prop.PrimitiveType);
  if (prop.Type === 'List') {
    if (!Array.isArray(value)) return errs.push(`${where}: a list expected`);
    value.forEach((item, i) => {
      if (prop.PrimitiveItemType) checkPrimitive(errs, `${where}[${i}]`, item, prop.PrimitiveItemType);
      else if (prop.ItemType) checkValue(errs, `${where}[${i}]`, item, { Type: prop.ItemType }, resType);
    });
    return;
  }
  if (prop.Type === 'Map') {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return errs.push(`${where}: a map expected`);
    for (const [k, item] of Object.entries(value)) {
      if (prop.PrimitiveItemType) checkPrimitive(errs, `${where}.${k}`, item, prop.PrimitiveItemType);
      else if (prop.ItemType) checkValue(errs, `${where}.${k}`, item, { Type: prop.ItemType }, resType);
    }
    return;
  }
  const ptype = spec.PropertyTypes[`${resType}.${prop.Type}`] ?? spec.PropertyTypes[prop.Type];
  if (!ptype) return errs.push(`${where}: property type ${prop.Type} of ${resType} is not in the specification`);
  checkProperties(errs, where, value, ptype.Properties ?? {}, resType);
}

function checkPrimitive(errs, where, value, type) {
  if (isIntrinsic(value)) return;
  const ok = {
    String: () => ['string', 'number', 'boolean'].includes(typeof value),
    Integer: () => Number.isInteger(Number(value)) && value !== '' && typeof value !== 'boolean',
    Long: () => Number.isInteger(Number(value)) && value !== '' && typeof value !== 'boolean',
    Double: () => !Number.isNaN(Number(value)) && value !== '' && typeof value !== 'boolean',
    Boolean: () => value === true || value === false || value === 'true' || value === 'false',
    Timestamp: () => typeof value === 'string',
    Json: () => typeof value === 'object' && value !== null,
  }[type];
  if (ok && !ok()) errs.push(`${where}: ${JSON.stringify(value)} is not a ${type}`);
}

function checkProperties(errs, where, props, known, resType) {
  if (!props || typeof props !== 'object' || Array.isArray(props)) {
    errs.push(`${where}: an object expected`);
    return;
  }
  for (const [name, value] of Object.entries(props)) {
    if (!known[name]) { errs.push(`${where}.${name}: not a property known to the specification`); continue; }
    checkValue(errs, `${where}.${name}`, value, known[name], resType);
  }
  for (const [name, p] of Object.entries(known))
    if (p.Required && !(name in props)) errs.push(`${where}: required property ${name} is missing`);
}

// Every reference in v, with the conditions in force where it stands.
function walkRefs(v, where, inForce, visit) {
  if (Array.isArray(v)) return v.forEach((x, i) => walkRefs(x, `${where}[${i}]`, inForce, visit));
  if (!v || typeof v !== 'object') return;
  const keys = Object.keys(v);
  if (keys.length === 1) {
    const [k] = keys;
    const arg = v[k];
    if (k === 'Ref') return visit({ kind: 'ref', name: arg, where, inForce });
    if (k === 'Condition' && typeof arg === 'string') return visit({ kind: 'condition', name: arg, where, inForce });
    if (k === 'Fn::GetAtt') {
      const [res, attr] = Array.isArray(arg) ? arg : String(arg).split(/\.(.*)/);
      return visit({ kind: 'getatt', name: res, attr, where, inForce });
    }
    if (k === 'Fn::Sub') {
      const [text, vars] = Array.isArray(arg) ? arg : [arg, {}];
      if (vars) walkRefs(vars, `${where}.Fn::Sub`, inForce, visit);
      if (typeof text !== 'string') return visit({ kind: 'error', where, msg: 'Fn::Sub needs a string' });
      for (const m of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
        const name = m[1].trim();
        if (vars && name in vars) continue;
        const dot = name.indexOf('.');
        if (dot > 0 && !PSEUDO.has(name)) visit({ kind: 'getatt', name: name.slice(0, dot), attr: name.slice(dot + 1), where, inForce });
        else visit({ kind: 'ref', name, where, inForce });
      }
      return;
    }
    if (k === 'Fn::If') {
      if (!Array.isArray(arg) || arg.length !== 3) return visit({ kind: 'error', where, msg: 'Fn::If takes [condition, then, else]' });
      visit({ kind: 'condition', name: arg[0], where, inForce });
      walkRefs(arg[1], `${where}.Fn::If[1]`, new Set([...inForce, arg[0]]), visit);
      walkRefs(arg[2], `${where}.Fn::If[2]`, inForce, visit);
      return;
    }
  }
  for (const k of keys) walkRefs(v[k], `${where}.${k}`, inForce, visit);
}

// The DynamoDB operations the server's code calls: `.op = "Name"`, and
// the operation named to per_id_calls() or batch_rounds_take()
// (store/dynamodb.c).
export function codeOperations() {
  const ops = new Set();
  for (const dir of ['store', 'aws']) {
    for (const f of readdirSync(join(root, dir)).filter((n) => n.endsWith('.c'))) {
      const src = readFileSync(join(root, dir, f), 'utf8');
      for (const m of src.matchAll(/\bop = "([A-Za-z]+)"/g)) ops.add(m[1]);
      for (const m of src.matchAll(/\b(?:per_id_calls|batch_rounds_take)\([^,]+,\s*"([A-Za-z]+)"/g)) ops.add(m[1]);
    }
  }
  return ops;
}
// Called by `tourney-stats create-table` only (the stack makes the tables),
// and UpdateItem by `tourney-stats backfill` only (an operator's
// credentials, README "Backfill and verify"): not the task role's.
const NOT_FOR_SERVE = new Set(['CreateTable', 'UpdateTimeToLive', 'UpdateItem']);

function boundsSeconds(name) {
  const src = readFileSync(join(root, 'common', 'bounds.h'), 'utf8');
  const m = src.match(new RegExp(`#define ${name} (\\d+)u?`));
  if (!m) throw new Error(`common/bounds.h: no ${name}`);
  return Number(m[1]) / 1000;
}

function knownSettings() {
  const src = readFileSync(join(root, 'server', 'config.c'), 'utf8');
  const names = new Set([...src.matchAll(/\{"(TS_[A-Z_]+)"/g)].map((m) => m[1]));
  for (const n of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_DYNAMODB']) names.add(n);
  return names;
}

export function checkTemplate(tpl) {
  const errs = [];
  if (!tpl || typeof tpl !== 'object') return ['the template is not a YAML mapping'];
  for (const k of Object.keys(tpl)) if (!TOP.has(k)) errs.push(`top level: unknown section ${k}`);
  const params = tpl.Parameters ?? {};
  const resources = tpl.Resources ?? {};
  const conditions = tpl.Conditions ?? {};
  if (!Object.keys(resources).length) errs.push('no Resources');

  for (const [name, p] of Object.entries(params)) {
    if (!PARAM_TYPES.test(String(p.Type))) errs.push(`Parameters.${name}: unknown type ${p.Type}`);
    if (p.AllowedValues && 'Default' in p && !p.AllowedValues.map(String).includes(String(p.Default)))
      errs.push(`Parameters.${name}: default ${p.Default} is not among AllowedValues`);
    if (resources[name]) errs.push(`Parameters.${name}: also a resource name`);
  }

  for (const [name, r] of Object.entries(resources)) {
    const where = `Resources.${name}`;
    for (const k of Object.keys(r)) if (!RESOURCE_KEYS.has(k)) errs.push(`${where}: unknown key ${k}`);
    const rt = spec.ResourceTypes[r.Type];
    if (!rt) { errs.push(`${where}: type ${r.Type} is not in the specification`); continue; }
    checkProperties(errs, `${where}.Properties`, r.Properties ?? {}, rt.Properties ?? {}, r.Type);
    for (const d of [].concat(r.DependsOn ?? []))
      if (!resources[d]) errs.push(`${where}.DependsOn: no resource ${d}`);
    if (r.Condition && !conditions[r.Condition]) errs.push(`${where}.Condition: no condition ${r.Condition}`);
  }

  const visit = (ownCondition) => (e) => {
    if (e.kind === 'error') return errs.push(`${e.where}: ${e.msg}`);
    if (e.kind === 'condition') {
      if (!conditions[e.name]) errs.push(`${e.where}: no condition ${e.name}`);
      return;
    }
    const target = resources[e.name];
    if (e.kind === 'ref') {
      if (!target && !params[e.name] && !PSEUDO.has(e.name)) errs.push(`${e.where}: Ref ${e.name} resolves to nothing`);
    } else if (!target) {
      errs.push(`${e.where}: GetAtt ${e.name}.${e.attr}: no resource ${e.name}`);
    } else {
      const attrs = spec.ResourceTypes[target.Type]?.Attributes ?? {};
      if (!(e.attr in attrs)) errs.push(`${e.where}: GetAtt ${e.name}.${e.attr}: ${target.Type} has no attribute ${e.attr}`);
    }
    if (target?.Condition && target.Condition !== ownCondition && !e.inForce.has(target.Condition))
      errs.push(`${e.where}: uses ${e.name}, which exists only when ${target.Condition}, outside Fn::If ${target.Condition}`);
  };
  for (const [name, r] of Object.entries(resources))
    walkRefs(r.Properties ?? {}, `Resources.${name}.Properties`, new Set(), visit(r.Condition));
  for (const [name, c] of Object.entries(conditions)) walkRefs(c, `Conditions.${name}`, new Set(), visit(undefined));
  for (const [name, o] of Object.entries(tpl.Outputs ?? {})) {
    if (o.Condition && !conditions[o.Condition]) errs.push(`Outputs.${name}: no condition ${o.Condition}`);
    walkRefs(o.Value, `Outputs.${name}.Value`, new Set(), visit(o.Condition));
  }

  errs.push(...checkAgainstCode(resources));
  return errs;
}

// What the template must agree on with the code.
function checkAgainstCode(resources) {
  const errs = [];
  const byType = (t) => Object.entries(resources).filter(([, r]) => r.Type === t);
  const tables = new Set(byType('AWS::DynamoDB::Table').map(([n]) => n));

  // The task role: exactly the code's DynamoDB actions, on the stats and
  // dead-letter tables (the ones handed to the container), nothing else.
  const [tdName, td] = byType('AWS::ECS::TaskDefinition')[0] ?? [];
  if (!td) return ['no AWS::ECS::TaskDefinition'];
  const roleRef = td.Properties?.TaskRoleArn?.['Fn::GetAtt']?.[0];
  const role = resources[roleRef];
  if (!role) return [`Resources.${tdName}.Properties.TaskRoleArn: not a GetAtt of a role in the stack`];
  const container = td.Properties.ContainerDefinitions?.[0] ?? {};
  const env = Object.fromEntries((container.Environment ?? []).map((e) => [e.Name, e.Value]));
  const served = new Set([env.TS_TABLE?.Ref, env.TS_DEAD_LETTER_TABLE?.Ref, env.TS_APPLIED_LOG_TABLE?.Ref].filter(Boolean));
  if (served.size !== 3 || ![...served].every((t) => tables.has(t)))
    errs.push(`Resources.${tdName}: TS_TABLE, TS_DEAD_LETTER_TABLE and TS_APPLIED_LOG_TABLE must Ref three tables of the stack`);
  // The applied log's chunks expire by DynamoDB's TTL on expires_at
  // (store/dynamodb.c), as create-table sets it.
  const log = resources[env.TS_APPLIED_LOG_TABLE?.Ref];
  const ttl = log?.Properties?.TimeToLiveSpecification;
  if (log && !(ttl?.Enabled === true && ttl?.AttributeName === 'expires_at'))
    errs.push(`Resources.${env.TS_APPLIED_LOG_TABLE.Ref}: TimeToLiveSpecification must enable expires_at`);
  const actions = new Set();
  const resourcesAllowed = new Set();
  for (const pol of role.Properties?.Policies ?? []) {
    for (const st of [].concat(pol.PolicyDocument?.Statement ?? [])) {
      if (st.Effect !== 'Allow') continue;
      for (const a of [].concat(st.Action ?? [])) {
        if (!String(a).startsWith('dynamodb:')) { errs.push(`Resources.${roleRef}: action ${a} is not a DynamoDB call of the server`); continue; }
        if (String(a).includes('*')) errs.push(`Resources.${roleRef}: wildcard action ${a}`);
        actions.add(String(a).slice('dynamodb:'.length));
      }
      for (const r of [].concat(st.Resource ?? [])) {
        const ga = r?.['Fn::GetAtt'];
        if (ga && ga[1] === 'Arn' && served.has(ga[0])) resourcesAllowed.add(ga[0]);
        else errs.push(`Resources.${roleRef}: resource ${JSON.stringify(r)} is not one of the server's tables`);
      }
    }
  }
  if (role.Properties?.ManagedPolicyArns?.length) errs.push(`Resources.${roleRef}: managed policies grant more than the code calls`);
  const code = codeOperations();
  if (!code.size) errs.push('no DynamoDB operations found in store/*.c and aws/*.c');
  const want = new Set([...code].filter((op) => !NOT_FOR_SERVE.has(op)));
  for (const op of want) if (!actions.has(op)) errs.push(`Resources.${roleRef}: the code calls ${op}, the policy does not allow dynamodb:${op}`);
  for (const op of actions) if (!want.has(op)) errs.push(`Resources.${roleRef}: dynamodb:${op} is allowed but the server never calls it`);
  for (const t of served) if (!resourcesAllowed.has(t)) errs.push(`Resources.${roleRef}: the policy does not cover table ${t}`);

  // Environment: settings the binary knows.
  const known = knownSettings();
  for (const name of Object.keys(env).concat((container.Secrets ?? []).map((s) => s.Name)))
    if (!known.has(name)) errs.push(`Resources.${tdName}: ${name} is not a setting of tourney-stats`);
  if (!(container.Secrets ?? []).some((s) => s.Name === 'TS_INGEST_API_KEY'))
    errs.push(`Resources.${tdName}: TS_INGEST_API_KEY must come from the secret`);

  // The drain: deregistration delay = the server's grace, StopTimeout above it.
  const grace = boundsSeconds('TS_SHUTDOWN_GRACE_MS');
  for (const [name, tg] of byType('AWS::ElasticLoadBalancingV2::TargetGroup')) {
    const d = (tg.Properties?.TargetGroupAttributes ?? []).find((a) => a.Key === 'deregistration_delay.timeout_seconds');
    if (!d || Number(d.Value) !== grace)
      errs.push(`Resources.${name}: deregistration delay ${d?.Value ?? '(default 300)'} s, the server drains in ${grace} s`);
    if (tg.Properties?.HealthCheckPath !== '/readyz') errs.push(`Resources.${name}: health check must be /readyz`);
  }
  if (!(Number(container.StopTimeout) > grace))
    errs.push(`Resources.${tdName}: StopTimeout ${container.StopTimeout} must exceed the server's ${grace} s drain`);

  // The Pipe: one record per request to an API destination.
  for (const [name, p] of byType('AWS::Pipes::Pipe')) {
    const ds = p.Properties?.SourceParameters?.DynamoDBStreamParameters ?? {};
    if (Number(ds.BatchSize) !== 1) errs.push(`Resources.${name}: BatchSize ${ds.BatchSize}; API destinations take 1`);
    if (!ds.DeadLetterConfig) errs.push(`Resources.${name}: no dead-letter queue`);
  }
  return errs;
}

// ---- self-test: one planted mistake each must be caught ----
const MUTATIONS = [
  ['an unknown resource type', (t) => { t.Resources.LogGroup.Type = 'AWS::Logs::LogGrup'; }],
  ['an unknown property', (t) => { t.Resources.StatsTable.Properties.BilingMode = 'PAY_PER_REQUEST'; }],
  ['an unknown nested property', (t) => { t.Resources.Pipe.Properties.SourceParameters.DynamoDBStreamParameters.BatchSzie = 1; }],
  ['a missing required property', (t) => { delete t.Resources.TaskDefinition.Properties.ContainerDefinitions[0].Image; }],
  ['a value of the wrong type', (t) => { t.Resources.TargetGroup.Properties.HealthCheckIntervalSeconds = 'often'; }],
  ['a dangling Ref', (t) => { t.Resources.Service.Properties.Cluster = { Ref: 'Clustr' }; }],
  ['a GetAtt of an unknown attribute', (t) => { t.Resources.ApiDestination.Properties.ConnectionArn = { 'Fn::GetAtt': ['Connection', 'Arnn'] }; }],
  ['a dangling ${} in a Sub', (t) => { t.Outputs.ServiceUrl.Value = { 'Fn::Sub': 'https://${DomainNam}' }; }],
  ['an unknown condition', (t) => { t.Resources.GamesTable.Condition = 'CreateTheTable'; }],
  ['a conditional resource used unconditionally', (t) => { t.Resources.Pipe.Properties.Source = { 'Fn::GetAtt': ['GamesTable', 'StreamArn'] }; }],
  ['a DependsOn on nothing', (t) => { t.Resources.Pipe.DependsOn = 'Servce'; }],
  ['an IAM action the code never calls', (t) => { statement(t).Action.push('dynamodb:DeleteTable'); }],
  ['an IAM action missing for a call the code makes', (t) => { statement(t).Action = statement(t).Action.filter((a) => a !== 'dynamodb:BatchGetItem'); }],
  ['a wildcard IAM action', (t) => { statement(t).Action.push('dynamodb:*'); }],
  ['an IAM resource beyond the tables', (t) => { statement(t).Resource.push('*'); }],
  ['a deregistration delay that does not match the drain', (t) => { t.Resources.TargetGroup.Properties.TargetGroupAttributes[0].Value = '300'; }],
  ['a StopTimeout shorter than the drain', (t) => { t.Resources.TaskDefinition.Properties.ContainerDefinitions[0].StopTimeout = 5; }],
  ['a Pipe batch size above 1', (t) => { t.Resources.Pipe.Properties.SourceParameters.DynamoDBStreamParameters.BatchSize = 10; }],
  ['an environment variable the server does not know', (t) => { t.Resources.TaskDefinition.Properties.ContainerDefinitions[0].Environment.push({ Name: 'TS_TABEL', Value: 'x' }); }],
];
function statement(t) { return t.Resources.TaskRole.Properties.Policies[0].PolicyDocument.Statement[0]; }

// ---- main (when run, not when imported by tests/readme/examples.mjs) ----
if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) main();
function main() {
const args = process.argv.slice(2);
const selftest = args[0] === '--selftest';
const file = resolve(args[selftest ? 1 : 0] ?? join(root, 'deploy', 'cloudformation.yaml'));
const { tpl, errs: parseErrs } = parseTemplate(readFileSync(file, 'utf8'));
let passed = 0, failed = 0;
if (parseErrs.length) {
  console.log(parseErrs.join('\n'));
  failed++;
} else if (!selftest) {
  const errs = checkTemplate(tpl);
  const n = Object.keys(tpl.Resources ?? {}).length;
  if (errs.length) { failed++; console.log(`FAIL ${file}\n  ${errs.join('\n  ')}`); }
  else { passed++; console.log(`ok   ${file}: ${n} resources, types and properties known to specification ${spec.ResourceSpecificationVersion}, references resolve, the task role allows exactly ${[...codeOperations()].filter((o) => !NOT_FOR_SERVE.has(o)).sort().join(', ')}`); }
} else {
  const base = checkTemplate(tpl);
  if (base.length) { failed++; console.log(`FAIL the template itself: ${base.join('; ')}`); }
  for (const [what, mutate] of MUTATIONS) {
    const t = structuredClone(tpl);
    mutate(t);
    const errs = checkTemplate(t);
    if (errs.length) { passed++; console.log(`ok   caught ${what}: ${errs[0]}`); }
    else { failed++; console.log(`FAIL not caught: ${what}`); }
  }
  // YAML that is not a template must be refused too.
  for (const [what, text] of [['an unknown tag', 'Resources: !Reff x'], ['a duplicate key', 'a: 1\na: 2'], ['broken YAML', 'a: [1, 2']]) {
    let caught;
    try { caught = parseTemplate(text).errs.length > 0; } catch { caught = true; }
    if (caught) { passed++; console.log(`ok   caught ${what}`); } else { failed++; console.log(`FAIL not caught: ${what}`); }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
}
