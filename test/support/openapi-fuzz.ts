/**
 * Request generation from an OpenAPI 3.1 document, for the contract test
 * (test/e2e/contract.e2e.test.ts): values that fit a schema, and the ways to break them. Seeded,
 * so a failure prints the seed that reproduces it.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export type Schema = Record<string, unknown>;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** mulberry32: a small seeded PRNG. */
export class Random {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const ID_CHARS = 'ABCXYZabcxyz0123456789_.:-';

/** Strings for the patterns and formats the document uses; `hints` names values that exist on the server. */
export interface Hints {
  /** A value to use for a property of this name, sometimes (registered participant, action, known gids). */
  byName: Record<string, () => string>;
}

export class SchemaSampler {
  constructor(
    private readonly document: { components?: { schemas?: Record<string, Schema> } },
    private readonly random: Random,
    private readonly hints: Hints,
  ) {}

  resolve(schema: Schema): Schema {
    let current = schema;
    while (typeof current.$ref === 'string') current = this.document.components!.schemas![current.$ref.replace('#/components/schemas/', '')];
    return current;
  }

  /** A value that fits `schema` (as far as these schemas go: enums, patterns, bounds, required, refs). */
  sample(input: Schema, name = '', depth = 0): Json {
    const schema = this.resolve(input);
    if (Array.isArray(schema.allOf)) return this.sample(Object.assign({}, ...(schema.allOf as Schema[]).map((s) => this.resolve(s)), { allOf: undefined }) as Schema, name, depth);
    if (Array.isArray(schema.anyOf)) return this.sample(this.random.pick(schema.anyOf as Schema[]), name, depth);
    if (Array.isArray(schema.enum)) return this.random.pick(schema.enum as Json[]);
    const hint = this.hints.byName[name];
    const type = Array.isArray(schema.type) ? this.random.pick((schema.type as string[]).filter((t) => t !== 'null')) : schema.type;
    switch (type) {
      case 'string':
        if (hint && this.random.chance(0.85)) return hint();
        return this.string(schema);
      case 'integer': {
        const min = typeof schema.minimum === 'number' ? schema.minimum : 0;
        const max = typeof schema.maximum === 'number' ? Math.min(schema.maximum, min + 1_000_000) : min + 1000;
        return this.random.chance(0.2) ? this.random.pick([min, max]) : this.random.int(min, max);
      }
      case 'number':
        return this.random.next() * 1000;
      case 'boolean':
        // `wait: true` holds the answer until the transaction ends: not for a fuzzer.
        return name === 'wait' ? false : this.random.chance(0.5);
      case 'array': {
        const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
        const max = Math.min(typeof schema.maxItems === 'number' ? schema.maxItems : 3, min + 3);
        const items = schema.items as Schema | undefined;
        const values = Array.from({ length: this.random.int(min, max) }, () => (items ? this.sample(items, name.replace(/s$/, ''), depth + 1) : null));
        return schema.uniqueItems || name === 'modes' || name === 'dependsOn' ? [...new Set(values.map((v) => JSON.stringify(v)))].map((v) => JSON.parse(v) as Json) : values;
      }
      case 'object':
      default: {
        if (type === undefined && !schema.properties) return this.anyJson(depth);
        const result: Record<string, Json> = {};
        const properties = (schema.properties ?? {}) as Record<string, Schema>;
        const required = new Set((schema.required as string[] | undefined) ?? []);
        for (const [key, property] of Object.entries(properties)) {
          if (required.has(key) || this.random.chance(0.5)) result[key] = this.sample(property, key, depth + 1);
        }
        if (!schema.properties && schema.additionalProperties !== false && depth < 3) {
          for (let i = this.random.int(0, 3); i > 0; i--) result[`k${i}`] = this.anyJson(depth + 1);
        }
        return result;
      }
    }
  }

  /** Any JSON value, small. */
  anyJson(depth = 0): Json {
    const kind = this.random.int(0, depth > 2 ? 3 : 5);
    if (kind === 0) return null;
    if (kind === 1) return this.random.chance(0.5);
    if (kind === 2) return this.random.int(-1000, 1000);
    if (kind === 3) return `v${this.random.int(0, 99)}`;
    if (kind === 4) return [this.anyJson(depth + 1), this.anyJson(depth + 1)];
    return { a: this.anyJson(depth + 1), b: this.anyJson(depth + 1) };
  }

