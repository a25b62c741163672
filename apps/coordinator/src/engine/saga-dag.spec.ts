import { describe, expect, it } from 'vitest';
import type { BranchStatus } from '@nest-dtx/protocol';
import { compensableSteps, effectiveDependencies, findDagProblem, runnableSteps, type SagaStep } from './saga-dag.js';

const steps = (spec: Record<string, string[]>): SagaStep[] => Object.entries(spec).map(([name, dependsOn]) => ({ name, dependsOn }));
const statuses = (map: Record<string, BranchStatus>) => (name: string): BranchStatus => map[name] ?? 'pending';

describe('effectiveDependencies', () => {
  it('chains steps in the listed order when not concurrent, ignoring dependsOn', () => {
    const input = [{ name: 'a' }, { name: 'b', dependsOn: ['x'] }, { name: 'c' }];
    expect(effectiveDependencies(input, false)).toEqual([
      { name: 'a', dependsOn: [] },
      { name: 'b', dependsOn: ['a'] },
      { name: 'c', dependsOn: ['b'] },
    ]);
  });

  it('keeps the declared dependencies when concurrent', () => {
    expect(effectiveDependencies([{ name: 'a' }, { name: 'b', dependsOn: ['a'] }], true)).toEqual([
      { name: 'a', dependsOn: [] },
      { name: 'b', dependsOn: ['a'] },
    ]);
  });
});

describe('findDagProblem', () => {
  it('accepts a DAG', () => {
    expect(findDagProblem(steps({ a: [], b: ['a'], c: ['a'], d: ['b', 'c'] }))).toBeNull();
  });

  it.each([
    ['a duplicate name', steps({ a: [] }).concat(steps({ a: [] })), { kind: 'duplicate', name: 'a' }],
    ['an unknown dependency', steps({ a: ['ghost'] }), { kind: 'unknown_dependency', step: 'a', dependsOn: 'ghost' }],
    ['a self dependency', steps({ a: ['a'] }), { kind: 'self_dependency', step: 'a' }],
  ])('rejects %s', (_label, input, problem) => {
    expect(findDagProblem(input)).toEqual(problem);
  });

  it('rejects a cycle and names the steps on it (and behind it)', () => {
    const problem = findDagProblem(steps({ a: [], b: ['a', 'd'], c: ['b'], d: ['c'], e: ['d'] }));
    expect(problem?.kind).toBe('cycle');
    expect(problem && 'steps' in problem ? [...problem.steps].sort() : []).toEqual(['b', 'c', 'd', 'e']);
  });
});

describe('runnableSteps', () => {
  const dag = steps({ a: [], b: [], c: ['a', 'b'], d: ['c'] });

  it('starts with every step that depends on nothing', () => {
    expect(runnableSteps(dag, statuses({}))).toEqual(['a', 'b']);
  });

  it('runs a step only when all its dependencies committed', () => {
    expect(runnableSteps(dag, statuses({ a: 'committed' }))).toEqual(['b']);
    expect(runnableSteps(dag, statuses({ a: 'committed', b: 'committed' }))).toEqual(['c']);
    expect(runnableSteps(dag, statuses({ a: 'committed', b: 'committed', c: 'committed' }))).toEqual(['d']);
  });

  it('never re-runs committed or failed steps', () => {
    expect(runnableSteps(dag, statuses({ a: 'committed', b: 'failed' }))).toEqual([]);
  });
});

describe('compensableSteps', () => {
  const dag = steps({ a: [], b: [], c: ['a', 'b'], d: ['c'] });

  it('compensates leaves first: a step only after every step that depends on it', () => {
    expect(compensableSteps(dag, statuses({}))).toEqual(['d']);
    expect(compensableSteps(dag, statuses({ d: 'rolled_back' }))).toEqual(['c']);
    expect(compensableSteps(dag, statuses({ d: 'rolled_back', c: 'rolled_back' }))).toEqual(['a', 'b']);
    expect(compensableSteps(dag, statuses({ a: 'rolled_back', b: 'rolled_back', c: 'rolled_back', d: 'rolled_back' }))).toEqual([]);
  });

  it('walks a sequential chain in exact reverse order', () => {
    const chain = effectiveDependencies([{ name: 's1' }, { name: 's2' }, { name: 's3' }], false);
    const order: string[] = [];
    const done: Record<string, BranchStatus> = {};
    for (let next = compensableSteps(chain, statuses(done)); next.length > 0; next = compensableSteps(chain, statuses(done))) {
      for (const name of next) {
        order.push(name);
        done[name] = 'rolled_back';
      }
    }
    expect(order).toEqual(['s3', 's2', 's1']);
  });
});
