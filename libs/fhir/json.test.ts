import { describe, expect, it } from 'vitest';
import { parseStrictJson } from './json.js';

function problem(text: string, maxDepth?: number) {
  const r = parseStrictJson(text, maxDepth === undefined ? {} : { maxDepth });
  if (r.ok) throw new Error('expected a problem');
  return r.problem;
}

describe('strict JSON for FHIR input', () => {
  it('given well-formed JSON, when parsed, then it equals JSON.parse', () => {
    const text =
      '{"resourceType":"Patient","name":[{"given":["A","B"]}],"n":-1.5e3,"b":true,"s":"a\\"\\u00e9"}';
    expect(parseStrictJson(text)).toEqual({ ok: true, value: JSON.parse(text) as unknown });
  });

  it('given a duplicate key, then it is refused at that element', () => {
    expect(problem('{"resourceType":"Patient","gender":"male","gender":"female"}')).toMatchObject({
      code: 'duplicate-key',
      expression: 'Patient.gender',
    });
  });

  it('given an empty string value, then it is refused with its path', () => {
    expect(problem('{"resourceType":"Patient","name":[{"family":""}]}')).toMatchObject({
      code: 'empty-string',
      expression: 'Patient.name[0].family',
    });
  });

  it('given null in an array or as a value, then it is refused', () => {
    expect(problem('{"resourceType":"Patient","name":[null]}')).toMatchObject({
      code: 'null-value',
      expression: 'Patient.name[0]',
    });
    expect(problem('{"resourceType":"Patient","gender":null}').code).toBe('null-value');
  });

  it('given null aligned with primitive values in a _ array, then it is accepted (FHIR JSON allows it)', () => {
    const r = parseStrictJson(
      '{"resourceType":"Patient","name":[{"given":["A","B"],"_given":[null,{"id":"x"}]}]}',
    );
    expect(r.ok).toBe(true);
  });

  it('given __proto__ or constructor keys, then they are refused and nothing is polluted', () => {
    expect(problem('{"resourceType":"Patient","__proto__":{"polluted":true}}')).toMatchObject({
      code: 'forbidden-key',
      expression: 'Patient.__proto__',
    });
    expect(problem('{"a":{"constructor":{"prototype":{}}}}').code).toBe('forbidden-key');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('given nesting deeper than the limit, then it is refused without recursing further', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    expect(problem(deep).code).toBe('too-deep');
    expect(problem('{"a":{"b":{"c":1}}}', 2).code).toBe('too-deep');
  });

  it('given malformed JSON or trailing content, then it is invalid-json', () => {
    expect(problem('{"a":1,}').code).toBe('invalid-json');
    expect(problem('{"a":1} x').code).toBe('invalid-json');
    expect(problem('{"a":"\u0001"}').code).toBe('invalid-json');
  });

  it('never quotes a value in its message', () => {
    const p = problem('{"resourceType":"Patient","name":[{"family":"Zzsecret","family":"Zzsecret"}]}');
    expect(p.message).not.toContain('Zzsecret');
  });
});