  string(schema: Schema): string {
    const pattern = typeof schema.pattern === 'string' ? schema.pattern : '';
    const range = /^\^\[(?:A-Za-z0-9_\.:-|A-Za-z0-9_-)\]\{1,(\d+)\}\$$/.exec(pattern.replace('\\.', '.').replace('_.:-', '_.:-'));
    if (range || pattern.includes('A-Za-z0-9')) {
      const max = Math.min(range ? Number(range[1]) : 20, 20);
      return Array.from({ length: this.random.int(1, max) }, () => this.random.pick([...ID_CHARS])).join('');
    }
    if (schema.format === 'date-time') return new Date(Date.now() - this.random.int(0, 86_400_000)).toISOString();
    if (schema.format === 'uri') return `http://127.0.0.1:${this.random.int(1, 65535)}/tx`;
    const max = typeof schema.maxLength === 'number' ? Math.min(schema.maxLength, 24) : 24;
    return Array.from({ length: this.random.int(1, max) }, () => this.random.pick([...'abcdefghij0123456789'])).join('');
  }
}

/** The ways a request is broken. */
export const MUTATIONS = ['valid', 'wrong-type', 'missing-required', 'extra-field', 'huge-string', 'nul', 'lone-surrogate', 'deep-nesting', 'bad-json', 'oversized-body'] as const;
export type Mutation = (typeof MUTATIONS)[number];

/** Paths to every value inside `value` (objects and arrays), so a mutation can pick one. */
export function valuePaths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => paths.push(...valuePaths(item, [...prefix, i])));
  else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) paths.push(...valuePaths(item, [...prefix, key]));
  return paths;
}

/** `value` with the value at `path` replaced (a copy). */
export function replaceAt(value: Json, path: (string | number)[], replacement: Json | undefined): Json {
  if (path.length === 0) return replacement === undefined ? null : replacement;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as Record<string, Json>) }) as Record<string | number, Json>;
  const [head, ...rest] = path;
  if (rest.length === 0 && replacement === undefined) delete copy[head];
  else copy[head] = replaceAt(copy[head], rest, replacement);
  return copy;
}

/**
 * Validators of the documented response schemas: ajv in strict mode on draft 2020-12 (OpenAPI
 * 3.1's dialect), the document's components under `https://dtx.invalid/components#/$defs/…`. Objects with documented
 * properties are closed (`unevaluatedProperties: false`): an undocumented field is a mismatch too.
 */
export class ResponseValidators {
  private readonly ajv = new Ajv2020({ strict: true, allErrors: false, allowUnionTypes: true });
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(components: Record<string, Schema>) {
    addFormats.default(this.ajv);
    // OpenAPI's own annotation keyword.
    this.ajv.addKeyword({ keyword: 'example' });
    this.ajv.addSchema({ $id: 'https://dtx.invalid/components', $defs: rewrite(components) });
  }

  validator(key: string, schema: Schema): ValidateFunction {
    let validate = this.cache.get(key);
    if (!validate) {
      validate = this.ajv.compile(rewrite<Schema>(schema));
      this.cache.set(key, validate);
    }
    return validate;
  }

  errorsText(validate: ValidateFunction): string {
    return this.ajv.errorsText(validate.errors);
  }
}

function rewrite<T>(node: T): T {
  if (Array.isArray(node)) return node.map(rewrite) as T;
  if (typeof node !== 'object' || node === null) return node;
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') result.$ref = value.replace('#/components/schemas/', 'https://dtx.invalid/components#/$defs/');
    else if (key === 'properties' || key === '$defs') result[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, rewrite(v)]));
    else if (key === 'example' || key === 'examples') result[key] = value;
    else result[key] = rewrite(value);
  }
  if (result.properties && result.additionalProperties === undefined && result.unevaluatedProperties === undefined) result.unevaluatedProperties = false;
  return result as T;
}
