/**
 * The saga's step graph, as pure functions. With `concurrent: false` each step depends on the
 * one listed before it; with `concurrent: true` on the steps named in its `dependsOn`.
 * Forward, a step runs once everything it depends on has committed; on rollback, a step is
 * compensated only after every step that depends on it has been.
 */
import type { BranchStatus } from '@nest-dtx/protocol';

export interface SagaStep {
  name: string;
  dependsOn: readonly string[];
}

export type DagProblem =
  | { kind: 'duplicate'; name: string }
  | { kind: 'unknown_dependency'; step: string; dependsOn: string }
  | { kind: 'self_dependency'; step: string }
  | { kind: 'cycle'; steps: string[] };

/** The dependencies each step really has in the chosen mode. */
export function effectiveDependencies(steps: readonly { name: string; dependsOn?: readonly string[] }[], concurrent: boolean): SagaStep[] {
  return steps.map((step, i) => ({
    name: step.name,
    dependsOn: concurrent ? [...(step.dependsOn ?? [])] : i === 0 ? [] : [steps[i - 1].name],
  }));
}

/** The first problem that makes the steps not a DAG, or null. */
export function findDagProblem(steps: readonly SagaStep[]): DagProblem | null {
  const names = new Set<string>();
  for (const step of steps) {
    if (names.has(step.name)) return { kind: 'duplicate', name: step.name };
    names.add(step.name);
  }
  for (const step of steps) {
    for (const dependency of step.dependsOn) {
      if (dependency === step.name) return { kind: 'self_dependency', step: step.name };
      if (!names.has(dependency)) return { kind: 'unknown_dependency', step: step.name, dependsOn: dependency };
    }
  }
  // Kahn's algorithm: whatever cannot be ordered sits on a cycle (or behind one).
  const remaining = new Map(steps.map((s) => [s.name, new Set(s.dependsOn)]));
  let progressed = true;
  while (progressed && remaining.size > 0) {
    progressed = false;
    for (const [name, dependencies] of remaining) {
      if ([...dependencies].every((d) => !remaining.has(d))) {
        remaining.delete(name);
        progressed = true;
      }
    }
  }
  return remaining.size > 0 ? { kind: 'cycle', steps: [...remaining.keys()] } : null;
}

export function describeDagProblem(problem: DagProblem): string {
  switch (problem.kind) {
    case 'duplicate':
      return `step name ${problem.name} is used twice`;
    case 'unknown_dependency':
      return `step ${problem.step} depends on unknown step ${problem.dependsOn}`;
    case 'self_dependency':
      return `step ${problem.step} depends on itself`;
    case 'cycle':
      return `steps ${problem.steps.join(', ')} form a dependency cycle`;
  }
}

/** Steps whose forward action may be sent now: not yet committed or failed, every dependency committed. */
export function runnableSteps(steps: readonly SagaStep[], status: (name: string) => BranchStatus): string[] {
  return steps
    .filter((s) => status(s.name) === 'pending' && s.dependsOn.every((d) => status(d) === 'committed'))
    .map((s) => s.name);
}

/** Steps whose compensation may be sent now: not yet rolled back, every dependent rolled back. */
export function compensableSteps(steps: readonly SagaStep[], status: (name: string) => BranchStatus): string[] {
  return steps
    .filter(
      (s) =>
        status(s.name) !== 'rolled_back' &&
        steps.every((other) => !other.dependsOn.includes(s.name) || status(other.name) === 'rolled_back'),
    )
    .map((s) => s.name);
}
